"""Field mapping: turn one JSON item of a source's own shape into a `crisiswatch.contracts.records.Mention`.

A mapping file (YAML or JSON) names, for each mention field, a dotted path into the item
(``user.screen_name``; list elements by index: ``entities.urls.0.expanded_url``; alternatives with
``|``: ``full_text|text``). See "The mapping file" in README.md for the whole format.

Timestamps are read from ISO 8601 strings, RFC 2822 strings (``Mon, 02 Mar 2026 07:00:00 +0000``) or
epoch numbers (seconds, or milliseconds when larger than 1e11); a timestamp without a timezone is
taken as UTC.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from crisiswatch.contracts.records import Mention

MISSING = object()
MAX_ID_CHARS = 512

# Mention field -> default path: a payload that already looks like a Mention maps onto itself.
IDENTITY_FIELDS: dict[str, str] = {
    "id": "id",
    "text": "text",
    "created_at": "created_at",
    "url": "url",
    "lang": "lang",
    "author.id": "author.id",
    "author.handle": "author.handle",
    "author.followers": "author.followers",
    "metrics.likes": "metrics.likes",
    "metrics.shares": "metrics.shares",
    "metrics.replies": "metrics.replies",
    "metrics.reach": "metrics.reach",
}
TARGETS = frozenset({*IDENTITY_FIELDS, "source"})
REQUIRED = ("id", "text", "created_at")


class MappingError(ValueError):
    """An item could not be turned into a Mention (it is then handed over raw)."""


def get_path(obj: Any, path: str) -> Any:
    """The value at a dotted ``path`` (``a.b.0.c``; ``x|y`` = first present), or `MISSING`."""
    for alternative in path.split("|"):
        value = _get_one(obj, alternative.strip())
        if value is not MISSING and value is not None:
            return value
    return MISSING


def _get_one(obj: Any, path: str) -> Any:
    if path in ("", "."):
        return obj
    for part in path.split("."):
        if isinstance(obj, dict):
            if part not in obj:
                return MISSING
            obj = obj[part]
        elif isinstance(obj, list) and part.lstrip("-").isdigit():
            index = int(part)
            if not -len(obj) <= index < len(obj):
                return MISSING
            obj = obj[index]
        else:
            return MISSING
    return obj


def to_utc(value: datetime) -> datetime:
    """A timezone-aware UTC datetime; a naive one is taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_timestamp(value: Any) -> datetime:
    """Parse an ISO 8601 / RFC 2822 string or epoch seconds/milliseconds into UTC (naive → UTC)."""
    if isinstance(value, datetime):
        return to_utc(value)
    if isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
        value = float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000.0 if abs(value) > 1e11 else float(value)
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise MappingError(f"timestamp out of range: {value!r}") from exc
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return to_utc(datetime.fromisoformat(text))
        except ValueError:
            pass
        try:
            return to_utc(parsedate_to_datetime(text))
        except (TypeError, ValueError, IndexError):
            pass
    raise MappingError(f"unreadable timestamp: {str(value)[:80]!r}")


def qualified_id(prefix: str, value: str) -> str:
    """``<prefix>:<value>`` (kept as is when already prefixed); over-long ids become a stable hash."""
    value = value.strip()
    ident = value if value.startswith(f"{prefix}:") else f"{prefix}:{value}"
    if len(ident) > MAX_ID_CHARS:
        ident = f"{prefix}:sha1:{hashlib.sha1(value.encode()).hexdigest()}"
    return ident


@dataclass
class FieldMapping:
    """How items of one source become mentions.

    ``fields`` maps a Mention field (``id``, ``text``, ``created_at``, ``url``, ``lang``, ``source``,
    ``author.id``, ``author.handle``, ``author.followers``, ``metrics.likes|shares|replies|reach``) to
    a dotted path in the item. ``items`` is the path of the list of items inside one payload (unset:
    the payload itself, an object or an array). Items whose ``match`` paths do not equal the given
    values are not mentions (acks, control frames) and are ignored. ``extra`` keeps any other keys of
    the mapping file (connector options such as ``pagination``).
    """

    source: str
    fields: dict[str, str] = field(default_factory=lambda: dict(IDENTITY_FIELDS))
    items: str | None = None
    match: dict[str, Any] = field(default_factory=dict)
    id_prefix: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.fields) - TARGETS
        if unknown:
            raise ValueError(f"mapping: unknown mention fields {sorted(unknown)}; known: {sorted(TARGETS)}")
        missing = [name for name in REQUIRED if name not in self.fields]
        if missing:
            raise ValueError(f"mapping: fields {missing} are required")
        if not self.source:
            raise ValueError("mapping: 'source' is required")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> FieldMapping:
        """Build from a parsed mapping file; ``source`` (e.g. from the command line) wins over the file's."""
        if not isinstance(data, dict):
            raise ValueError("mapping file must hold a mapping (YAML/JSON object)")
        known = {"source", "fields", "items", "match", "id_prefix"}
        fields = data.get("fields") or dict(IDENTITY_FIELDS)
        if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
            raise ValueError("mapping: 'fields' must map mention fields to dotted paths")
        return cls(
            source=str(source or data.get("source") or ""),
            fields=dict(fields),
            items=data.get("items"),
            match=dict(data.get("match") or {}),
            id_prefix=data.get("id_prefix"),
            extra={k: v for k, v in data.items() if k not in known},
        )

    @classmethod
    def load(cls, path: Path, source: str | None = None) -> FieldMapping:
        """Read a YAML or JSON mapping file."""
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        return cls.from_dict(data or {}, source)

    def items_of(self, payload: Any) -> list[Any]:
        """The items of one payload (a list, or the single object). Raises MappingError if absent."""
        found = payload if self.items is None else get_path(payload, self.items)
        if found is MISSING:
            raise MappingError(f"no items at {self.items!r}")
        return found if isinstance(found, list) else [found]

    def matches(self, item: Any) -> bool:
        """Whether the item passes the ``match`` filter (always true without one)."""
        return all(get_path(item, path) == expected for path, expected in self.match.items())

    def to_mention(self, item: Any, fetched_at: datetime) -> Mention:
        """The Mention for one item; raises MappingError with the reason when it cannot be built."""
        if not isinstance(item, dict):
            raise MappingError(f"item is a {type(item).__name__}, not an object")
        values: dict[str, Any] = {}
        for target, path in self.fields.items():
            value = get_path(item, path)
            if value is not MISSING:
                values[target] = value
        for name in REQUIRED:
            if name not in values:
                raise MappingError(f"missing {name!r} (path {self.fields[name]!r})")
        raw_id = values.pop("id")
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int | float) or not str(raw_id).strip():
            raise MappingError("id must be a non-empty string or number")
        source = str(values.pop("source", self.source))
        text = values.pop("text")
        if isinstance(text, list):
            text = " ".join(str(part) for part in text)
        if not isinstance(text, str):
            raise MappingError("text must be a string")
        record: dict[str, Any] = {
            "id": qualified_id(self.id_prefix or source, str(raw_id)),
            "source": source,
            "text": text,
            "created_at": parse_timestamp(values.pop("created_at")),
            "fetched_at": fetched_at,
        }
        for target, value in values.items():
            group, _, name = target.partition(".")
            if name:
                record.setdefault(group, {})[name] = str(value) if name in ("id", "handle") else value
            else:
                record[target] = str(value)
        try:
            return Mention.model_validate(record)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise MappingError(f"invalid mention: {where}: {first.get('msg')}") from exc

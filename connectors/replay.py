"""Replay connector: publish mentions from a JSONL or CSV file, preserving event time.

JSONL: one mention object per line (fields of `stream.records.Mention`; ``author``, ``url`` and
``metrics`` optional). CSV: a header row with at least ``id,source,text,created_at``; optional columns
``url``, ``lang``, ``author_id``, ``author_handle``, ``followers``, ``likes``, ``shares``, ``replies``,
``reach``.

``speed`` maps event time to wall time: 60 replays one hour of event time per minute, 0 replays as
fast as possible. Lines that cannot be parsed are still handed over as they are, so the pipeline
dead-letters them with the reason; nothing is dropped here. A file ending in ``.gz``
(``mentions.jsonl.gz``, ``mentions.csv.gz``) is read gunzipped.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.sink import MentionSink

_AUTHOR_COLUMNS = {"author_id": "id", "author_handle": "handle", "followers": "followers"}
_METRIC_COLUMNS = ("likes", "shares", "replies", "reach")


@dataclass(frozen=True)
class ReplayItem:
    """One record to hand over: its bytes, key and event time (None when unparseable)."""

    value: bytes
    key: bytes | None
    event_time: float | None


def _event_time(obj: Any) -> float | None:
    if not isinstance(obj, dict) or not isinstance(obj.get("created_at"), str):
        return None
    try:
        return datetime.fromisoformat(obj["created_at"].replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _key(obj: Any) -> bytes | None:
    return obj["id"].encode() if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None


def _csv_row_to_mention(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k in ("id", "source", "text", "created_at", "url", "lang") if (v := row.get(k))}
    author = {field: row[col] for col, field in _AUTHOR_COLUMNS.items() if row.get(col)}
    if "followers" in author:
        author["followers"] = int(author["followers"]) if author["followers"].isdigit() else author["followers"]
    if author:
        out["author"] = author
    metrics = {m: int(row[m]) if row[m].isdigit() else row[m] for m in _METRIC_COLUMNS if row.get(m)}
    if metrics:
        out["metrics"] = metrics
    return out


def _open_binary(path: Path) -> Any:
    """The file's bytes, gunzipped when it ends in ``.gz`` (``mentions.jsonl.gz``, ``mentions.csv.gz``)."""
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb")


def read_items(path: Path) -> Iterator[ReplayItem]:
    """The records of a replay file, in file order (``.gz`` files are read gunzipped)."""
    kind = path.with_suffix("").suffix if path.suffix.lower() == ".gz" else path.suffix
    if kind.lower() == ".csv":
        opener = gzip.open if path.suffix.lower() == ".gz" else open
        with opener(path, "rt", newline="", encoding="utf-8", errors="surrogateescape") as handle:
            for row in csv.DictReader(handle):
                obj = _csv_row_to_mention(row)
                value = json.dumps(obj, ensure_ascii=False).encode("utf-8", errors="surrogateescape")
                yield ReplayItem(value, _key(obj), _event_time(obj))
        return
    with _open_binary(path) as handle:
        for line in handle:
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:  # invalid JSON or UTF-8: hand over as is
                yield ReplayItem(line, None, None)
                continue
            yield ReplayItem(line, _key(obj), _event_time(obj))


async def paced(items: Iterator[ReplayItem], speed: float) -> AsyncIterator[ReplayItem]:
    """Yield items no faster than ``speed`` times their event-time pace (0 = unpaced)."""
    first_event: float | None = None
    started = time.monotonic()
    for item in items:
        if speed > 0 and item.event_time is not None:
            if first_event is None:
                first_event = item.event_time
            due = started + (item.event_time - first_event) / speed
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        yield item


async def replay(path: Path, sink: MentionSink, speed: float = 0.0) -> int:
    """Publish every record of ``path`` through ``sink``; return how many were handed over."""
    if not path.is_file():
        raise FileNotFoundError(f"replay file not found: {path}")
    count = 0
    async for item in paced(read_items(path), speed):
        await sink.send_raw(item.value, item.key)
        count += 1
        if count % 5000 == 0:
            await asyncio.sleep(0)
    await sink.flush()
    return count

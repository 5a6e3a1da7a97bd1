"""Decoding raw records, and what happens to the ones that cannot be decoded.

`decode_mention` turns the bytes of a ``mentions.raw`` record into a `Mention` or raises
`RejectedRecord` with a short machine-readable reason (``empty``, ``oversized``, ``invalid_utf8``,
``invalid_json``, ``invalid_record``, ``bad_timestamp``, ``future_timestamp``) and a human-readable
detail. `dead_letter` wraps the original bytes and the reason into a ``mentions.dlq`` record, so
nothing is ever dropped silently.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

from pydantic import ValidationError

from stream.records import DeadLetter, Mention, utcnow

MAX_FUTURE_SKEW = timedelta(minutes=5)


class RejectedRecord(ValueError):
    """A record that cannot be processed; ``reason`` is one of a small fixed set."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _describe(exc: ValidationError) -> tuple[str, str]:
    errors = exc.errors(include_url=False, include_input=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return "invalid_json", errors[0]["msg"]
    details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in errors[:5])
    time_fields = {"created_at", "fetched_at"}
    if all(e["loc"] and e["loc"][0] in time_fields for e in errors):
        return "bad_timestamp", details
    return "invalid_record", details


def decode_mention(value: bytes | None, max_bytes: int, now: datetime | None = None) -> Mention:
    """Parse and validate one raw record (``now``: the time future timestamps are judged against)."""
    if not value:
        raise RejectedRecord("empty", "record has no value")
    if len(value) > max_bytes:
        raise RejectedRecord("oversized", f"{len(value)} bytes > limit of {max_bytes}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedRecord("invalid_utf8", str(exc)) from None
    try:
        mention = Mention.model_validate_json(text)
    except ValidationError as exc:
        raise RejectedRecord(*_describe(exc)) from None
    if mention.created_at - (now or utcnow()) > MAX_FUTURE_SKEW:
        raise RejectedRecord("future_timestamp", f"created_at {mention.created_at.isoformat()} is in the future")
    return mention


def dead_letter(
    *,
    reason: str,
    detail: str,
    stage: str,
    topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    key: bytes | None,
) -> bytes:
    """The ``mentions.dlq`` value for a rejected record."""
    record = DeadLetter(
        reason=reason,
        error=detail[:2000],
        stage=stage,
        topic=topic,
        partition=partition,
        offset=offset,
        original_b64=base64.b64encode(value or b"").decode("ascii"),
        original_key_b64=base64.b64encode(key).decode("ascii") if key is not None else None,
        failed_at=utcnow(),
    )
    return record.model_dump_json().encode()


def reason_of(exc: Exception) -> tuple[str, str]:
    """(reason, detail) for any exception raised while processing a record."""
    if isinstance(exc, RejectedRecord):
        return exc.reason, exc.detail
    if isinstance(exc, json.JSONDecodeError):
        return "invalid_json", str(exc)
    return "processing_error", f"{type(exc).__name__}: {exc}"

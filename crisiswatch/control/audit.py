"""Reading the audit log (``publishing.audit``): who changed what, why, when, each record verified.

`read_audit` reads the records since a time (Kafka's timestamp index: no full scan), optionally of one
scope, and checks each record's signature with the reader's keyring, like every other control reader.
A record that cannot be verified (unsigned: written before audit records were signed; unknown key;
bad signature; not JSON) is still returned, flagged with the reason, so that readers can say so rather
than hide it. ``crisiswatch audit`` and ``GET /api/audit`` use it.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from pydantic import ValidationError

from crisiswatch.contracts.control import AuditRecord
from crisiswatch.contracts.topics import PUBLISHING_AUDIT
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control.messages import ControlRejected, Keyring
from crisiswatch.follow import read_to_end
from crisiswatch.settings import Settings

MAX_RECORDS = 10_000


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``2h``, ``30m``, ``7d`` (ago) or an ISO-8601 time with a zone; `ValueError` otherwise."""
    from crisiswatch.durations import DurationError, parse_duration  # the one parser of durations

    text = text.strip()
    with contextlib.suppress(DurationError):  # "2h", "30m", "7d", "PT2H" ago; else an ISO time
        return (now or utcnow()) - timedelta(seconds=parse_duration(text))
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError as exc:
        raise ValueError(f"not a time: {text!r} (use e.g. 2h, 30m, 7d or 2026-11-24T09:00:00Z)") from exc
    if value.tzinfo is None:
        raise ValueError(f"give a time zone in {text!r}, e.g. {text}Z")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class AuditEntry:
    """One record of the audit log as read: the record (when it parses), and whether it is verified."""

    offset: int
    timestamp: datetime
    """When the broker appended it."""
    record: AuditRecord | None
    verified: bool
    problem: str | None = None
    """Why it cannot be verified (None when verified)."""

    @property
    def scope(self) -> str | None:
        return self.record.scope if self.record else None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = (
            self.record.model_dump(mode="json", exclude={"sig"}, exclude_none=True) if self.record else {}
        )
        data.update(offset=self.offset, logged_at=self.timestamp.isoformat(), verified=self.verified)
        if self.problem:
            data["problem"] = self.problem
        return data


def verify_entry(keyring: Keyring, offset: int, timestamp_ms: int, value: bytes | None) -> AuditEntry:
    """Verify one raw record; an unverifiable one is parsed for display and flagged."""
    timestamp = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
    try:
        record = keyring.verify_record(value or b"", AuditRecord)
        return AuditEntry(offset, timestamp, record, True)
    except ControlRejected as rejected:
        problem = f"cannot be verified: {rejected}"
    try:
        unverified = AuditRecord.model_validate(json.loads(value or b""))
    except (ValueError, ValidationError):
        unverified = None
    return AuditEntry(offset, timestamp, unverified, False, problem)


async def read_audit(
    settings: Settings,
    keyring: Keyring,
    *,
    since: datetime | None = None,
    scope: str | None = None,
    limit: int = 500,
    timeout: float = 15.0,
) -> list[AuditEntry]:
    """The audit records appended since ``since`` (all: None), of ``scope`` (all: None), oldest first; at
    most the newest ``limit`` of them. Records it cannot verify are included and flagged."""
    topic = settings.topic(PUBLISHING_AUDIT.name)
    since_ms = int(since.timestamp() * 1000) if since is not None else -1
    read: list[tuple[int, AuditEntry]] = []

    def keep(r: ConsumerRecord) -> None:
        if r.timestamp < since_ms:
            return  # (a broker without a timestamp index starts earlier: filter here too)
        entry = verify_entry(keyring, r.offset, r.timestamp, r.value)
        if scope is None or entry.scope == scope or (entry.record is None and _key_is(r.key, scope)):
            read.append((r.offset, entry))
        if len(read) > MAX_RECORDS:
            del read[: len(read) - MAX_RECORDS]

    ends = await read_to_end(
        settings,
        topic,
        keep,
        partitions=[0],  # a single-partition topic (crisiswatch/contracts/topics.py: PUBLISHING_AUDIT)
        since=since,
        timeout=timeout,
        max_records=2000,
        client_id="crisiswatch-audit-reader",
        request_timeout_ms=int(timeout * 1000),
    )
    end = ends.get(TopicPartition(topic, 0), 0)
    entries = [entry for offset, entry in read if offset < end]  # not what was appended while reading
    entries.sort(key=lambda e: (e.timestamp, e.offset))
    return entries[-limit:] if limit > 0 else entries


def _key_is(key: bytes | None, scope: str) -> bool:
    return key is not None and key.decode(errors="replace") == scope

"""Decoding raw records, and what happens to the ones that cannot be processed.

`decode_mention` turns the bytes of a ``mentions.raw`` record into a `Mention` or raises
`RejectedRecord` with a short machine-readable reason (one of `crisiswatch.contracts.records.DeadLetterReason`) and a
human-readable detail. It never raises anything else, whatever the bytes. `dead_letter` wraps the
original bytes and the reason into a ``mentions.dlq`` record, truncating the copy of the original so
that the dead letter stays under a maximum message size (a dead letter too large for the broker would
stall the stage that writes it). `DeadLetterLog` counts dead letters in
``crisiswatch_dead_letters_total{reason}`` and logs them at WARNING, at most one line per reason per
interval, so a flood of poison does not flood the log. Nothing is ever dropped silently.
"""

from __future__ import annotations

import base64
import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiokafka.errors import KafkaError
from pydantic import ValidationError

from crisiswatch.contracts.records import DEAD_LETTER_REASONS, DeadLetter, DeadLetterReason, EventTimeBounds, Mention
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.stream import metrics

MAX_FUTURE_SKEW = timedelta(minutes=5)
"""Default of how far ahead of now a mention's ``created_at`` may be (``CRISISWATCH_RECORD_MAX_FUTURE_SECONDS``)."""
MAX_AGE = timedelta(days=20 * 365)
"""Default of how old a mention's ``created_at`` may be (``CRISISWATCH_RECORD_MAX_AGE_DAYS``)."""
DEAD_LETTER_MAX_BYTES = 512 * 1024
"""Default size limit of one dead letter (``CRISISWATCH_DEAD_LETTER_MAX_BYTES``)."""
KEY_KEPT_BYTES = 1024
"""A dead letter keeps at most this many bytes of the original key."""
DETAIL_CHARS = 2000
"""A dead letter keeps at most this many characters of the error detail."""

_TIME_FIELDS = frozenset({"created_at", "fetched_at"})


class RejectedRecord(ValueError):
    """A record that cannot be processed; ``reason`` is one of `DeadLetterReason`."""

    def __init__(self, reason: DeadLetterReason, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason: DeadLetterReason = reason
        self.detail = detail


def _describe(exc: ValidationError) -> tuple[DeadLetterReason, str]:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return "invalid_json", errors[0]["msg"]
    details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in errors[:5])
    if errors and all(e["loc"] and e["loc"][0] in _TIME_FIELDS for e in errors):
        types = {e["type"] for e in errors}
        if types == {"future_timestamp"}:
            return "future_timestamp", details
        if types == {"stale_timestamp"}:
            return "stale_timestamp", details
        return "bad_timestamp", details
    return "invalid_record", details


def event_time_bounds(
    now: datetime | None = None, max_age: timedelta = MAX_AGE, max_future: timedelta = MAX_FUTURE_SKEW
) -> EventTimeBounds:
    """The bounds a mention's ``created_at`` must keep to, judged at ``now`` (default: the current time)."""
    return EventTimeBounds(now=now or utcnow(), max_age=max_age, max_future=max_future)


def decode_mention(
    value: bytes | None,
    max_bytes: int,
    now: datetime | None = None,
    *,
    max_age: timedelta = MAX_AGE,
    max_future: timedelta = MAX_FUTURE_SKEW,
) -> Mention:
    """Parse and validate one raw record, or raise `RejectedRecord` (and nothing else).

    ``now``: the time ``created_at`` is judged against; it may be at most ``max_future`` ahead of it
    (a far-future event time would drag the window stage's watermark ahead and make every later
    mention too late) and at most ``max_age`` behind it.
    """
    if not value:
        raise RejectedRecord("empty", "record has no value")
    if len(value) > max_bytes:
        raise RejectedRecord("oversized", f"{len(value)} bytes > limit of {max_bytes}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedRecord("invalid_utf8", str(exc)) from None
    bounds = event_time_bounds(now, max_age, max_future)
    try:
        return Mention.model_validate_json(text, context=bounds.context())
    except ValidationError as exc:
        raise RejectedRecord(*_describe(exc)) from None
    except Exception as exc:  # whatever the bytes, a record is rejected, never a crash
        raise RejectedRecord("invalid_record", f"{type(exc).__name__}: {exc}") from None


def _json_size(record: DeadLetter) -> int:
    return len(record.model_dump_json().encode())


def dead_letter(
    *,
    reason: DeadLetterReason,
    detail: str,
    stage: str,
    topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    key: bytes | None,
    max_bytes: int = DEAD_LETTER_MAX_BYTES,
) -> bytes:
    """The ``mentions.dlq`` value for a rejected record, at most ``max_bytes`` long.

    The original value is kept whole when it fits; otherwise its first bytes are kept, ``truncated``
    is set and ``original_size`` tells how large it was. The key keeps at most `KEY_KEPT_BYTES`.
    """
    value = value or b""
    kept_key = key[:KEY_KEPT_BYTES] if key is not None else None
    record = DeadLetter(
        reason=reason,
        error=detail[:DETAIL_CHARS],
        stage=stage,
        topic=topic,
        partition=partition,
        offset=offset,
        original_b64="",
        original_key_b64=base64.b64encode(kept_key).decode("ascii") if kept_key is not None else None,
        original_size=len(value),
        original_key_size=len(key) if key is not None else None,
        truncated=False,
        failed_at=utcnow(),
    )
    room = max(0, max_bytes - _json_size(record)) // 4 * 3  # raw bytes whose base64 fits what is left
    kept = value[:room]
    record.original_b64 = base64.b64encode(kept).decode("ascii")
    record.truncated = len(kept) < len(value) or (key is not None and len(kept_key or b"") < len(key))
    return record.model_dump_json().encode()


def reason_of(exc: BaseException, default: DeadLetterReason = "enrich_error") -> tuple[DeadLetterReason, str]:
    """(reason, detail) for any exception raised while processing a record (``default``: an unexpected one)."""
    if isinstance(exc, RejectedRecord):
        return exc.reason, exc.detail
    if isinstance(exc, ValidationError):
        return _describe(exc)
    return default, f"{type(exc).__name__}: {exc}"


class DeadLetterLog:
    """Counts dead letters in ``crisiswatch_dead_letters_total{reason}`` and logs them at WARNING, rate-limited.

    The first dead letter of a reason is logged; more of the same reason within ``interval`` seconds are only
    counted, and the next line of that reason (or `flush`, once the interval has passed) says how many.
    """

    def __init__(self, logger: logging.Logger, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._logged_at: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def record(self, reason: DeadLetterReason, where: str, detail: str) -> None:
        """Count one dead letter (``where``: e.g. ``topic@partition/offset``) and log it unless rate-limited."""
        if reason not in DEAD_LETTER_REASONS:  # a programming error; keep the label set bounded anyway
            reason = "enrich_error"
        metrics.DEAD_LETTERS.labels(reason).inc()
        now = self.clock()
        last = self._logged_at.get(reason)
        if last is not None and now - last < self.interval:
            self._suppressed[reason] += 1
            return
        more = self._suppressed.pop(reason, 0)
        self._logged_at[reason] = now
        self.logger.warning(
            "dead letter %s: %s: %s%s",
            where,
            reason,
            detail[:300],
            f" (and {more} more {reason} in the last {now - last:.0f} s)" if more and last is not None else "",
        )

    def flush(self) -> None:
        """Log the count of dead letters held back for each reason whose interval has passed."""
        now = self.clock()
        for reason in list(self._suppressed):
            last = self._logged_at.get(reason, now)
            if now - last >= self.interval:
                more = self._suppressed.pop(reason)
                self._logged_at[reason] = now
                self.logger.warning("dead letters: …and %d more %s in the last %.0f s", more, reason, now - last)

    @property
    def suppressed(self) -> int:
        """Dead letters counted but not yet reported in a log line."""
        return sum(self._suppressed.values())


def enriched_reason_of(exc: ValidationError) -> tuple[DeadLetterReason, str]:
    """(reason, detail) for a ``mentions.enriched`` record the window stage cannot read: ``future_timestamp``
    when its event time is too far ahead of now, else ``invalid_enriched``."""
    reason, detail = _describe(exc)
    return (reason if reason == "future_timestamp" else "invalid_enriched"), detail


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the broker or the network failed (retry; never blame the record for it)."""
    return isinstance(exc, KafkaError | OSError)


class _Message(Protocol):
    topic: str
    partition: int
    offset: int
    key: Any
    value: Any


class _Producer(Protocol):
    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> Any: ...


async def publish_dead_letter(
    producer: _Producer,
    dlq_topic: str,
    log: DeadLetterLog,
    message: _Message,
    reason: DeadLetterReason,
    detail: str,
    *,
    stage: str,
    max_bytes: int = DEAD_LETTER_MAX_BYTES,
) -> None:
    """Write one dead letter for ``message`` (a consumed record) to ``dlq_topic`` now (for the record-at-a-time
    stages; the batch stages queue theirs with the rest of their batch)."""
    key = message.key if isinstance(message.key, bytes) else None
    value = message.value if isinstance(message.value, bytes) else None
    log.record(reason, f"{message.topic}@{message.partition}/{message.offset}", detail)
    record = dead_letter(
        reason=reason,
        detail=detail,
        stage=stage,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        value=value,
        key=key,
        max_bytes=max_bytes,
    )
    await producer.send_and_wait(dlq_topic, record, key=key[:KEY_KEPT_BYTES] if key else None)

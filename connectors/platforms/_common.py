"""Helpers shared by the platform connectors: checkpoints saved after a flush, id order, rate-limit headers."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable

from crisiswatch.connectors import metrics
from crisiswatch.connectors.base import ConnectorError, StateStore
from crisiswatch.connectors.mapping import parse_timestamp
from crisiswatch.connectors.sink import MentionSink

SAVE_EVERY_SECONDS = 5.0


def newer(candidate: str | None, current: str | None) -> bool:
    """Whether numeric id ``candidate`` is after ``current`` (snowflake ids as strings; None is oldest)."""
    if candidate is None or not str(candidate).isdigit():
        return False
    if current is None or not str(current).isdigit():
        return True
    return (len(candidate), candidate) > (len(current), current)


class Checkpoint:
    """A connector's `StateStore`, written at most every ``every`` seconds and never ahead of what the
    broker has."""

    def __init__(self, state: StateStore, every: float = SAVE_EVERY_SECONDS):
        self.state = state
        self.every = every
        self._saved_at = time.monotonic()

    @property
    def data(self) -> dict:
        return self.state.data

    async def maybe_save(self, sink: MentionSink) -> None:
        """Flush and save when the last save is older than ``every`` seconds."""
        if time.monotonic() - self._saved_at >= self.every:
            await self.save(sink)

    async def save(self, sink: MentionSink | None) -> None:
        """Write the checkpoint once everything handed over before is secured: a store bound to a checkpoint
        backend defers the write itself until the broker acknowledged; a plain file store waits for a flush."""
        if sink is not None and getattr(self.state, "backend", None) is None:
            await sink.flush()
        self.state.save()
        self._saved_at = time.monotonic()


def reset_delay(value: str | None, now: float | None = None) -> float | None:
    """Seconds until a rate-limit reset given as epoch seconds (X) or an ISO 8601 time (Mastodon), ≥ 0."""
    if not value:
        return None
    now = time.time() if now is None else now
    try:
        when: float = parse_timestamp(value.strip()).timestamp()
    except ValueError:
        return None
    return max(0.0, min(when - now, 3600.0))


async def catch_up_or_skip(catching_up: Awaitable[int], kind: str, log: logging.Logger) -> int:
    """Run a REST catch-up. The source refusing it for good (a 4xx: a since id past the search window, a
    token without that access) only logs a warning: the stream is followed anyway, and the next catch-up
    starts from the stream's newest id. Rate limits, 5xx and network errors are raised, so the connector
    reconnects and tries the same catch-up again (the gap stays recoverable)."""
    try:
        return await catching_up
    except ConnectorError as exc:
        if exc.reason != "http_4xx":
            raise
        metrics.count_error(kind, exc.reason)
        log.warning("%s: catch-up refused (%s); following the stream, posts of the outage may be missing", kind, exc)
        return 0

"""Helpers shared by the platform connectors: checkpoints saved after a flush, id order, rate-limit headers."""

from __future__ import annotations

import time

from connectors.base import StateStore
from connectors.mapping import parse_timestamp
from connectors.sink import MentionSink

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

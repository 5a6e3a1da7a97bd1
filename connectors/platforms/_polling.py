"""Shared machinery of the polling platform connectors (Reddit, Hacker News, YouTube).

- `send`: one HTTP request that waits out ``429`` answers (and ``503`` with ``Retry-After``) on the same
  request, up to `MAX_WAITS` times, honouring ``Retry-After`` or a platform's own reset header.
- `FeedMark`: the checkpoint of one feed (a search, a listing, a video's comments): the newest event time
  published so far and the ids published within ``overlap`` seconds of it. A cycle reads the feed newest
  first until it reaches items older than ``newest - overlap``; an item is new when it is at or after that
  cutoff and its id is not remembered. The overlap catches items a platform indexes late (a search index
  that lags by minutes) without publishing anything twice; ``overlap = 0`` is "the newest timestamp plus
  the ids seen at that second".
- `Walk`: what one cycle found in one feed, published oldest first, then committed to its mark.

Checkpoints go through `connectors.base.StateStore` (``state.data`` then ``state.save()``), always after
the sink was flushed, so a crash re-reads rather than skips.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from crisiswatch.connectors import metrics
from crisiswatch.connectors.base import (
    ConnectorError,
    Handover,
    PollingConnector,
    retry_after_seconds,
    safe_url,
    sleep_or_stop,
)
from crisiswatch.contracts.records import Mention

log = logging.getLogger(__name__)
MAX_WAITS = 5
"""How many rate-limit answers one request waits out before the cycle fails (and `run` backs off)."""
MAX_RECENT_IDS = 100_000
"""Upper bound of the ids one feed remembers (the overlap window normally holds far fewer)."""


def stop_event(connector: PollingConnector) -> asyncio.Event:
    """The stop event `PollingConnector.run` installed (a never-set one when `poll_once` is called directly)."""
    return connector._stop  # set by PollingConnector.run for exactly this use


async def send(
    connector: PollingConnector,
    method: str,
    url: str,
    *,
    wait_hint: Callable[[httpx.Response], float | None] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request; a ``429`` (or a ``503`` with ``Retry-After``) is waited out and the request sent again.

    The wait is ``Retry-After``, else ``wait_hint(response)`` (a platform's reset header), else the
    connector's jittered backoff. Any other answer is returned as it is (the caller checks it).
    """
    delay: float | None = None
    for _attempt in range(MAX_WAITS + 1):
        response = await connector.client.request(method, url, **kwargs)
        status = response.status_code
        if status == 429 or (status == 503 and "retry-after" in response.headers):
            delay = retry_after_seconds(response.headers.get("retry-after"))
            if delay is None and wait_hint is not None:
                delay = wait_hint(response) or None  # a reset "now" during a storm: back off instead
            if delay is None:
                delay = connector.backoff.next()
            log.info("%s %s: HTTP %d, retrying in %.1fs", connector.kind, safe_url(url), status, delay)
            metrics.count_error(connector.kind, "rate_limited")
            if await sleep_or_stop(stop_event(connector), delay):
                raise ConnectorError("rate_limited", "stopped while waiting for the rate limit")
            continue
        return response
    raise ConnectorError("rate_limited", f"still rate limited after {MAX_WAITS} waits", delay)


def json_of(response: httpx.Response, what: str) -> Any:
    """The JSON body of a response, or a `ConnectorError` (``parse``) naming ``what`` was asked."""
    try:
        return response.json()
    except ValueError as exc:
        raise ConnectorError("parse", f"{what} did not answer JSON") from exc


def as_int(value: Any, default: int | None = None) -> int | None:
    """A non-negative int from a number or numeric string (negative scores count as 0), else ``default``."""
    if isinstance(value, bool):
        return default
    try:
        return max(0, int(float(value)))
    except (TypeError, ValueError):
        return default


class FeedMark:
    """One feed's checkpoint: the newest event time published and the ids published near it."""

    def __init__(self, data: dict[str, Any] | None, overlap: float):
        data = data or {}
        newest = data.get("newest")
        self.newest: float | None = float(newest) if isinstance(newest, int | float) else None
        recent = data.get("recent")
        self.recent: dict[str, float] = (
            {str(k): float(v) for k, v in recent.items() if isinstance(v, int | float)}
            if isinstance(recent, dict)
            else {}
        )
        self.overlap = overlap

    def cutoff(self, now: float, backfill: float | None) -> float:
        """Oldest event time still read: ``newest - overlap``, or on a first run ``now - backfill``."""
        if self.newest is not None:
            return self.newest - self.overlap
        return float("-inf") if backfill is None else now - backfill

    def knows(self, ident: str) -> bool:
        return ident in self.recent

    def remember(self, ident: str, at: float) -> None:
        self.recent[ident] = at

    def advance(self, newest: float | None) -> None:
        """Move the newest time forward (never back) and forget ids that fell out of the overlap window."""
        if newest is not None and (self.newest is None or newest > self.newest):
            self.newest = newest
        if self.newest is not None:
            floor = self.newest - self.overlap
            self.recent = {k: v for k, v in self.recent.items() if v >= floor}
        if len(self.recent) > MAX_RECENT_IDS:
            keep = sorted(self.recent.items(), key=lambda kv: kv[1])[-MAX_RECENT_IDS:]
            self.recent = dict(keep)

    def to_dict(self) -> dict[str, Any]:
        return {"newest": self.newest, "recent": self.recent}


@dataclass
class Walk:
    """The new items one cycle found in one feed (newest first, as platforms list them)."""

    mark: FeedMark
    cutoff: float
    found: list[tuple[float, Mention]] = field(default_factory=list)
    reached_cutoff: bool = False
    older: int = 0
    """Items seen that are older than the cutoff (the overlap, already published or too late)."""
    ids: set[str] = field(default_factory=set)
    raw: list[tuple[float, str]] = field(default_factory=list)
    """Ids remembered without being handed over as mentions (raw items, items another feed had)."""

    def first_raw(self, ident: str, at: float) -> bool:
        """Whether an item that cannot be a mention (handed over raw) is met for the first time."""
        if at < self.cutoff or ident in self.ids or self.mark.knows(ident):
            return False
        self.ids.add(ident)
        self.raw.append((at, ident))
        return True

    def offer(self, mention: Mention, at: float, *, known: Callable[[str], bool] | None = None) -> bool:
        """Keep a mention when it is new; False when it is older than the cutoff (the walk can stop).

        ``known`` says whether another feed of the same connector already has the id (it is then
        remembered here too, not handed over again)."""
        if at < self.cutoff:
            self.reached_cutoff = True
            self.older += 1
            return False
        if mention.id in self.ids or self.mark.knows(mention.id):
            return True
        self.ids.add(mention.id)
        if known is not None and known(mention.id):
            self.raw.append((at, mention.id))
            return True
        self.found.append((at, mention))
        return True

    async def publish(self, handover: Handover) -> int:
        """Hand the new mentions over, oldest first."""
        published = 0
        for _at, mention in sorted(self.found, key=lambda pair: pair[0]):
            published += await handover.mention(mention)
        return published

    def commit(self) -> None:
        """Once the sink was flushed: the ids are remembered and the newest time moves forward.

        (Not before: a cycle whose hand-over failed finds the same items again on the next cycle.)"""
        for at, mention in self.found:
            self.mark.remember(mention.id, at)
        for at, ident in self.raw:
            self.mark.remember(ident, at)
        self.mark.advance(max((at for at, _ in self.found), default=None))


def epoch_now() -> float:
    return time.time()

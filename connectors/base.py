"""Common machinery of the live connectors.

A connector fetches or receives mentions, normalises them to `crisiswatch.contracts.records.Mention` and hands them
to ``mentions.raw`` through `connectors.sink.MentionSink`; nothing more (no enrichment). What it cannot
normalise it hands over raw (`Handover.raw`) so the pipeline dead-letters it with a reason.

Here: the `Connector` ABC (``await connector.run(sink, stop_event)``), `PollingConnector` (interval,
jittered exponential backoff, ``Retry-After``), `Backoff`, `StateStore` (a connector's checkpoint
document, saved through `connectors.checkpoints`) and `Handover` (publish + metrics; with
`crisiswatch.detectors.seen.SeenIds`, the ids handed over are not sent twice).

Restarts: ETags, cursors, last event ids and the recently seen ids are checkpoints (`StateStore`). Under
``crisiswatch connect`` they live in the compacted ``connectors.checkpoints`` topic (or, explicitly,
JSON files in ``CRISISWATCH_CONNECTOR_STATE_DIR``: `connectors.checkpoints`), written only after the
broker acknowledged the mentions handed over before them, so a connector restarted anywhere resumes
where it stopped and a crash re-reads rather than skips. Ids are stable and the pipeline de-duplicates
by id, so a re-read costs work, never a double count.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import httpx

from crisiswatch.connectors import metrics
from crisiswatch.connectors.mapping import FieldMapping, MappingError
from crisiswatch.connectors.sink import MentionSink
from crisiswatch.contracts.records import Mention
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.detectors.seen import SeenIds

if TYPE_CHECKING:
    from crisiswatch.connectors.checkpoints import Checkpoints

log = logging.getLogger(__name__)
T = TypeVar("T")
SIMPLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_RETRY_AFTER_SECONDS = 3600.0
STOP_GRACE_SECONDS = 30.0


class ConnectorError(Exception):
    """A failed fetch, with a bounded ``reason`` label and the source's ``Retry-After`` if it sent one."""

    def __init__(self, reason: str, detail: str = "", retry_after: float | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.retry_after = retry_after


def error_reason(exc: BaseException) -> str:
    """The metrics reason of an exception."""
    if isinstance(exc, ConnectorError):
        return exc.reason
    if isinstance(exc, httpx.TimeoutException | asyncio.TimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, httpx.TransportError | OSError):
        return "connect"
    with contextlib.suppress(ImportError):
        import aiohttp

        if isinstance(exc, aiohttp.ClientError):
            return "connect"
    return "unexpected"


def safe_url(url: str) -> str:
    """A URL for logs: scheme, host and path only (query strings often carry API keys)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), capped at an hour."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def check_response(response: httpx.Response) -> None:
    """Raise a `ConnectorError` for a 429 (with Retry-After), 5xx or 4xx answer."""
    status = response.status_code
    if status < 400:
        return
    retry_after = retry_after_seconds(response.headers.get("retry-after"))
    if status == 429:
        raise ConnectorError("rate_limited", "HTTP 429", retry_after)
    if status >= 500:
        raise ConnectorError("http_5xx", f"HTTP {status}", retry_after)
    raise ConnectorError("http_4xx", f"HTTP {status}")


def short_hash(text: str) -> str:
    """A stable 16-hex-digit hash (for ids of items without one of their own)."""
    return hashlib.sha1(text.encode("utf-8", errors="surrogateescape")).hexdigest()[:16]


class Backoff:
    """Exponential backoff with jitter: ``initial * 2**n``, capped at ``maximum``, times U(0.5, 1)."""

    def __init__(self, initial: float = 1.0, maximum: float = 300.0, rng: random.Random | None = None):
        self.initial = initial
        self.maximum = maximum
        self.attempts = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        """The delay before the next attempt (grows with every call until `reset`)."""
        ceiling = min(self.maximum, self.initial * (2 ** min(self.attempts, 30)))
        self.attempts += 1
        return ceiling * (0.5 + 0.5 * self._rng.random())

    def reset(self) -> None:
        """Forget past failures (call after a success)."""
        self.attempts = 0


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; return True as soon as ``stop`` is set."""
    if stop.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(seconds, 0.0))
    return stop.is_set()


class StopReconnecting(Exception):
    """A streaming connection ended in a way that must not be retried (e.g. SSE's HTTP 204)."""


async def keep_connected(
    connect: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    *,
    after_end: Callable[[], float],
    after_error: Callable[[Exception], float],
    waiting: Callable[[float], None] | None = None,
) -> None:
    """Hold a streaming connection until ``stop``: run ``connect()`` (one connection, until it ends), then
    wait ``after_end()`` seconds after a clean end, or ``after_error(exc)`` after a failure (it counts the
    failure), and connect again. ``waiting(delay)`` hears each wait; `StopReconnecting` ends it all."""
    while not stop.is_set():
        try:
            await until_stopped(connect(), stop)
            if stop.is_set():
                return
            delay = after_end()
        except StopReconnecting:
            return
        except Exception as exc:  # whatever broke the connection: count it, back off, reconnect
            delay = after_error(exc)
            if stop.is_set():
                return
        if waiting is not None:
            waiting(delay)
        if await sleep_or_stop(stop, delay):
            return


async def until_stopped(awaitable: Awaitable[T], stop: asyncio.Event) -> T | None:
    """Run ``awaitable``; cancel it and return None if ``stop`` is set first."""
    work = asyncio.ensure_future(awaitable)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
    return work.result() if not work.cancelled() else None


class StateStore:
    """A connector's checkpoint: a small JSON document (``data``), saved with `save`.

    Where it goes depends on how it was made. `for_connector` binds it to the checkpoint backend of the
    running sink when there is one (`connectors.checkpoints`: the ``connectors.checkpoints`` topic by
    default, or files): ``save()`` then snapshots ``data`` and the backend writes it once the broker
    acknowledged every mention handed over before the call, so connector code may save right after
    handing over. Without a backend (``StateStore(path)``, or no sink opened checkpoints) it is the
    legacy behaviour: a JSON file written at once (flush the sink first), or memory only.
    """

    def __init__(self, path: Path | None, *, key: str | None = None, backend: Checkpoints | None = None):
        self.path = path
        self.key = key
        """The checkpoint's name in the backend (``<kind>:<name>``)."""
        self.backend = backend
        self.data: dict[str, Any] = {}
        if backend is not None:
            self.data = dict(backend.load(self) or {})
        elif path is not None and path.is_file():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                self.data = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError) as exc:
                log.warning("ignoring unreadable connector state %s: %s", path, exc)

    @classmethod
    def for_connector(
        cls, state_dir: Path | None, kind: str, identity: str, *, backend: Checkpoints | None = None
    ) -> StateStore:
        """The store of one connector instance, named ``<kind>:<identity>`` (a hash of the identity when it
        is not a simple name: URLs may carry keys); its file is ``<state_dir>/<kind>-<hash>.json``.
        ``backend`` defaults to the active one (`connectors.checkpoints.active`)."""
        from crisiswatch.connectors import checkpoints

        backend = backend or checkpoints.active()
        path = Path(state_dir) / f"{kind}-{short_hash(identity)}.json" if state_dir is not None else None
        if backend is None:
            return cls(path)
        name = identity if SIMPLE_NAME.match(identity) else short_hash(identity)
        return cls(path, key=f"{kind}:{name}", backend=backend)

    @property
    def persistent(self) -> bool:
        """Whether `save` keeps the document anywhere (False: memory only)."""
        return self.backend.persistent if self.backend is not None else self.path is not None

    def save(self) -> None:
        """Save a snapshot of ``data`` (see the class docstring for when it is written)."""
        if self.backend is not None:
            self.backend.save(self)
            return
        if self.path is None:
            return
        from crisiswatch.connectors.checkpoints import write_atomic

        write_atomic(self.path, json.dumps(self.data).encode())

    async def saved(self, timeout: float | None = None) -> bool:
        """Wait until every save so far is written (True at once without a backend)."""
        return True if self.backend is None else await self.backend.wait_saved(timeout)


class Handover:
    """Publishes one connector's output to the sink and counts it."""

    def __init__(self, sink: MentionSink, connector: str, seen: SeenIds | None = None):
        self.sink = sink
        self.connector = connector
        self.seen = seen
        self.published = 0
        self.raw_count = 0

    async def mention(self, mention: Mention) -> bool:
        """Publish a mention (skipped, and counted as ignored, when its id was already seen)."""
        if self.seen is not None and mention.id in self.seen:
            metrics.IGNORED.labels(self.connector, "duplicate").inc()
            return False
        await self.sink.send(mention)
        if self.seen is not None:  # only once handed over: a failed send is retried on the next fetch
            self.seen.first_time(mention.id)
        metrics.ITEMS.labels(self.connector).inc()
        self.published += 1
        return True

    async def raw(self, value: bytes, why: str = "") -> None:
        """Hand over input that could not be normalised, as it is, for the pipeline to dead-letter."""
        await self.sink.send_raw(value)
        metrics.count_error(self.connector, "invalid_item")
        self.raw_count += 1
        log.info("%s: handed over an item raw (%s)", self.connector, why[:200])

    async def payload(self, data: bytes | str, mapping: FieldMapping) -> tuple[int, int]:
        """Parse a JSON payload (object or array), map each item and publish it; the rest goes raw.

        Returns (mentions published, items handed over raw).
        """
        raw_bytes = data.encode("utf-8", errors="surrogateescape") if isinstance(data, str) else data
        try:
            parsed = json.loads(raw_bytes)
            items = mapping.items_of(parsed)
        except (ValueError, MappingError) as exc:  # invalid JSON / UTF-8, or no items where expected
            await self.raw(raw_bytes, str(exc))
            return 0, 1
        return await self.items(items, mapping)

    async def items(self, items: Iterable[Any], mapping: FieldMapping) -> tuple[int, int]:
        """Map and publish already-parsed items; unmappable ones go raw. Returns (published, raw)."""
        fetched_at = utcnow()
        published = raw = 0
        for item in items:
            if isinstance(item, dict) and not mapping.matches(item):  # non-objects go raw below
                metrics.IGNORED.labels(self.connector, "no_match").inc()
                continue
            try:
                mention = mapping.to_mention(item, fetched_at)
            except MappingError as exc:
                await self.raw(json.dumps(item, ensure_ascii=False, default=str).encode(), str(exc))
                raw += 1
                continue
            published += await self.mention(mention)
        return published, raw


class Connector(ABC):
    """A source of mentions. ``run`` works until ``stop`` is set, surviving source errors."""

    kind: ClassVar[str] = "connector"
    """Metrics label and state-file prefix: rss, webhook, sse, websocket or poll."""

    @abstractmethod
    async def run(self, sink: MentionSink, stop: asyncio.Event) -> None:
        """Fetch / receive and hand over mentions until ``stop`` is set."""

    def mark_success(self) -> None:
        metrics.LAST_SUCCESS.labels(self.kind).set_to_current_time()

    def stream_failed(self, exc: Exception, backoff: Backoff) -> float:
        """Count a failed stream connection; the wait before the next one: the source's ``Retry-After`` when
        it sent one, else the next step of ``backoff``."""
        self.count_error(exc, "stream")
        if isinstance(exc, ConnectorError) and exc.retry_after is not None:
            return exc.retry_after
        return backoff.next()

    def count_error(self, exc: BaseException, what: str) -> str:
        """Count and log a failure (never with headers or query strings); return its reason."""
        reason = error_reason(exc)
        metrics.count_error(self.kind, reason)
        if reason == "unexpected":
            log.exception("%s %s failed", self.kind, what)
        else:
            log.warning("%s %s failed: %s", self.kind, what, exc)
        return reason


class PollingConnector(Connector):
    """A connector that polls: `poll_once` every ``interval`` seconds (±10 % jitter); after an error,
    jittered exponential backoff, or the source's ``Retry-After`` when it sent one."""

    def __init__(self, interval: float, backoff: Backoff, state: StateStore, timeout: float, user_agent: str):
        self.interval = interval
        self.backoff = backoff
        self.state = state
        self.timeout = timeout
        self.user_agent = user_agent
        self._client: httpx.AsyncClient | None = None
        self._stop = asyncio.Event()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout, follow_redirects=True, headers={"User-Agent": self.user_agent}
            )
        return self._client

    @abstractmethod
    async def poll_once(self, sink: MentionSink) -> int:
        """One fetch cycle; return how many mentions were published."""

    async def aclose(self) -> None:
        """Close the HTTP client and write the checkpoint."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self.state.save()

    async def run(self, sink: MentionSink, stop: asyncio.Event) -> None:
        self._stop = stop
        try:
            while not stop.is_set():
                try:
                    await until_stopped(self.poll_once(sink), stop)
                    self.backoff.reset()
                    delay = self.interval * random.uniform(0.9, 1.1)
                except ConnectorError as exc:
                    self.count_error(exc, "poll")
                    delay = exc.retry_after if exc.retry_after is not None else self.backoff.next()
                except Exception as exc:
                    self.count_error(exc, "poll")
                    delay = self.backoff.next()
                if await sleep_or_stop(stop, delay):
                    break
        finally:
            await self.aclose()


async def run_connectors(connectors: list[Connector], sink: MentionSink, stop: asyncio.Event) -> None:
    """Run several connectors on one sink until ``stop``; one crashing stops all (and is re-raised)."""
    tasks = [asyncio.create_task(c.run(sink, stop), name=f"connector-{c.kind}") for c in connectors]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                stop.set()
                raise task.exception()  # type: ignore[misc]
    finally:
        stop.set()
        # a connector may be waiting for the sink (broker down, no spool room): give it time, then let go;
        # the sink keeps what is undelivered in its spool (or reports it) when it closes
        _, waiting = await asyncio.wait(tasks, timeout=STOP_GRACE_SECONDS)
        if waiting:
            sink.release_waiters()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sink.flush(), STOP_GRACE_SECONDS)

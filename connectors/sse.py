"""Server-Sent Events stream connector (social firehoses and streaming APIs that speak SSE).

The wire format is parsed by httpx-sse (WHATWG event-stream rules: ``event``/``data``/``id``/``retry``
fields, multi-line ``data`` joined with newlines, ``:`` comment lines such as heartbeats ignored, CR/LF
line ends). Every event with data is JSON (an object or an array) mapped to mentions by a
`connectors.mapping.FieldMapping`; data that is not JSON, or items that do not map, are handed over raw.

When the stream ends or breaks the connector reconnects, sending ``Last-Event-ID`` with the last id the
server gave, after the server's ``retry:`` delay (a clean end) or jittered exponential backoff (an
error). A ``204 No Content`` answer means "stop" (per the SSE spec): the connector returns. No bytes for
``idle_timeout`` seconds (no data and no heartbeat) counts as a dropped connection. The last event id is
kept in the checkpoint (written at most every 5 s) when a state dir is configured.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
from httpx_sse import SSEError, aconnect_sse

from crisiswatch.connectors import metrics
from crisiswatch.connectors.base import (
    Backoff,
    Connector,
    ConnectorError,
    Handover,
    StateStore,
    StopReconnecting,
    check_response,
    keep_connected,
    safe_url,
)
from crisiswatch.connectors.mapping import FieldMapping
from crisiswatch.connectors.sink import MentionSink
from crisiswatch.detectors.seen import SeenIds

log = logging.getLogger(__name__)
SAVE_EVERY_SECONDS = 5.0


class SseConnector(Connector):
    """Follows one SSE stream and publishes its events' items."""

    kind = "sse"

    def __init__(
        self,
        url: str,
        mapping: FieldMapping,
        *,
        headers: dict[str, str] | None = None,
        events: set[str] | None = None,
        reconnect_seconds: float = 3.0,
        idle_timeout: float = 90.0,
        state: StateStore | None = None,
        backoff: Backoff | None = None,
        timeout: float = 30.0,
        user_agent: str = "crisiswatch-connector/0.1",
    ):
        self.url = url
        self.mapping = mapping
        self.headers = dict(headers or {})
        self.events = events
        self.reconnect_seconds = reconnect_seconds
        self.idle_timeout = idle_timeout
        self.state = state or StateStore(None)
        self.backoff = backoff or Backoff()
        self.timeout = timeout
        self.user_agent = user_agent
        self.last_event_id: str = self.state.data.get("last_event_id") or ""
        self.seen = SeenIds(max_ids=10_000)
        self.connections = 0
        self._saved_at = 0.0

    async def run(self, sink: MentionSink, stop: asyncio.Event) -> None:
        handover = Handover(sink, self.kind, self.seen)
        timeout = httpx.Timeout(self.timeout, read=self.idle_timeout)
        async with httpx.AsyncClient(timeout=timeout, headers={"User-Agent": self.user_agent}) as client:
            try:
                await keep_connected(
                    lambda: self._follow(client, handover),
                    stop,
                    after_end=lambda: self.reconnect_seconds,  # the server ended the stream cleanly
                    after_error=lambda exc: self.stream_failed(exc, self.backoff),
                )
            finally:
                await sink.flush()
                self._save()

    async def _follow(self, client: httpx.AsyncClient, handover: Handover) -> None:
        headers = dict(self.headers)
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        async with aconnect_sse(client, "GET", self.url, headers=headers) as source:
            response = source.response
            if response.status_code == 204:
                log.warning("sse %s answered 204: not reconnecting", safe_url(self.url))
                raise StopReconnecting
            check_response(response)
            self.connections += 1
            self.mark_success()
            try:
                async for event in source.aiter_sse():
                    if event.retry is not None:
                        self.reconnect_seconds = event.retry / 1000.0
                    if not event.data:  # heartbeat, or an id/retry-only block
                        await self._remember_id(event.id, handover)
                        continue
                    if self.events is None or (event.event or "message") in self.events:
                        await handover.payload(event.data, self.mapping)
                    else:
                        metrics.IGNORED.labels(self.kind, "event_type").inc()
                    await self._remember_id(event.id, handover)  # after publishing: a crash re-reads, never skips
                    self.backoff.reset()
                    self.mark_success()
            except SSEError as exc:
                raise ConnectorError("parse", str(exc)) from exc
            except httpx.RemoteProtocolError as exc:
                raise ConnectorError("connect", "stream dropped") from exc

    async def _remember_id(self, event_id: str, handover: Handover) -> None:
        if event_id == self.last_event_id:
            return
        self.last_event_id = event_id
        self.state.data["last_event_id"] = event_id
        if self.state.persistent and time.monotonic() - self._saved_at >= SAVE_EVERY_SECONDS:
            await handover.sink.flush()  # the checkpoint never runs ahead of what Kafka has
            self._save()

    def _save(self) -> None:
        self.state.save()
        self._saved_at = time.monotonic()

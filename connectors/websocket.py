"""WebSocket stream connector (aiohttp client).

On every (re)connect it sends the configured subscribe messages (JSON, one text frame each). Every text
(or binary) frame is JSON — an object or an array — mapped to mentions by a
`connectors.mapping.FieldMapping`; a frame that is not JSON, or an item that does not map, is handed
over raw. Frames that fail the mapping's ``match`` filter (acks, "subscribed", server status) are
ignored and counted. The client pings every ``heartbeat`` seconds and drops a connection whose pong does
not come back (aiohttp's heartbeat); server pings are answered automatically. A closed or broken
connection is re-opened after jittered exponential backoff (reset by every frame received).

Cursor resume (streams that replay from a position, such as Bluesky Jetstream's ``cursor=<time_us>``):
with ``cursor_path`` (where the position is in each frame, e.g. ``time_us``) and ``cursor_param`` (the
query parameter to send it in on (re)connect), or the mapping file's ``cursor: {path: …, param: …}``,
the last position is kept in the checkpoint (`connectors.base.StateStore`, at most every 5 s and at the
end; written once the broker acknowledged the mentions before it), so a restarted connector, on any
machine, asks the stream to continue from there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

from crisiswatch.connectors.base import (
    Backoff,
    Connector,
    ConnectorError,
    Handover,
    StateStore,
    keep_connected,
    safe_url,
)
from crisiswatch.connectors.mapping import MISSING, FieldMapping, get_path
from crisiswatch.connectors.sink import MentionSink
from crisiswatch.detectors.seen import SeenIds

log = logging.getLogger(__name__)
SAVE_EVERY_SECONDS = 5.0


class WebSocketConnector(Connector):
    """Follows one WebSocket stream and publishes its frames' items."""

    kind = "websocket"

    def __init__(
        self,
        url: str,
        mapping: FieldMapping,
        *,
        subscribe: list[Any] | None = None,
        headers: dict[str, str] | None = None,
        heartbeat: float = 30.0,
        max_frame_bytes: int = 4 << 20,
        backoff: Backoff | None = None,
        timeout: float = 30.0,
        user_agent: str = "crisiswatch-connector/0.1",
        state: StateStore | None = None,
        cursor_path: str | None = None,
        cursor_param: str | None = None,
    ):
        cursor = mapping.extra.get("cursor") or {}
        self.cursor_path = cursor_path or cursor.get("path")
        self.cursor_param = cursor_param or cursor.get("param")
        self.state = state or StateStore(None)
        self.cursor: Any = self.state.data.get("cursor")
        self._saved_at = time.monotonic()
        self.url = url
        self.mapping = mapping
        self.subscribe = list(subscribe or [])
        self.headers = dict(headers or {})
        self.heartbeat = heartbeat
        self.max_frame_bytes = max_frame_bytes
        self.backoff = backoff or Backoff()
        self.timeout = timeout
        self.user_agent = user_agent
        self.seen = SeenIds(max_ids=10_000)
        self.connections = 0

    async def run(self, sink: MentionSink, stop: asyncio.Event) -> None:
        handover = Handover(sink, self.kind, self.seen)
        headers = {"User-Agent": self.user_agent, **self.headers}
        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeout)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            try:
                await keep_connected(
                    lambda: self._follow(session, handover),
                    stop,
                    after_end=self._closed_by_server,
                    after_error=lambda exc: self.stream_failed(exc, self.backoff),
                )
            finally:
                await self._save(sink)

    def _closed_by_server(self) -> float:
        log.info("websocket %s closed by the server; reconnecting", safe_url(self.url))
        return self.backoff.next()

    def connect_url(self) -> str:
        """The URL to (re)connect to: with the cursor parameter once a position is known."""
        if not (self.cursor_param and self.cursor is not None):
            return self.url
        parts = urlsplit(self.url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != self.cursor_param]
        query.append((self.cursor_param, str(self.cursor)))
        return urlunsplit(parts._replace(query=urlencode(query)))

    async def _save(self, sink: MentionSink) -> None:
        """Checkpoint the cursor (after the acknowledgement of what came before: see `StateStore`)."""
        self._saved_at = time.monotonic()
        if self.cursor is None or (self.state.data.get("cursor") == self.cursor and self.state.backend is not None):
            return
        self.state.data["cursor"] = self.cursor
        if self.state.backend is None:
            await sink.flush()  # a plain file is written at once: only after the sink secured the records
        self.state.save()

    def _remember_cursor(self, data: str | bytes) -> None:
        try:
            value = get_path(json.loads(data), self.cursor_path or "")
        except ValueError:
            return
        if value is not MISSING and value is not None:
            self.cursor = value

    async def _follow(self, session: aiohttp.ClientSession, handover: Handover) -> None:
        async with session.ws_connect(
            self.connect_url(),
            heartbeat=self.heartbeat,
            max_msg_size=self.max_frame_bytes,
        ) as ws:
            self.connections += 1
            self.mark_success()
            for message in self.subscribe:
                await ws.send_str(message if isinstance(message, str) else json.dumps(message))
            async for frame in ws:
                if frame.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    await handover.payload(frame.data, self.mapping)
                    if self.cursor_path:
                        self._remember_cursor(frame.data)  # after handing over: a crash re-reads, never skips
                        if self.state.persistent and time.monotonic() - self._saved_at >= SAVE_EVERY_SECONDS:
                            await self._save(handover.sink)
                    self.backoff.reset()
                    self.mark_success()
                elif frame.type == aiohttp.WSMsgType.ERROR:
                    raise ConnectorError("connect", f"websocket error: {ws.exception()}")
            if ws.close_code not in (None, 1000, 1001):
                raise ConnectorError("connect", f"closed with code {ws.close_code}")

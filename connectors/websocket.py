"""WebSocket stream connector (aiohttp client).

On every (re)connect it sends the configured subscribe messages (JSON, one text frame each). Every text
(or binary) frame is JSON — an object or an array — mapped to mentions by a
`connectors.mapping.FieldMapping`; a frame that is not JSON, or an item that does not map, is handed
over raw. Frames that fail the mapping's ``match`` filter (acks, "subscribed", server status) are
ignored and counted. The client pings every ``heartbeat`` seconds and drops a connection whose pong does
not come back (aiohttp's heartbeat); server pings are answered automatically. A closed or broken
connection is re-opened after jittered exponential backoff (reset by every frame received).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp

from connectors.base import (
    Backoff,
    Connector,
    ConnectorError,
    Handover,
    SeenIds,
    safe_url,
    sleep_or_stop,
    until_stopped,
)
from connectors.mapping import FieldMapping
from connectors.sink import MentionSink

log = logging.getLogger(__name__)


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
    ):
        self.url = url
        self.mapping = mapping
        self.subscribe = list(subscribe or [])
        self.headers = dict(headers or {})
        self.heartbeat = heartbeat
        self.max_frame_bytes = max_frame_bytes
        self.backoff = backoff or Backoff()
        self.timeout = timeout
        self.user_agent = user_agent
        self.seen = SeenIds(capacity=10_000)
        self.connections = 0

    async def run(self, sink: MentionSink, stop: asyncio.Event) -> None:
        handover = Handover(sink, self.kind, self.seen)
        headers = {"User-Agent": self.user_agent, **self.headers}
        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeout)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            try:
                while not stop.is_set():
                    try:
                        await until_stopped(self._follow(session, handover), stop)
                        if not stop.is_set():
                            log.info("websocket %s closed by the server; reconnecting", safe_url(self.url))
                    except ConnectorError as exc:
                        self.count_error(exc, "stream")
                    except Exception as exc:
                        self.count_error(exc, "stream")
                    if await sleep_or_stop(stop, self.backoff.next()):
                        break
            finally:
                await sink.flush()

    async def _follow(self, session: aiohttp.ClientSession, handover: Handover) -> None:
        async with session.ws_connect(
            self.url,
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
                    self.backoff.reset()
                    self.mark_success()
                elif frame.type == aiohttp.WSMsgType.ERROR:
                    raise ConnectorError("connect", f"websocket error: {ws.exception()}")
            if ws.close_code not in (None, 1000, 1001):
                raise ConnectorError("connect", f"closed with code {ws.close_code}")

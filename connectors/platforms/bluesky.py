"""Bluesky through Jetstream: the network's posts as JSON over a WebSocket, filtered by brand here.

Connects to ``<url>?wantedCollections=app.bsky.feed.post[&cursor=<time_us>]``. A message is
``{"did", "time_us", "kind": "commit", "commit": {"operation": "create", "collection", "rkey",
"record": {...}}}``; ``identity`` and ``account`` events, deletes and updates are skipped. Jetstream has no
text filter, so only posts whose text names a watched brand of the brands file (the pipeline's own
`detectors.brands.TermMatcher`: whole words, ``#tag``/``@handle`` forms, exclusions) are handed over;
the rest are counted as ignored (``why="no_match"``).

A post becomes the mention ``bluesky:at://<did>/app.bsky.feed.post/<rkey>`` with ``createdAt``, the first
of ``langs``, the DID as author id, ``https://bsky.app/profile/<did>/post/<rkey>`` as url, and its reply
(``reply.parent`` / ``reply.root``) and quote (``embed`` of type ``app.bsky.embed.record`` or
``…recordWithMedia``) as context, in the same ``bluesky:at://…`` form.

Cursor resume: the checkpoint keeps the ``time_us`` of the last message processed (saved after a flush
at most every 5 s) and the ids handed over recently. A reconnect — or a restart — asks for
``cursor = last time_us - cursor_margin`` (Jetstream's advice: rewind a few seconds), and the
replayed overlap is dropped by id, so nothing is missed and nothing is counted twice. No frame for
``idle_timeout`` seconds is a stalled connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
from pydantic import Field

from crisiswatch.connectors import metrics
from crisiswatch.connectors.base import (
    Backoff,
    Connector,
    ConnectorError,
    Handover,
    StateStore,
    keep_connected,
    retry_after_seconds,
    safe_url,
)
from crisiswatch.connectors.mapping import MappingError, parse_timestamp
from crisiswatch.connectors.platforms._common import SAVE_EVERY_SECONDS, Checkpoint
from crisiswatch.connectors.sink import MentionSink
from crisiswatch.connectors.sources import BuildContext, Duration, DurationOrZero, SourceConfig, source_kind
from crisiswatch.contracts.records import Author, Context, Mention
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.detectors.brands import BrandsConfig, TermMatcher
from crisiswatch.detectors.seen import SeenIds

log = logging.getLogger(__name__)
POST = "app.bsky.feed.post"
QUOTE_TYPES = ("app.bsky.embed.record", "app.bsky.embed.recordWithMedia")
DEFAULT_URL = "wss://jetstream2.us-east.bsky.network/subscribe"


def _uri_id(uri: Any) -> str | None:
    return f"bluesky:{uri}" if isinstance(uri, str) and uri.startswith("at://") else None


def post_to_mention(event: dict[str, Any], fetched_at: Any) -> Mention:
    """The mention of one Jetstream ``create`` commit of a post. Raises MappingError when it cannot."""
    did, commit = event.get("did"), event.get("commit") or {}
    record, rkey = commit.get("record") or {}, commit.get("rkey")
    if not isinstance(did, str) or not isinstance(rkey, str) or not isinstance(record, dict):
        raise MappingError("commit without did, rkey or record")
    text = record.get("text")
    if not isinstance(text, str):
        raise MappingError("post record without text")
    created = parse_timestamp(record.get("createdAt"))
    langs = record.get("langs")
    reply = record.get("reply") or {}
    embed = record.get("embed") or {}
    quoted = None
    if isinstance(embed, dict) and embed.get("$type") in QUOTE_TYPES:
        inner = embed.get("record") or {}
        if embed.get("$type") == QUOTE_TYPES[1]:  # recordWithMedia: {"record": {"record": {"uri"}}}
            inner = inner.get("record") or {}
        quoted = _uri_id(inner.get("uri"))
    try:
        return Mention(
            id=f"bluesky:at://{did}/{POST}/{rkey}",
            source="bluesky",
            text=text,
            created_at=created,
            url=f"https://bsky.app/profile/{did}/post/{rkey}",
            lang=str(langs[0]).split("-")[0].lower() if isinstance(langs, list) and langs else None,
            author=Author(id=did),
            fetched_at=fetched_at,
            context=Context(
                in_reply_to=_uri_id((reply.get("parent") or {}).get("uri")),
                root=_uri_id((reply.get("root") or {}).get("uri")),
                quotes=quoted,
            ),
        )
    except ValueError as exc:
        raise MappingError(f"invalid post: {str(exc).splitlines()[0]}") from exc


class BlueskySource(SourceConfig):
    """``kind: bluesky`` options."""

    url: str = Field(DEFAULT_URL, description="Jetstream subscribe endpoint (wss://…/subscribe).")
    brands: list[str] | None = Field(None, description="Only these brand ids of the brands file (default: all).")
    cursor_margin: DurationOrZero = Field(5.0, ge=0, le=3600, description="Rewind of the cursor on reconnect.")
    idle_timeout: Duration = Field(60.0, gt=0)
    heartbeat: Duration = Field(30.0, gt=0)
    checkpoint_every: Duration = Field(SAVE_EVERY_SECONDS, gt=0, description="Checkpoint at most this often.")


class BlueskyConnector(Connector):
    """Follows Jetstream's post commits and hands over those that name a watched brand."""

    kind = "bluesky"

    def __init__(
        self,
        brands: BrandsConfig,
        *,
        url: str = DEFAULT_URL,
        only_brands: list[str] | None = None,
        cursor_margin_seconds: float = 5.0,
        idle_timeout: float = 60.0,
        heartbeat: float = 30.0,
        checkpoint_every: float = SAVE_EVERY_SECONDS,
        state: StateStore | None = None,
        backoff: Backoff | None = None,
        timeout: float = 30.0,
        user_agent: str = "crisiswatch-connector/0.1",
    ):
        wanted = [b for b in brands.brands if only_brands is None or b.id in only_brands]
        if not wanted:
            raise ValueError(f"none of the brands {only_brands} is in the brands file")
        self.matcher = TermMatcher(wanted)
        self.url = url
        self.margin_us = int(cursor_margin_seconds * 1_000_000)
        self.idle_timeout = idle_timeout
        self.heartbeat = heartbeat
        self.checkpoint = Checkpoint(state or StateStore(None), every=checkpoint_every)
        self.backoff = backoff or Backoff()
        self.timeout = timeout
        self.user_agent = user_agent
        self.seen = SeenIds(self.checkpoint.data.get("seen", []), max_ids=5000)
        self.connections = 0
        self.cursors: list[int | None] = []  # the cursor each connection asked for (for logs and tests)

    @property
    def last_time_us(self) -> int | None:
        value = self.checkpoint.data.get("time_us")
        return int(value) if isinstance(value, int | str) and str(value).isdigit() else None

    def subscribe_params(self) -> dict[str, str]:
        """The query of the next connection: the collection, and the cursor rewound by the margin."""
        params = {"wantedCollections": POST}
        last = self.last_time_us
        if last is not None:
            params["cursor"] = str(max(0, last - self.margin_us))
        return params

    async def run(self, sink: MentionSink, stop: asyncio.Event) -> None:
        handover = Handover(sink, self.kind, self.seen)
        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeout)
        async with aiohttp.ClientSession(headers={"User-Agent": self.user_agent}, timeout=timeout) as session:
            try:
                await keep_connected(
                    lambda: self._follow(session, handover),
                    stop,
                    after_end=self._closed_by_server,
                    after_error=lambda exc: self.stream_failed(exc, self.backoff),
                )
            finally:
                await self._save(handover)

    def _closed_by_server(self) -> float:
        log.info("bluesky %s closed by the server; reconnecting", safe_url(self.url))
        return self.backoff.next()

    async def _save(self, handover: Handover) -> None:
        self.checkpoint.data["seen"] = self.seen.to_list()[-2000:]
        await self.checkpoint.save(handover.sink)

    async def _follow(self, session: aiohttp.ClientSession, handover: Handover) -> None:
        params = self.subscribe_params()
        self.cursors.append(int(params["cursor"]) if "cursor" in params else None)
        try:
            ws = await session.ws_connect(self.url, params=params, heartbeat=self.heartbeat, max_msg_size=4 << 20)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 429:
                retry = retry_after_seconds((exc.headers or {}).get("Retry-After"))
                raise ConnectorError("rate_limited", "HTTP 429", retry) from exc
            reason = "http_5xx" if exc.status >= 500 else "http_4xx"
            raise ConnectorError(reason, f"HTTP {exc.status}") from exc
        async with ws:
            self.connections += 1
            self.mark_success()
            while True:
                try:
                    frame = await ws.receive(timeout=self.idle_timeout)
                except TimeoutError as exc:
                    raise ConnectorError("timeout", f"no message for {self.idle_timeout:.0f}s") from exc
                if frame.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    await self._message(frame.data, handover)
                    self.backoff.reset()
                    self.mark_success()
                elif frame.type == aiohttp.WSMsgType.ERROR:
                    raise ConnectorError("connect", f"websocket error: {ws.exception()}")
                elif frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                    break
            if ws.close_code not in (None, 1000, 1001):
                raise ConnectorError("connect", f"closed with code {ws.close_code}")

    async def _message(self, data: str | bytes, handover: Handover) -> None:
        try:
            event = json.loads(data)
        except ValueError as exc:
            raw = data if isinstance(data, bytes) else data.encode("utf-8", errors="surrogateescape")
            await handover.raw(raw, f"not JSON: {exc}")
            return
        if not isinstance(event, dict):
            await handover.raw(json.dumps(event).encode(), "message is not an object")
            return
        commit = event.get("commit") or {}
        if event.get("kind") != "commit" or not isinstance(commit, dict):
            metrics.IGNORED.labels(self.kind, "event_type").inc()  # identity, account
        elif commit.get("operation") != "create" or commit.get("collection") != POST:
            metrics.IGNORED.labels(self.kind, "event_type").inc()  # delete, update, other collections
        else:
            await self._post(event, handover)
        time_us = event.get("time_us")
        if isinstance(time_us, int) and (self.last_time_us is None or time_us > self.last_time_us):
            self.checkpoint.data["time_us"] = time_us
            self.checkpoint.data["seen"] = self.seen.to_list()[-2000:]
            await self.checkpoint.maybe_save(handover.sink)

    async def _post(self, event: dict[str, Any], handover: Handover) -> None:
        text = ((event.get("commit") or {}).get("record") or {}).get("text")
        if not isinstance(text, str) or not self.matcher.match(text):
            metrics.IGNORED.labels(self.kind, "no_match").inc()
            return
        try:
            mention = post_to_mention(event, utcnow())
        except MappingError as exc:
            key = f"bluesky:raw:{event.get('did')}:{(event.get('commit') or {}).get('rkey')}"
            if self.seen.first_time(key):  # a replayed overlap must not dead-letter it twice
                await handover.raw(json.dumps(event, ensure_ascii=False).encode(), str(exc))
            return
        await handover.mention(mention)


@source_kind("bluesky", BlueskySource)
def build(config: BlueskySource, ctx: BuildContext) -> Connector:
    """The connector of a ``kind: bluesky`` entry (brands from the sources file's brands file)."""
    return BlueskyConnector(
        ctx.brands(),
        url=config.url,
        only_brands=config.brands,
        cursor_margin_seconds=config.cursor_margin,
        checkpoint_every=config.checkpoint_every,
        idle_timeout=config.idle_timeout,
        heartbeat=config.heartbeat,
        state=ctx.state(config),
        **ctx.http(),
    )

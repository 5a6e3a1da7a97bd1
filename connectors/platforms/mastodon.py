"""Mastodon: the streaming API (SSE) of one instance, with REST catch-up after every reconnect.

Stream (``timeline``): ``public`` (``/api/v1/streaming/public``, ``public/local`` with ``local: true``),
``hashtag`` (``/hashtag?tag=``, ``hashtag/local``) or ``list`` (``/list?list=``, needs a token). Events:
``update`` carries a Status (JSON) and becomes a mention; ``status.update`` (an edit) is the same status
again (dropped as a repeat); ``delete`` and the rest are ignored and counted; ``:thump`` heartbeats keep
the connection alive (no byte for ``idle_timeout`` seconds is a dropped connection).

A Status becomes a mention with its HTML ``content`` as plain text (stdlib ``html.parser``; a content
warning, ``spoiler_text``, goes first), ``language`` as ``lang``, the account as author, favourites /
reblogs / replies as metrics and ``in_reply_to_id`` as reply context. A reblog *is* its original status:
id, text and author are the original's, so every boost of one post is one mention.

Brand filter: the public timeline is every post of the instance (or the federation), so by default only
posts whose text names a watched brand of the brands file are handed over (the pipeline's own
`detectors.brands.TermMatcher`, as for Bluesky; the rest are counted as ignored, ``why="no_match"``).
Hashtag and list timelines pass every post on: choosing the tag or the list is the filter.
``match_brands`` overrides either default.

Catch-up: the checkpoint keeps the newest status id seen. Each time the stream (re)connects, after the
stream answered and before its events are read, the REST timeline of the same stream
(``/api/v1/timelines/tag/:hashtag``, ``/timelines/public``, ``/timelines/list/:id``) is read with
``since_id`` page by page (``max_id`` walking back), plus ``/api/v2/search?type=statuses`` with
``min_id`` for each ``search`` query; the overlap with the stream is dropped by id. REST calls honour
``X-RateLimit-Remaining`` / ``X-RateLimit-Reset`` (waiting for the reset at 0) and ``429``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
from httpx_sse import SSEError, aconnect_sse
from pydantic import Field, model_validator

from crisiswatch.connectors import metrics
from crisiswatch.connectors.base import (
    Backoff,
    Connector,
    ConnectorError,
    Handover,
    StateStore,
    check_response,
    keep_connected,
    retry_after_seconds,
    safe_url,
    sleep_or_stop,
)
from crisiswatch.connectors.mapping import MappingError, parse_timestamp
from crisiswatch.connectors.platforms._common import (
    SAVE_EVERY_SECONDS,
    Checkpoint,
    catch_up_or_skip,
    newer,
    reset_delay,
)
from crisiswatch.connectors.rss import html_to_text
from crisiswatch.connectors.sink import MentionSink
from crisiswatch.connectors.sources import BuildContext, Duration, SourceConfig, SourcesFileError, source_kind
from crisiswatch.contracts.records import Author, Context, Mention, Metrics
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.detectors.brands import TermMatcher
from crisiswatch.detectors.seen import SeenIds

log = logging.getLogger(__name__)
PAGE_LIMIT = 40  # the largest page the timeline endpoints give
MAX_RATE_LIMIT_WAITS = 5


def status_to_mention(status: dict[str, Any], host: str, fetched_at: datetime, channel: str | None = None) -> Mention:
    """The mention of one Status (a reblog becomes its original). Raises MappingError when it cannot."""
    original = status.get("reblog") or status
    if not isinstance(original, dict) or not original.get("id"):
        raise MappingError("status without an id")
    created = parse_timestamp(original.get("created_at"))
    text = html_to_text(str(original.get("content") or ""))
    warning = html_to_text(str(original.get("spoiler_text") or ""))
    if warning:
        text = f"{warning}\n{text}" if text else warning
    account = original.get("account") or {}
    acct = str(account.get("acct") or account.get("username") or "")
    if acct and "@" not in acct:
        acct = f"{acct}@{host}"  # local accounts are named without their instance
    reply_to = original.get("in_reply_to_id")
    try:
        return Mention(
            id=f"mastodon:{host}:{original['id']}",
            source="mastodon",
            text=text,
            created_at=created,
            url=original.get("url") or original.get("uri"),
            lang=original.get("language") or None,
            author=Author(
                id=str(account["id"]) if account.get("id") else None,
                handle=acct or None,
                followers=account.get("followers_count"),
            ),
            metrics=Metrics(
                likes=original.get("favourites_count"),
                shares=original.get("reblogs_count"),
                replies=original.get("replies_count"),
            ),
            fetched_at=fetched_at,
            context=Context(in_reply_to=f"mastodon:{host}:{reply_to}" if reply_to else None, channel=channel),
        )
    except ValueError as exc:
        raise MappingError(f"invalid status: {str(exc).splitlines()[0]}") from exc


class MastodonSource(SourceConfig):
    """``kind: mastodon`` options."""

    base_url: str = Field(description="The instance, e.g. https://mastodon.social")
    timeline: Literal["public", "hashtag", "list"] = "hashtag"
    tag: str | None = Field(None, description="hashtag timeline: the tag, without '#'.")
    list_id: str | None = Field(None, description="list timeline: the list id (needs a token).")
    local: bool = Field(False, description="public/hashtag: only posts of this instance.")
    search: list[str] = Field(default_factory=list, description="Queries read with /api/v2/search on reconnect.")
    token_env: str | None = Field(None, description="Environment variable holding the access token.")
    streaming_url: str | None = Field(None, description="Streaming server, when not at base_url.")
    idle_timeout: Duration = Field(90.0, gt=0)
    checkpoint_every: Duration = Field(SAVE_EVERY_SECONDS, gt=0, description="Checkpoint at most this often.")
    match_brands: bool | None = Field(
        None, description="Hand over only posts naming a brand of the brands file (default: public only)."
    )
    brands: list[str] | None = Field(None, description="With the brand filter: only these brand ids (default: all).")
    max_pages: int = Field(10, ge=1, le=100)

    @model_validator(mode="after")
    def _timeline_options(self) -> MastodonSource:
        if self.timeline == "hashtag" and not self.tag:
            raise ValueError("timeline hashtag needs 'tag'")
        if self.timeline == "list" and not (self.list_id and self.token_env):
            raise ValueError("timeline list needs 'list_id' and 'token_env'")
        if self.tag:
            self.tag = self.tag.lstrip("#")
        return self


class MastodonConnector(Connector):
    """Follows one Mastodon streaming timeline and catches up over REST after each reconnect."""

    kind = "mastodon"

    def __init__(
        self,
        base_url: str,
        *,
        timeline: str = "hashtag",
        tag: str | None = None,
        list_id: str | None = None,
        local: bool = False,
        search: list[str] | None = None,
        token: str | None = None,
        streaming_url: str | None = None,
        idle_timeout: float = 90.0,
        max_pages: int = 10,
        checkpoint_every: float = SAVE_EVERY_SECONDS,
        matcher: TermMatcher | None = None,
        state: StateStore | None = None,
        backoff: Backoff | None = None,
        timeout: float = 30.0,
        user_agent: str = "crisiswatch-connector/0.1",
    ):
        self.base_url = base_url.rstrip("/")
        self.host = (urlsplit(self.base_url).hostname or "unknown").lower()
        self.timeline, self.tag, self.list_id, self.local = timeline, tag, list_id, local
        self.search = list(search or [])
        self.streaming_url = (streaming_url or self.base_url).rstrip("/")
        self.idle_timeout = idle_timeout
        self.max_pages = max_pages
        self.checkpoint = Checkpoint(state or StateStore(None), every=checkpoint_every)
        self.matcher = matcher  # None: every post is handed over
        self.backoff = backoff or Backoff()
        self.timeout = timeout
        self.headers = {"User-Agent": user_agent}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.seen = SeenIds(self.checkpoint.data.get("seen", []), max_ids=5000)
        self.channel = f"#{tag}" if timeline == "hashtag" else f"list:{list_id}" if timeline == "list" else None
        self.connections = 0
        self.rest_requests = 0
        self._stop = asyncio.Event()

    # --- endpoints ------------------------------------------------------------------------------------------
    def stream_request(self) -> tuple[str, dict[str, str]]:
        """URL and query of the streaming endpoint."""
        path = {"public": "public", "hashtag": "hashtag", "list": "list"}[self.timeline]
        if self.local and self.timeline in ("public", "hashtag"):
            path += "/local"
        params = {"tag": self.tag or ""} if self.timeline == "hashtag" else {}
        if self.timeline == "list":
            params = {"list": self.list_id or ""}
        return f"{self.streaming_url}/api/v1/streaming/{path}", params

    def catch_up_requests(self) -> list[tuple[str, dict[str, str], str]]:
        """(URL, query, since parameter) of the REST reads that fill a gap."""
        local = {"local": "true"} if self.local else {}
        if self.timeline == "hashtag":
            first = (f"{self.base_url}/api/v1/timelines/tag/{quote(self.tag or '', safe='')}", local, "since_id")
        elif self.timeline == "list":
            first = (f"{self.base_url}/api/v1/timelines/list/{quote(self.list_id or '', safe='')}", {}, "since_id")
        else:
            first = (f"{self.base_url}/api/v1/timelines/public", local, "since_id")
        searches = [(f"{self.base_url}/api/v2/search", {"q": q, "type": "statuses"}, "min_id") for q in self.search]
        return [first, *searches]

    # --- run ------------------------------------------------------------------------------------------------
    async def run(self, sink: MentionSink, stop: asyncio.Event) -> None:
        self._stop = stop
        handover = Handover(sink, self.kind, self.seen)
        timeout = httpx.Timeout(self.timeout, read=self.idle_timeout)
        async with httpx.AsyncClient(timeout=timeout, headers=self.headers, follow_redirects=True) as client:
            try:
                await keep_connected(
                    lambda: self._follow(client, handover),
                    stop,
                    after_end=self.backoff.next,  # a clean end: reconnect
                    after_error=lambda exc: self.stream_failed(exc, self.backoff),
                )
            finally:
                await self._save(handover)

    async def _save(self, handover: Handover) -> None:
        self.checkpoint.data["seen"] = self.seen.to_list()[-1000:]
        await self.checkpoint.save(handover.sink)

    async def _follow(self, client: httpx.AsyncClient, handover: Handover) -> None:
        url, params = self.stream_request()
        async with aconnect_sse(client, "GET", url, params=params) as source:
            response = source.response
            if response.status_code == 429:
                raise ConnectorError("rate_limited", "HTTP 429 on the stream", _rate_limit_wait(response))
            check_response(response)
            self.connections += 1
            self.mark_success()
            await catch_up_or_skip(self.catch_up(client, handover), self.kind, log)
            try:
                async for event in source.aiter_sse():
                    await self._event(event.event, event.data, handover)
                    self.backoff.reset()
                    self.mark_success()
            except SSEError as exc:
                raise ConnectorError("parse", str(exc)) from exc
            except httpx.RemoteProtocolError as exc:
                raise ConnectorError("connect", "stream dropped") from exc

    async def _event(self, name: str, data: str, handover: Handover) -> None:
        if not data:
            return
        if name not in ("update", "status.update"):
            metrics.IGNORED.labels(self.kind, "event_type").inc()  # delete, notification, filters_changed, …
            return
        try:
            status = json.loads(data)
        except ValueError as exc:
            await handover.raw(data.encode("utf-8", errors="surrogateescape"), f"update is not JSON: {exc}")
            return
        wrapper_id = await self._status(status, handover)
        if newer(wrapper_id, self.checkpoint.data.get("since_id")):
            self.checkpoint.data["since_id"] = wrapper_id
        self.checkpoint.data["seen"] = self.seen.to_list()[-1000:]
        await self.checkpoint.maybe_save(handover.sink)

    async def _status(self, status: Any, handover: Handover) -> str | None:
        """Hand over one status; returns its (timeline) id."""
        if not isinstance(status, dict):
            await handover.raw(json.dumps(status).encode(), "status is not an object")
            return None
        try:
            mention = status_to_mention(status, self.host, utcnow(), self.channel)
        except MappingError as exc:
            await handover.raw(json.dumps(status, ensure_ascii=False).encode(), str(exc))
        else:
            if self.matcher is not None and not self.matcher.match(mention.text):
                metrics.IGNORED.labels(self.kind, "no_match").inc()
            else:
                await handover.mention(mention)
        return str(status.get("id") or "") or None

    # --- REST catch-up --------------------------------------------------------------------------------------
    async def catch_up(self, client: httpx.AsyncClient, handover: Handover) -> int:
        """Read what was posted since the checkpoint (nothing on a first start); returns statuses read.

        The checkpoint's id advances only once every page was read: pages come newest first, so an
        interrupted catch-up must start again from the same id.
        """
        since = self.checkpoint.data.get("since_id")
        if since is None:
            return 0
        read, newest = 0, since
        for url, params, since_param in self.catch_up_requests():
            lower, max_id = str(since), None
            for _page in range(self.max_pages):
                query = {**params, since_param: lower, "limit": str(PAGE_LIMIT)}
                if max_id:
                    query["max_id"] = max_id
                body = await self._get_json(client, url, query)
                statuses = body.get("statuses", []) if isinstance(body, dict) else body
                if not isinstance(statuses, list):
                    raise ConnectorError("parse", f"{safe_url(url)}: no list of statuses")
                for status in statuses:
                    status_id = await self._status(status, handover)
                    if newer(status_id, newest):
                        newest = status_id
                read += len(statuses)
                ids = [str(s.get("id")) for s in statuses if isinstance(s, dict) and str(s.get("id", "")).isdigit()]
                if len(statuses) < PAGE_LIMIT or not ids:
                    break
                if since_param == "since_id":  # newest first: walk back towards since_id
                    max_id = min(ids, key=lambda i: (len(i), i))
                else:  # min_id: the page right after it; walk forward
                    lower = max(ids, key=lambda i: (len(i), i))
            else:
                log.warning("mastodon %s: more than %d pages since %s; the rest skipped", self.host,
                            self.max_pages, since)  # fmt: skip
        self.checkpoint.data["since_id"] = newest
        await self._save(handover)
        if read:
            log.info("mastodon %s: caught up %d statuses since %s", self.host, read, since)
        return read

    async def _get_json(self, client: httpx.AsyncClient, url: str, params: dict[str, str]) -> Any:
        for _attempt in range(MAX_RATE_LIMIT_WAITS + 1):
            response = await client.get(url, params=params)
            self.rest_requests += 1
            if response.status_code == 429:
                delay = _rate_limit_wait(response)
                delay = self.backoff.next() if delay is None else delay
                metrics.count_error(self.kind, "rate_limited")
                log.info("mastodon %s: HTTP 429, waiting %.1fs", safe_url(url), delay)
                if await sleep_or_stop(self._stop, delay):
                    raise ConnectorError("rate_limited", "stopped while rate limited")
                continue
            check_response(response)
            if response.headers.get("x-ratelimit-remaining", "").strip() == "0":
                wait = _rate_limit_wait(response) or 0.0
                log.info("mastodon %s: rate limit used up, next request in %.1fs", safe_url(url), wait)
                await sleep_or_stop(self._stop, wait)
            try:
                return response.json()
            except ValueError as exc:
                raise ConnectorError("parse", f"{safe_url(url)} did not answer JSON") from exc
        raise ConnectorError("rate_limited", f"still rate limited after {MAX_RATE_LIMIT_WAITS} waits")


def _rate_limit_wait(response: httpx.Response) -> float | None:
    """Seconds to wait: ``Retry-After``, else until ``X-RateLimit-Reset`` (an ISO 8601 time)."""
    retry = retry_after_seconds(response.headers.get("retry-after"))
    return retry if retry is not None else reset_delay(response.headers.get("x-ratelimit-reset"))


def _matcher(config: MastodonSource, ctx: BuildContext) -> TermMatcher | None:
    """The brand filter of an entry: on by default for the public timeline only."""
    match = config.timeline == "public" if config.match_brands is None else config.match_brands
    if not match:
        return None
    wanted = [b for b in ctx.brands().brands if config.brands is None or b.id in config.brands]
    if not wanted:
        raise SourcesFileError([f"{config.name} (mastodon): brands: none of {config.brands} is in the brands file"])
    return TermMatcher(wanted)


@source_kind("mastodon", MastodonSource)
def build(config: MastodonSource, ctx: BuildContext) -> Connector:
    """The connector of a ``kind: mastodon`` entry."""
    return MastodonConnector(
        config.base_url,
        timeline=config.timeline,
        tag=config.tag,
        list_id=config.list_id,
        local=config.local,
        search=config.search,
        token=ctx.secret(config, config.token_env) if config.token_env else None,
        streaming_url=config.streaming_url,
        idle_timeout=config.idle_timeout,
        max_pages=config.max_pages,
        checkpoint_every=config.checkpoint_every,
        matcher=_matcher(config, ctx),
        state=ctx.state(config),
        **ctx.http(),
    )

"""Reddit: search and subreddit listings (posts and comments) through the OAuth API, application-only.

Authentication is OAuth2 client credentials: ``POST https://www.reddit.com/api/v1/access_token`` with the
app's client id and secret as HTTP basic auth and ``grant_type=client_credentials`` answers a bearer
token and its ``expires_in``. The token is fetched again shortly before it expires and whenever the API
answers ``401``. API calls go to ``https://oauth.reddit.com`` with the descriptive ``User-Agent`` Reddit
requires (``<platform>:<app id>:<version> (by /u/<username>)``).

Listings (each with its own checkpoint): ``/search?q=…&sort=new`` (posts matching a query, site-wide or
``restrict_sr`` within a subreddit), ``/r/<sub>/new`` (a subreddit's posts) and ``/r/<sub>/comments``
(its comments). A cycle reads a listing newest first, ``limit=100`` a page, following ``after`` (the
fullname of the last thing of a page, ``t3_…`` / ``t1_…``) until it reaches things older than the
checkpoint's newest ``created_utc`` minus the overlap; things already handed over are skipped by
fullname. (A walk anchored on ``before=<newest fullname>`` would be cheaper, but it answers an empty
listing for ever once that post is removed, which Reddit does all the time.)

Rate limits: every answer carries ``X-Ratelimit-Used``, ``X-Ratelimit-Remaining`` and
``X-Ratelimit-Reset`` (seconds until the window resets); when nothing remains the connector waits for
the reset before its next call. A ``429`` is waited out (``Retry-After``, else the reset).

A post (``t3``) becomes a mention ``reddit:t3_<id>`` with its title and ``selftext``; a comment (``t1``)
``reddit:t1_<id>`` with its ``body``; ``created_utc`` is the event time, the permalink the url, the
subreddit (``r/<name>``) the channel and, for a comment, ``parent_id`` / ``link_id`` the reply context.
Removed and deleted things (``[removed]``, ``[deleted]``) carry no text and are counted as ignored.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from pydantic import Field, ValidationError, model_validator

from crisiswatch.connectors import metrics
from crisiswatch.connectors.base import (
    Backoff,
    Connector,
    ConnectorError,
    Handover,
    PollingConnector,
    StateStore,
    check_response,
    sleep_or_stop,
)
from crisiswatch.connectors.platforms._polling import FeedMark, Walk, as_int, epoch_now, json_of, send, stop_event
from crisiswatch.connectors.sink import MentionSink
from crisiswatch.connectors.sources import BuildContext, Duration, DurationOrZero, SourceConfig, source_kind
from crisiswatch.contracts.records import Mention
from crisiswatch.contracts.vocabulary import utcnow

log = logging.getLogger(__name__)
TOKEN_URL = "https://www.reddit.com/api/v1/access_token"
API_URL = "https://oauth.reddit.com"
WEB_URL = "https://www.reddit.com"
PAGE_LIMIT = 100
GONE = frozenset({"[removed]", "[deleted]", ""})
REFRESH_MARGIN_SECONDS = 120.0
"""A token is renewed this long (at most a tenth of its lifetime) before Reddit says it expires."""


ListingKind = Literal["search", "posts", "comments"]


class Listing:
    """One listing to poll: a search (``query``, optionally in one ``subreddit``) or a subreddit's
    newest ``posts`` or ``comments``."""

    def __init__(self, kind: ListingKind, *, query: str | None = None, subreddit: str | None = None):
        if kind == "search" and not query:
            raise ValueError("a reddit search needs a query")
        if kind != "search" and not subreddit:
            raise ValueError(f"reddit {kind} needs a subreddit")
        self.kind = kind
        self.query = query
        self.subreddit = subreddit.removeprefix("r/").strip("/") if subreddit else None

    @property
    def key(self) -> str:
        """The checkpoint key of this listing."""
        if self.kind == "search":
            return f"search:{self.subreddit or ''}:{self.query}"
        return f"r/{self.subreddit}/{'new' if self.kind == 'posts' else 'comments'}"

    def request(self, limit: int = PAGE_LIMIT) -> tuple[str, dict[str, str]]:
        """Path and query parameters of the first page (``raw_json=1``: text without HTML entities)."""
        params = {"limit": str(limit), "raw_json": "1"}
        if self.kind == "search":
            params.update(q=str(self.query), sort="new", type="link")
            if self.subreddit:
                params["restrict_sr"] = "true"
                return f"/r/{self.subreddit}/search", params
            return "/search", params
        return f"/r/{self.subreddit}/{'new' if self.kind == 'posts' else 'comments'}", params


def thing_to_mention(kind: str, data: dict[str, Any], fetched_at: datetime) -> Mention | None:
    """A ``t3`` (post) or ``t1`` (comment) as a mention; None when it has no text left (removed/deleted).

    Raises ``ValueError`` when the thing is malformed."""
    name = data.get("name") or (f"{kind}_{data['id']}" if data.get("id") else None)
    created = data.get("created_utc")
    if not isinstance(name, str) or not isinstance(created, int | float) or isinstance(created, bool):
        raise ValueError(f"{kind} without name or created_utc")
    subreddit = data.get("subreddit")
    context: dict[str, str] = {"channel": f"r/{subreddit}"} if isinstance(subreddit, str) and subreddit else {}
    if kind == "t3":
        title = str(data.get("title") or "").strip()
        body = str(data.get("selftext") or "").strip()
        if body in GONE and data.get("author") == "[deleted]":
            return None  # deleted by its author: only a placeholder title is left
        text = "\n".join(part for part in (title, "" if body in GONE else body) if part)
        replies = as_int(data.get("num_comments"))
    else:
        text = str(data.get("body") or "").strip()
        text = "" if text in GONE else text
        replies = None
        if isinstance(data.get("parent_id"), str):
            context["in_reply_to"] = f"reddit:{data['parent_id']}"
        if isinstance(data.get("link_id"), str):
            context["root"] = f"reddit:{data['link_id']}"
    if not text:
        return None
    author = data.get("author")
    permalink = data.get("permalink")
    return Mention.model_validate(
        {
            "id": f"reddit:{name}",
            "source": "reddit",
            "text": text,
            "created_at": datetime.fromtimestamp(float(created), UTC),
            "url": f"{WEB_URL}{permalink}" if isinstance(permalink, str) and permalink.startswith("/") else None,
            "author": (
                {"handle": author, "id": data.get("author_fullname")}
                if isinstance(author, str) and author not in GONE
                else None
            ),
            "metrics": {"likes": as_int(data.get("score")), "replies": replies},
            "fetched_at": fetched_at,
            "context": context or None,
        }
    )


class RedditConnector(PollingConnector):
    """Polls Reddit listings with an application-only OAuth token."""

    kind = "reddit"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        listings: list[Listing],
        *,
        overlap: float = 600.0,
        backfill: float | None = 3600.0,
        max_pages: int = 10,
        page_limit: int = PAGE_LIMIT,
        token_url: str = TOKEN_URL,
        api_url: str = API_URL,
        interval: float = 60.0,
        state: StateStore | None = None,
        backoff: Backoff | None = None,
        timeout: float = 30.0,
        user_agent: str = "python:crisiswatch:0.1 (crisiswatch brand monitoring)",
    ):
        super().__init__(interval, backoff or Backoff(), state or StateStore(None), timeout, user_agent)
        if not listings:
            raise ValueError("reddit: nothing to poll (give a search query or subreddits)")
        self._auth = httpx.BasicAuth(client_id, client_secret)
        self.listings = listings
        self.overlap = overlap
        self.backfill = backfill
        self.max_pages = max_pages
        self.page_limit = max(1, min(page_limit, PAGE_LIMIT))
        self.token_url = token_url
        self.api_url = api_url.rstrip("/")
        marks = self.state.data.get("listings")
        marks = marks if isinstance(marks, dict) else {}
        self.marks = {listing.key: FeedMark(marks.get(listing.key), overlap) for listing in listings}
        self._token: str | None = None
        self._token_expires = 0.0  # monotonic
        self.tokens_fetched = 0
        self.requests = 0
        self.remaining: float | None = None
        self._reset_at = 0.0  # monotonic time the rate-limit window resets
        self._cycle_ids: set[str] = set()

    # --- authentication ----------------------------------------------------------------------------------
    async def _access_token(self) -> str:
        if self._token is not None and time.monotonic() < self._token_expires:
            return self._token
        response = await send(self, "POST", self.token_url, auth=self._auth, data={"grant_type": "client_credentials"})
        if response.status_code == 401:
            raise ConnectorError("http_4xx", "reddit refused the client id/secret (401 from the token endpoint)")
        check_response(response)
        body = json_of(response, "reddit token endpoint")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            error = body.get("error") if isinstance(body, dict) else None
            raise ConnectorError("http_4xx", f"reddit token endpoint answered no token ({error or 'no access_token'})")
        lifetime = as_int(body.get("expires_in"), 3600) or 3600
        self._token = token
        self._token_expires = time.monotonic() + lifetime - min(REFRESH_MARGIN_SECONDS, lifetime / 10)
        self.tokens_fetched += 1
        log.info("reddit: new access token, valid for %d s", lifetime)
        return token

    # --- rate limits -------------------------------------------------------------------------------------
    def _note_rate_limit(self, response: httpx.Response) -> None:
        remaining = response.headers.get("x-ratelimit-remaining")
        reset = response.headers.get("x-ratelimit-reset")
        try:
            self.remaining = float(remaining) if remaining is not None else self.remaining
            if reset is not None:
                self._reset_at = time.monotonic() + max(0.0, float(reset))
        except ValueError:
            return

    @staticmethod
    def _reset_hint(response: httpx.Response) -> float | None:
        try:
            return max(0.0, float(response.headers["x-ratelimit-reset"]))
        except (KeyError, ValueError):
            return None

    async def _respect_budget(self) -> None:
        if self.remaining is not None and self.remaining < 1:
            wait = self._reset_at - time.monotonic()
            if wait > 0:
                log.info("reddit: rate limit used up; waiting %.0f s for the reset", wait)
                metrics.count_error(self.kind, "rate_limited")
                if await sleep_or_stop(stop_event(self), wait):
                    raise ConnectorError("rate_limited", "stopped while waiting for the rate-limit reset")
            self.remaining = None

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        """GET an API path with the bearer token (renewed once on a 401), within the rate limit."""
        for attempt in (1, 2):
            await self._respect_budget()
            token = await self._access_token()
            response = await send(
                self,
                "GET",
                self.api_url + path,
                params=params,
                headers={"Authorization": f"bearer {token}"},
                wait_hint=self._reset_hint,
            )
            self.requests += 1
            self._note_rate_limit(response)
            if response.status_code == 401 and attempt == 1:
                log.info("reddit: access token refused (401); fetching a new one")
                self._token = None
                continue
            check_response(response)
            return json_of(response, f"reddit {path}")
        raise AssertionError("unreachable")

    # --- polling -----------------------------------------------------------------------------------------
    def _known(self, ident: str) -> bool:
        """Whether another listing has handed this thing over (this cycle or within its overlap)."""
        return ident in self._cycle_ids or any(mark.knows(ident) for mark in self.marks.values())

    async def _walk(self, listing: Listing, handover: Handover, fetched_at: datetime) -> Walk:
        mark = self.marks[listing.key]
        walk = Walk(mark, mark.cutoff(epoch_now(), self.backfill))
        path, params = listing.request(self.page_limit)
        for _page in range(self.max_pages):
            body = await self._get(path, params)
            data = body.get("data") if isinstance(body, dict) and body.get("kind") == "Listing" else None
            if not isinstance(data, dict) or not isinstance(data.get("children"), list):
                raise ConnectorError("parse", f"reddit {path} did not answer a Listing")
            for child in data["children"]:
                kind = child.get("kind") if isinstance(child, dict) else None
                thing = child.get("data") if isinstance(child, dict) else None
                if kind not in ("t1", "t3") or not isinstance(thing, dict):
                    metrics.IGNORED.labels(self.kind, "no_match").inc()
                    continue
                try:
                    mention = thing_to_mention(kind, thing, fetched_at)
                except (ValueError, ValidationError) as exc:
                    created = thing.get("created_utc")
                    name = f"reddit:{thing.get('name')}"
                    if not isinstance(created, int | float) or walk.first_raw(name, float(created)):
                        await handover.raw(json.dumps(child, ensure_ascii=False, default=str).encode(), str(exc))
                    continue
                if mention is None:
                    metrics.IGNORED.labels(self.kind, "deleted").inc()
                    continue
                walk.offer(mention, float(thing["created_utc"]), known=self._known)
            after = data.get("after")
            if walk.reached_cutoff or not data["children"] or not isinstance(after, str) or not after:
                break
            params = {**params, "after": after}
        else:
            log.warning(
                "reddit %s: more than %d pages are new since the last poll; older ones may be missed (poll more often)",
                listing.key,
                self.max_pages,
            )
        return walk

    async def poll_once(self, sink: MentionSink) -> int:
        handover = Handover(sink, self.kind)
        fetched_at = utcnow()
        self._cycle_ids = set()
        walks = []
        for listing in self.listings:
            walks.append(await self._walk(listing, handover, fetched_at))
            self._cycle_ids |= walks[-1].ids
        published = 0
        for walk in walks:
            published += await walk.publish(handover)
        await sink.flush()
        for walk in walks:
            walk.commit()
        self.state.data["listings"] = {key: mark.to_dict() for key, mark in self.marks.items()}
        self.state.save()
        self.mark_success()
        return published


class RedditSource(SourceConfig):
    """``kind: reddit`` options: a search query and/or subreddits, with app credentials from the environment."""

    query: str | None = Field(None, description="Search query (posts, sort=new), e.g. the brand name.")
    search_subreddit: str | None = Field(None, description="Restrict the search to this subreddit.")
    subreddits: list[str] = Field(default_factory=list, description="Subreddits whose new posts are read.")
    comments: list[str] = Field(default_factory=list, description="Subreddits whose new comments are read.")
    client_id_env: str = "REDDIT_CLIENT_ID"
    client_secret_env: str = "REDDIT_CLIENT_SECRET"
    user_agent: str | None = Field(
        None, description="Reddit asks for '<platform>:<app id>:<version> (by /u/<username>)'."
    )
    interval: Duration = Field(60.0, gt=0)
    overlap: DurationOrZero = Field(600.0, ge=0, description="Re-read this far behind the newest thing (late search).")
    backfill: DurationOrZero | None = Field(3600.0, ge=0, description="First run: how far back; null = all pages.")
    max_pages: int = Field(10, ge=1, le=10)
    page_limit: int = Field(PAGE_LIMIT, ge=1, le=PAGE_LIMIT, description="Things per page (Reddit allows 100).")
    token_url: str = TOKEN_URL
    api_url: str = API_URL

    @model_validator(mode="after")
    def _something(self) -> RedditSource:
        if not (self.query or self.subreddits or self.comments):
            raise ValueError("give a query, subreddits or comments (subreddits whose comments are read)")
        return self

    def listings(self) -> list[Listing]:
        out = [Listing("search", query=self.query, subreddit=self.search_subreddit)] if self.query else []
        out += [Listing("posts", subreddit=name) for name in self.subreddits]
        out += [Listing("comments", subreddit=name) for name in self.comments]
        return out


@source_kind("reddit", RedditSource)
def build(config: RedditSource, ctx: BuildContext) -> Connector:
    """The connector of a ``kind: reddit`` entry."""
    http = ctx.http()
    http["user_agent"] = config.user_agent or f"python:crisiswatch:0.1 (crisiswatch source {config.name})"
    return RedditConnector(
        ctx.secret(config, config.client_id_env) or "",
        ctx.secret(config, config.client_secret_env) or "",
        config.listings(),
        overlap=config.overlap,
        backfill=config.backfill,
        max_pages=config.max_pages,
        page_limit=config.page_limit,
        token_url=config.token_url,
        api_url=config.api_url,
        interval=config.interval,
        state=ctx.state(config),
        **http,
    )

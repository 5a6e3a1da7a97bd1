"""Hacker News through the Algolia HN Search API: stories and comments matching a query, newest first.

One cycle asks ``GET /api/v1/search_by_date?query=…&tags=(story,comment)&numericFilters=created_at_i>=N``
page by page (``page`` 0 … ``nbPages - 1``, ``hitsPerPage`` up to 100), where ``N`` is the newest
``created_at_i`` published so far minus the overlap. Algolia serves at most 1000 hits for one query;
when more are new, the walk narrows the window (``created_at_i<=`` the oldest hit read) and goes on, so
a burst is read completely. Hits already published in the overlap window are skipped by id (the
checkpoint keeps the newest ``created_at_i`` and those ids).

A hit becomes a mention ``hackernews:<objectID>``: a story's text is its title and ``story_text``, a
comment's its ``comment_text`` (both HTML, made plain text); ``url`` is the item's page on
news.ycombinator.com, ``points`` the likes, ``num_comments`` the replies, and a comment's context names
its ``parent_id`` (``in_reply_to``) and ``story_id`` (``root``) as mention ids (``hackernews:<id>``).
No credentials are needed; Algolia allows about 10,000 requests an hour per IP.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, ValidationError

from crisiswatch.connectors.base import (
    Backoff,
    Connector,
    ConnectorError,
    Handover,
    PollingConnector,
    StateStore,
    check_response,
)
from crisiswatch.connectors.platforms._polling import FeedMark, Walk, as_int, epoch_now, json_of, send
from crisiswatch.connectors.rss import html_to_text
from crisiswatch.connectors.sink import MentionSink
from crisiswatch.connectors.sources import BuildContext, Duration, DurationOrZero, SourceConfig, source_kind
from crisiswatch.contracts.records import Mention
from crisiswatch.contracts.vocabulary import utcnow

log = logging.getLogger(__name__)
ALGOLIA_URL = "https://hn.algolia.com/api/v1"
ITEM_URL = "https://news.ycombinator.com/item?id={}"
MAX_WINDOWS = 20


def hit_to_mention(hit: dict[str, Any], fetched_at: datetime) -> Mention:
    """One Algolia hit (story or comment) as a mention; raises ``ValueError`` when it cannot be one."""
    ident = hit.get("objectID")
    created = hit.get("created_at_i")
    if not isinstance(ident, str | int) or not str(ident) or not isinstance(created, int | float):
        raise ValueError("hit without objectID or created_at_i")
    tags = hit.get("_tags") or []
    comment_text = hit.get("comment_text")
    is_comment = "comment" in tags or (comment_text is not None and not hit.get("title"))
    context: dict[str, str] = {}
    if is_comment:
        text = html_to_text(comment_text or "")
        if hit.get("parent_id") is not None:
            context["in_reply_to"] = f"hackernews:{hit['parent_id']}"
        if hit.get("story_id") is not None:
            context["root"] = f"hackernews:{hit['story_id']}"
    else:
        title = html_to_text(hit.get("title") or "")
        body = html_to_text(hit.get("story_text") or "")
        text = "\n".join(part for part in (title, body) if part)
    if not text:
        raise ValueError("hit without text")
    return Mention.model_validate(
        {
            "id": f"hackernews:{ident}",
            "source": "hackernews",
            "text": text,
            "created_at": datetime.fromtimestamp(float(created), UTC),
            "url": ITEM_URL.format(ident),
            "author": {"handle": hit["author"]} if isinstance(hit.get("author"), str) else None,
            "metrics": {"likes": as_int(hit.get("points")), "replies": as_int(hit.get("num_comments"))},
            "fetched_at": fetched_at,
            "context": context or None,
        }
    )


class HackerNewsConnector(PollingConnector):
    """Polls Algolia's HN search for one query (stories and comments by default)."""

    kind = "hackernews"

    def __init__(
        self,
        query: str,
        *,
        tags: str = "(story,comment)",
        hits_per_page: int = 100,
        max_pages: int = 10,
        overlap: float = 300.0,
        backfill: float | None = 3600.0,
        base_url: str = ALGOLIA_URL,
        interval: float = 60.0,
        state: StateStore | None = None,
        backoff: Backoff | None = None,
        timeout: float = 30.0,
        user_agent: str = "crisiswatch-connector/0.1",
    ):
        super().__init__(interval, backoff or Backoff(), state or StateStore(None), timeout, user_agent)
        if not query.strip():
            raise ValueError("hackernews: query must not be empty")
        self.query = query
        self.tags = tags
        self.hits_per_page = max(1, min(hits_per_page, 1000))
        self.max_pages = max_pages
        self.backfill = backfill
        self.url = base_url.rstrip("/") + "/search_by_date"
        self.mark = FeedMark(self.state.data.get("mark"), overlap)
        self.requests = 0

    async def _page(self, numeric: str, page: int) -> dict[str, Any]:
        params = {
            "query": self.query,
            "tags": self.tags,
            "numericFilters": numeric,
            "hitsPerPage": str(self.hits_per_page),
            "page": str(page),
        }
        response = await send(self, "GET", self.url, params=params)
        self.requests += 1
        check_response(response)
        body = json_of(response, "hn.algolia.com")
        if not isinstance(body, dict) or not isinstance(body.get("hits"), list):
            raise ConnectorError("parse", "search_by_date answer without hits")
        return body

    async def poll_once(self, sink: MentionSink) -> int:
        handover = Handover(sink, self.kind)
        walk = Walk(self.mark, self.mark.cutoff(epoch_now(), self.backfill))
        fetched_at = utcnow()
        lower = f"created_at_i>={int(walk.cutoff)}" if walk.cutoff != float("-inf") else None
        upper: int | None = None
        for _window in range(MAX_WINDOWS):
            numeric = ",".join(f for f in (lower, f"created_at_i<={upper}" if upper is not None else None) if f)
            read = oldest = 0
            nb_hits = 0
            for page in range(self.max_pages):
                body = await self._page(numeric, page)
                hits = body["hits"]
                nb_hits = as_int(body.get("nbHits"), 0) or 0
                for hit in hits:
                    try:
                        mention = hit_to_mention(hit, fetched_at)
                    except (ValueError, ValidationError) as exc:
                        at = hit.get("created_at_i") if isinstance(hit, dict) else None
                        ident = f"hackernews:{hit.get('objectID')}" if isinstance(hit, dict) else ""
                        if not isinstance(at, int | float) or walk.first_raw(ident, float(at)):
                            await handover.raw(json.dumps(hit, ensure_ascii=False, default=str).encode(), str(exc))
                        continue
                    at = float(hit["created_at_i"])
                    oldest = int(at) if not read or at < oldest else oldest
                    read += 1
                    walk.offer(mention, at)
                nb_pages = as_int(body.get("nbPages"), 0) or 0
                if not hits or page + 1 >= nb_pages:
                    break
            if read == 0 or nb_hits <= read or upper == oldest:
                break
            upper = oldest  # more hits than Algolia pages through: the next window ends where this one did
            log.info("hackernews %r: %d hits since the checkpoint; reading on up to %d", self.query, nb_hits, upper)
        published = await walk.publish(handover)
        await sink.flush()
        walk.commit()
        self.state.data["mark"] = self.mark.to_dict()
        self.state.save()
        self.mark_success()
        return published


class HackerNewsSource(SourceConfig):
    """``kind: hackernews`` options."""

    query: str = Field(min_length=1, description="Algolia full-text query, e.g. the brand name.")
    tags: str = Field("(story,comment)", description="Algolia tags filter: (story,comment), story, comment, …")
    interval: Duration = Field(60.0, gt=0)
    hits_per_page: int = Field(100, ge=1, le=1000)
    max_pages: int = Field(10, ge=1, le=100)
    overlap: DurationOrZero = Field(300.0, ge=0, description="Re-read this far behind the newest hit (late indexing).")
    backfill: DurationOrZero | None = Field(3600.0, ge=0, description="First run: how far back; null = all pages.")
    base_url: str = ALGOLIA_URL


@source_kind("hackernews", HackerNewsSource)
def build(config: HackerNewsSource, ctx: BuildContext) -> Connector:
    """The connector of a ``kind: hackernews`` entry."""
    return HackerNewsConnector(
        config.query,
        tags=config.tags,
        hits_per_page=config.hits_per_page,
        max_pages=config.max_pages,
        overlap=config.overlap,
        backfill=config.backfill,
        base_url=config.base_url,
        interval=config.interval,
        state=ctx.state(config),
        **ctx.http(),
    )

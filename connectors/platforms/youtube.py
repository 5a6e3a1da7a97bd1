"""YouTube Data API v3: comments under a brand's own videos (owned media) and under videos found by search.

Targets, each with its own checkpoint:

- **owned channels** (``commentThreads?allThreadsRelatedToChannelId=<channel id>``: comments on every
  video of the channel) and **owned videos** (``commentThreads?videoId=<video id>``), configured per
  watched brand. Their mentions are ``owned: true`` with ``owner: <brand>``: the enrich stage routes them
  to that brand even when the comment does not name it (comments under a brand's posts and ads).
- **search** (``search?part=snippet&q=…&type=video&order=date&publishedAfter=…``, every
  ``search_interval`` seconds because a search costs 100 quota units): the newest videos about a query;
  their comment threads are read like the others (not owned, unless the video is on an owned channel,
  whose comments the channel target already reads).

A cycle reads each target's threads newest first (``part=snippet,replies``, ``order=time``,
``textFormat=plainText``, ``maxResults=100``, ``pageToken`` / ``nextPageToken``) until threads are older
than the newest comment seen minus ``lookback`` seconds. A thread carries up to five replies; when it has
more (``totalReplyCount``) and the count changed, ``comments?parentId=<thread id>`` reads them all.
Comments already handed over are skipped by id.

Errors: ``403`` with reason ``quotaExceeded`` (the API key's daily quota, 10,000 units by default) stops
all calls until the quota resets at midnight Pacific time, with one warning naming the time;
``rateLimitExceeded`` backs off; ``commentsDisabled`` / ``videoNotFound`` / ``channelNotFound`` mark the
target unavailable (logged once, retried a day later) without failing the others. Quota cost: 1 unit per
commentThreads or comments page, 100 per search.

A comment becomes a mention ``youtube:<comment id>`` with ``textOriginal`` (else ``textDisplay``),
``publishedAt``, ``authorDisplayName`` / ``authorChannelId``, ``likeCount`` and (threads)
``totalReplyCount``; its context is the video (``post``), the video's channel (``channel``) and, for a
reply, its thread (``in_reply_to`` / ``root``: ``youtube:<top-level comment id>``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crisiswatch.connectors.base import (
    Backoff,
    Connector,
    ConnectorError,
    Handover,
    PollingConnector,
    StateStore,
    check_response,
)
from crisiswatch.connectors.mapping import MappingError, parse_timestamp
from crisiswatch.connectors.platforms._polling import FeedMark, Walk, as_int, epoch_now, json_of, send
from crisiswatch.connectors.sink import MentionSink
from crisiswatch.connectors.sources import (
    BuildContext,
    Duration,
    DurationOrZero,
    SourceConfig,
    SourcesFileError,
    source_kind,
)
from crisiswatch.contracts.records import Mention
from crisiswatch.contracts.vocabulary import utcnow

log = logging.getLogger(__name__)
API_URL = "https://www.googleapis.com/youtube/v3"
WATCH_URL = "https://www.youtube.com/watch?v={video}&lc={comment}"
PACIFIC = ZoneInfo("America/Los_Angeles")
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
GONE_REASONS = frozenset({"commentsDisabled", "videoNotFound", "channelNotFound", "forbidden"})
RETRY_UNAVAILABLE_SECONDS = 86400.0
MAX_THREADS_REMEMBERED = 20_000


def seconds_until_quota_reset(now: datetime) -> float:
    """Seconds from ``now`` to the next midnight in Pacific time, when YouTube resets daily quotas."""
    local = now.astimezone(PACIFIC)
    midnight = datetime.combine(local.date() + timedelta(days=1), clock(0), tzinfo=PACIFIC)
    return max(1.0, (midnight.astimezone(UTC) - now.astimezone(UTC)).total_seconds())


def error_reasons(response: httpx.Response) -> list[str]:
    """The ``error.errors[].reason`` values of a Google API error body (empty when there are none)."""
    try:
        body = response.json()
    except ValueError:
        return []
    errors = (
        body.get("error", {}).get("errors") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None
    )
    return [str(e["reason"]) for e in errors or [] if isinstance(e, dict) and e.get("reason")]


class TargetUnavailable(Exception):
    """The API says a video or channel has no readable comments (disabled, deleted, private)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """What one commentThreads walk reads: a channel's or a video's threads, and whose it is."""

    kind: Literal["channel", "video"]
    ident: str
    owner: str | None = None
    channel: str | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.ident}"

    def params(self) -> dict[str, str]:
        if self.kind == "channel":
            return {"allThreadsRelatedToChannelId": self.ident}
        return {"videoId": self.ident}


def comment_to_mention(
    comment: dict[str, Any],
    *,
    video: str | None,
    channel: str | None,
    owner: str | None,
    fetched_at: datetime,
    replies: int | None = None,
) -> tuple[Mention, float]:
    """A ``youtube#comment`` resource as a mention, and its event time (epoch seconds).

    Raises ``ValueError`` (``MappingError`` / ``ValidationError``) when it cannot be one."""
    ident = comment.get("id")
    snippet = comment.get("snippet")
    if not isinstance(ident, str) or not ident or not isinstance(snippet, dict):
        raise MappingError("comment without id or snippet")
    created = parse_timestamp(snippet.get("publishedAt"))
    text = snippet.get("textOriginal") or snippet.get("textDisplay")
    if not isinstance(text, str) or not text.strip():
        raise MappingError(f"comment {ident} without text")
    video = snippet.get("videoId") or video
    channel = snippet.get("channelId") or channel
    parent = snippet.get("parentId")
    author_channel = snippet.get("authorChannelId")
    author_id = author_channel.get("value") if isinstance(author_channel, dict) else None
    context = {
        "post": video,
        "channel": channel,
        "in_reply_to": f"youtube:{parent}" if isinstance(parent, str) and parent else None,
        "root": f"youtube:{parent}" if isinstance(parent, str) and parent else None,
    }
    mention = Mention.model_validate(
        {
            "id": f"youtube:{ident}",
            "source": "youtube",
            "text": text.strip(),
            "created_at": created,
            "url": WATCH_URL.format(video=video, comment=ident) if video else None,
            "author": {"handle": snippet.get("authorDisplayName"), "id": author_id},
            "metrics": {"likes": as_int(snippet.get("likeCount")), "replies": replies},
            "fetched_at": fetched_at,
            "context": {k: v for k, v in context.items() if v} or None,
            "owned": owner is not None,
            "owner": owner,
        }
    )
    return mention, created.timestamp()


class YouTubeConnector(PollingConnector):
    """Polls comment threads of owned channels and videos, and of videos found by search."""

    kind = "youtube"

    def __init__(
        self,
        api_key: str,
        *,
        owned_channels: dict[str, str] | None = None,
        owned_videos: dict[str, str] | None = None,
        searches: list[str] | None = None,
        search_interval: float = 3600.0,
        search_max_videos: int = 20,
        search_max_age: float = 7 * 86400.0,
        lookback: float = 3600.0,
        backfill: float | None = 86400.0,
        max_pages: int = 5,
        page_size: int = 100,
        base_url: str = API_URL,
        interval: float = 300.0,
        state: StateStore | None = None,
        backoff: Backoff | None = None,
        timeout: float = 30.0,
        user_agent: str = "crisiswatch-connector/0.1",
    ):
        """``owned_channels`` / ``owned_videos`` map a channel or video id to the brand that owns it."""
        super().__init__(interval, backoff or Backoff(), state or StateStore(None), timeout, user_agent)
        self.api_key = api_key
        self.owned_channels = dict(owned_channels or {})
        self.owned_videos = dict(owned_videos or {})
        self.searches = [q for q in searches or [] if q.strip()]
        if not (self.owned_channels or self.owned_videos or self.searches):
            raise ValueError("youtube: nothing to read (give owned channels or videos, or search queries)")
        self.search_interval = search_interval
        self.search_max_videos = search_max_videos
        self.search_max_age = search_max_age
        self.lookback = lookback
        self.backfill = backfill
        self.max_pages = max_pages
        self.page_size = str(max(1, min(page_size, 100)))
        self.base_url = base_url.rstrip("/")
        data = self.state.data
        marks = data.get("threads") if isinstance(data.get("threads"), dict) else {}
        self.marks: dict[str, FeedMark] = {key: FeedMark(value, lookback) for key, value in marks.items()}
        self.replies_seen: dict[str, list[float]] = dict(data.get("replies") or {})
        self.videos: dict[str, dict[str, Any]] = dict(data.get("videos") or {})
        self.unavailable: dict[str, list[Any]] = dict(data.get("unavailable") or {})
        self.units = 0
        self.requests = 0
        self._cycle_ids: set[str] = set()

    # --- API calls --------------------------------------------------------------------------------------
    async def _call(self, resource: str, params: dict[str, str], cost: int = 1) -> dict[str, Any]:
        url = f"{self.base_url}/{resource}"
        response = await send(self, "GET", url, params={**params, "key": self.api_key})
        self.units += cost
        self.requests += 1
        if response.status_code in (400, 403, 404):
            reasons = set(error_reasons(response))
            if reasons & QUOTA_REASONS:
                now = utcnow()
                delay = seconds_until_quota_reset(now)
                resume = (now + timedelta(seconds=delay)).strftime("%Y-%m-%d %H:%M UTC")
                log.warning(
                    "youtube: the API key's daily quota is used up (quotaExceeded); no calls until it resets "
                    "at midnight Pacific time (%s, in %.0f min)",
                    resume,
                    delay / 60,
                )
                raise ConnectorError("rate_limited", "YouTube daily quota exceeded", delay)
            if reasons & RATE_REASONS:
                raise ConnectorError("rate_limited", f"YouTube {'/'.join(sorted(reasons & RATE_REASONS))}")
            if reasons & GONE_REASONS:
                raise TargetUnavailable(sorted(reasons & GONE_REASONS)[0])
        check_response(response)
        body = json_of(response, f"youtube {resource}")
        if not isinstance(body, dict) or not isinstance(body.get("items", []), list):
            raise ConnectorError("parse", f"youtube {resource} answered no items list")
        return body

    async def _search(self, now: float) -> None:
        published_after = datetime.fromtimestamp(now - self.search_max_age, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for query in self.searches:
            params = {
                "part": "snippet",
                "q": query,
                "type": "video",
                "order": "date",
                "maxResults": "25",
                "publishedAfter": published_after,
            }
            body = await self._call("search", params, cost=100)
            for item in body.get("items", []):
                video = (item.get("id") or {}).get("videoId") if isinstance(item, dict) else None
                snippet = item.get("snippet") if isinstance(item, dict) else None
                if not isinstance(video, str) or not isinstance(snippet, dict):
                    continue
                try:
                    at = parse_timestamp(snippet.get("publishedAt")).timestamp()
                except MappingError:
                    at = now
                self.videos[video] = {"at": at, "channel": snippet.get("channelId"), "query": query}
        fresh = [(v, meta) for v, meta in self.videos.items() if float(meta.get("at", 0)) >= now - self.search_max_age]
        fresh.sort(key=lambda pair: float(pair[1].get("at", 0)), reverse=True)
        self.videos = dict(fresh[: self.search_max_videos])
        self.state.data["searched_at"] = now
        log.info("youtube: search found %d recent videos to follow", len(self.videos))

    def targets(self) -> list[Target]:
        """Owned channels, owned videos, then searched videos not already covered by an owned target."""
        out = [Target("channel", cid, owner) for cid, owner in self.owned_channels.items()]
        out += [Target("video", vid, owner) for vid, owner in self.owned_videos.items()]
        for vid, meta in self.videos.items():
            channel = meta.get("channel")
            if vid in self.owned_videos or channel in self.owned_channels:
                continue
            out.append(Target("video", vid, None, channel))
        return out

    # --- reading comments ---------------------------------------------------------------------------------
    async def _all_replies(self, thread: str) -> list[dict[str, Any]]:
        params = {"part": "snippet", "parentId": thread, "maxResults": self.page_size, "textFormat": "plainText"}
        out: list[dict[str, Any]] = []
        for _page in range(self.max_pages):
            body = await self._call("comments", params)
            out.extend(c for c in body.get("items", []) if isinstance(c, dict))
            token = body.get("nextPageToken")
            if not token:
                break
            params = {**params, "pageToken": token}
        return out

    def _known(self, ident: str) -> bool:
        return ident in self._cycle_ids or any(mark.knows(ident) for mark in self.marks.values())

    async def _offer(
        self,
        walk: Walk,
        handover: Handover,
        comment: Any,
        target: Target,
        where: tuple[str | None, str | None],
        fetched_at: datetime,
        replies: int | None = None,
    ) -> float | None:
        """Offer one comment to the walk; returns its time (None when it had to be handed over raw)."""
        try:
            mention, at = comment_to_mention(
                comment if isinstance(comment, dict) else {},
                video=where[0],
                channel=where[1],
                owner=target.owner,
                fetched_at=fetched_at,
                replies=replies,
            )
        except (ValueError, ValidationError) as exc:
            ident = f"youtube:{comment.get('id')}" if isinstance(comment, dict) else ""
            if walk.first_raw(ident, epoch_now()):
                await handover.raw(json.dumps(comment, ensure_ascii=False, default=str).encode(), str(exc))
            return None
        walk.offer(mention, at, known=self._known)
        return at

    async def _walk(self, target: Target, handover: Handover, fetched_at: datetime, pending: dict[str, Any]) -> Walk:
        mark = self.marks.setdefault(target.key, FeedMark(None, self.lookback))
        walk = Walk(mark, mark.cutoff(epoch_now(), self.backfill))
        params = {
            "part": "snippet,replies",
            "maxResults": self.page_size,
            "order": "time",
            "textFormat": "plainText",
            **target.params(),
        }
        for _page in range(self.max_pages):
            body = await self._call("commentThreads", params)
            for thread in body.get("items", []):
                snippet = thread.get("snippet") if isinstance(thread, dict) else None
                if not isinstance(snippet, dict):
                    await self._offer(walk, handover, thread, target, (None, None), fetched_at)
                    continue
                video = snippet.get("videoId") or (target.ident if target.kind == "video" else None)
                channel = snippet.get("channelId") or (target.ident if target.kind == "channel" else target.channel)
                total = as_int(snippet.get("totalReplyCount"), 0) or 0
                top = snippet.get("topLevelComment")
                at = await self._offer(walk, handover, top, target, (video, channel), fetched_at, total)
                replies = (thread.get("replies") or {}).get("comments") or []
                thread_id = str(thread.get("id") or "")
                if (
                    total > len(replies)
                    and at is not None
                    and at >= walk.cutoff
                    and thread_id
                    and (self.replies_seen.get(thread_id) or [None])[0] != total
                ):
                    replies = await self._all_replies(thread_id)
                    pending[thread_id] = [total, at]
                for reply in replies:
                    await self._offer(walk, handover, reply, target, (video, channel), fetched_at)
            token = body.get("nextPageToken")
            if walk.reached_cutoff or not token:
                break
            params = {**params, "pageToken": token}
        return walk

    async def poll_once(self, sink: MentionSink) -> int:
        now = epoch_now()
        if self.searches and now - float(self.state.data.get("searched_at") or 0) >= self.search_interval:
            await self._search(now)
        handover = Handover(sink, self.kind)
        fetched_at = utcnow()
        self._cycle_ids = set()
        walks: list[Walk] = []
        pending: dict[str, Any] = {}
        targets = self.targets()
        self.marks = {key: mark for key, mark in self.marks.items() if key in {t.key for t in targets}}
        for target in targets:
            since = self.unavailable.get(target.key)
            if since and now - float(since[1]) < RETRY_UNAVAILABLE_SECONDS:
                continue
            try:
                walks.append(await self._walk(target, handover, fetched_at, pending))
            except TargetUnavailable as exc:
                log.warning("youtube %s: %s; skipping it for a day", target.key, exc.reason)
                self.unavailable[target.key] = [exc.reason, now]
                continue
            self.unavailable.pop(target.key, None)
            self._cycle_ids |= walks[-1].ids
        published = 0
        for walk in walks:
            published += await walk.publish(handover)
        await sink.flush()
        for walk in walks:
            walk.commit()
        self.replies_seen.update(pending)
        if len(self.replies_seen) > MAX_THREADS_REMEMBERED:  # the reply counts of the newest threads
            newest = sorted(self.replies_seen.items(), key=lambda kv: float(kv[1][1]))[-MAX_THREADS_REMEMBERED:]
            self.replies_seen = dict(newest)
        self.state.data.update(
            threads={key: mark.to_dict() for key, mark in self.marks.items()},
            replies=self.replies_seen,
            videos=self.videos,
            unavailable=self.unavailable,
        )
        self.state.save()
        self.mark_success()
        return published


class OwnedMedia(BaseModel):
    """One brand's own YouTube channels and videos."""

    model_config = ConfigDict(extra="forbid")

    channels: list[str] = Field(default_factory=list, description="Channel ids (UC…): comments on all their videos.")
    videos: list[str] = Field(default_factory=list, description="Video ids (ads, posts on other channels).")


class YouTubeSource(SourceConfig):
    """``kind: youtube`` options."""

    api_key_env: str = "YOUTUBE_API_KEY"
    owned: dict[str, OwnedMedia] = Field(default_factory=dict, description="brand id -> its channels and videos")
    search: list[str] = Field(default_factory=list, description="Queries whose newest videos' comments are read.")
    search_interval: Duration = Field(3600.0, gt=0, description="Time between searches (100 quota units each).")
    search_max_videos: int = Field(20, ge=1, le=200)
    search_max_age: Duration = Field(7 * 86400.0, gt=0, description="Follow videos published this recently.")
    interval: Duration = Field(300.0, gt=0)
    lookback: DurationOrZero = Field(3600.0, ge=0, description="Re-read threads this far behind the newest comment.")
    backfill: DurationOrZero | None = Field(86400.0, ge=0, description="First run: how far back; null = all pages.")
    max_pages: int = Field(5, ge=1, le=100)
    page_size: int = Field(100, ge=1, le=100, description="maxResults of commentThreads / comments pages.")
    base_url: str = API_URL


@source_kind("youtube", YouTubeSource)
def build(config: YouTubeSource, ctx: BuildContext) -> Connector:
    """The connector of a ``kind: youtube`` entry (owned brands must be in the brands file)."""
    if config.owned:
        known = {brand.id for brand in ctx.brands().brands}
        unknown = sorted(set(config.owned) - known)
        if unknown:
            raise SourcesFileError(
                [f"{config.name} (youtube): owned: {', '.join(unknown)} not in the brands file ({', '.join(known)})"]
            )
    channels = {cid: brand for brand, media in config.owned.items() for cid in media.channels}
    videos = {vid: brand for brand, media in config.owned.items() for vid in media.videos}
    return YouTubeConnector(
        ctx.secret(config, config.api_key_env) or "",
        owned_channels=channels,
        owned_videos=videos,
        searches=config.search,
        search_interval=config.search_interval,
        search_max_videos=config.search_max_videos,
        search_max_age=config.search_max_age,
        lookback=config.lookback,
        backfill=config.backfill,
        max_pages=config.max_pages,
        page_size=config.page_size,
        base_url=config.base_url,
        interval=config.interval,
        state=ctx.state(config),
        **ctx.http(),
    )

"""Polling platform connectors (Reddit, Hacker News, YouTube) against local servers speaking each platform's
wire format, publishing to the real broker.

The servers (aiohttp on 127.0.0.1) replay payloads hand-written from the public API documentation
(tests/fixtures/platforms/): Reddit's OAuth token endpoint and ``Listing`` JSON with ``after`` paging and
``X-Ratelimit-*`` headers, Algolia's ``search_by_date`` with ``numericFilters`` and its 1000-hit paging
limit, and the YouTube Data API's ``commentThreads`` / ``comments`` / ``search`` with ``pageToken`` and
Google error bodies. Each connector runs through a 429 storm, a dropped connection (and, for Reddit,
token expiry and revocation), then restarts from its Kafka checkpoint with a new sink; one more test
SIGKILLs ``crisiswatch connect --sources`` (Hacker News; the others: test_platforms_sigkill.py) and
restarts it. Every test reads back ``mentions.raw`` and checks that each item arrived exactly once.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import connector_servers as servers
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import read_all
from connector_servers import checkpoint_of, kafka_sink, serve, split
from kill_harness import TopicWatch, connect_env, kill, start_connect, stop_cleanly

from crisiswatch.connectors.base import Backoff, ConnectorError
from crisiswatch.connectors.platforms.hackernews import HackerNewsConnector
from crisiswatch.connectors.platforms.reddit import Listing, RedditConnector
from crisiswatch.connectors.platforms.youtube import YouTubeConnector, seconds_until_quota_reset
from crisiswatch.connectors.sources import SourcesFileError, load_sources
from crisiswatch.contracts.records import Mention
from crisiswatch.contracts.topics import CONNECTOR_CHECKPOINTS, MENTIONS_RAW
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "platforms"
FAST = Backoff(0.05, 0.2)
sink_for = kafka_sink
wait_for = partial(servers.wait_for, timeout=60.0, what="condition")
running = partial(servers.running, timeout=20)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def fast(settings: Settings) -> Settings:
    return settings.model_copy(update={"connector_backoff_initial_seconds": 0.05, "connector_backoff_max_seconds": 0.2})


def from_sources(tmp_path: Path, entry: str, settings: Settings, only: str | None = None) -> Any:
    """Write a sources file with one entry and build its connector (inside a sink: Kafka checkpoints)."""
    path = tmp_path / "sources.yaml"
    path.write_text("sources:\n" + entry, encoding="utf-8")
    (connector,) = load_sources(path).build(settings, only=only)
    return connector


async def raw_topic(settings: Settings) -> tuple[dict[str, Mention], list[bytes]]:
    """Mentions on mentions.raw by id (a repeated id fails the test) and the raw values that are not mentions."""
    assert settings.kafka.bootstrap_servers
    return split(await read_all(settings.kafka.bootstrap_servers, settings.topic(MENTIONS_RAW.name), 1.0))


def drop_connection(request: web.Request) -> web.Response:
    """Close the TCP connection without answering (the client sees a disconnect)."""
    assert request.transport is not None
    request.transport.close()
    return web.Response(status=204)


# --- Reddit ---------------------------------------------------------------------------------------------------
CLIENT_ID, CLIENT_SECRET = "p-jcoLKBynTLew", "gko_LXELoV07ZBNUXrvWZfzE3aI"
REDDIT_UA = "python:crisiswatch-test:0.1 (by /u/crisiswatch_test)"


class RedditServer:
    """www.reddit.com/api/v1/access_token and oauth.reddit.com listings, as the API documents them."""

    def __init__(self) -> None:
        self.listings: dict[str, list[dict[str, Any]]] = {
            "/search": fixture("reddit_search_new.json")["data"]["children"],
            "/r/acme/comments": fixture("reddit_r_acme_comments.json")["data"]["children"],
        }
        self.tokens: dict[str, float] = {}
        self.token_lifetime = 86400
        self.issued = 0
        self.proactive = 0  # tokens fetched although the last API answer was not a 401
        self.reactive = 0  # tokens fetched right after a 401
        self.unauthorized = 0
        self.storm = 0
        self.drop = 0
        self.exhaust_next = False
        self.used = 0
        self.calls: list[tuple[float, str, dict[str, str]]] = []
        self._last_was_401 = False

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v1/access_token", self.token)
        app.router.add_get("/search", self.api)
        app.router.add_get("/r/{sub}/comments", self.api)
        return app

    def add(self, path: str, children: list[dict[str, Any]]) -> None:
        self.listings[path] = sorted(
            self.listings[path] + children, key=lambda c: c["data"]["created_utc"], reverse=True
        )

    async def token(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"message": "Unauthorized", "error": 401}, status=401)
        assert request.headers.get("User-Agent") == REDDIT_UA
        form = await request.post()
        assert form.get("grant_type") == "client_credentials"
        self.issued += 1
        if self._last_was_401:
            self.reactive += 1
        elif self.issued > 1:
            self.proactive += 1
        self._last_was_401 = False
        token = f"tok-{self.issued}"
        self.tokens[token] = time.monotonic() + self.token_lifetime
        body = {**fixture("reddit_token.json"), "access_token": token, "expires_in": self.token_lifetime}
        return web.json_response(body)

    def limits(self) -> dict[str, str]:
        self.used += 1
        if self.exhaust_next:
            self.exhaust_next = False
            return {"X-Ratelimit-Used": "600", "X-Ratelimit-Remaining": "0.0", "X-Ratelimit-Reset": "1"}
        return {
            "X-Ratelimit-Used": str(self.used),
            "X-Ratelimit-Remaining": f"{600 - self.used}.0",
            "X-Ratelimit-Reset": "412",
        }

    async def api(self, request: web.Request) -> web.Response:
        assert request.headers.get("User-Agent") == REDDIT_UA
        self.calls.append((time.monotonic(), request.path, dict(request.query)))
        if self.drop:
            self.drop -= 1
            return drop_connection(request)
        token = request.headers.get("Authorization", "").removeprefix("bearer ")
        if self.tokens.get(token, 0.0) < time.monotonic():
            self.unauthorized += 1
            self._last_was_401 = True
            return web.json_response(
                fixture("reddit_401.json"), status=401, headers={"WWW-Authenticate": 'Bearer realm="reddit"'}
            )
        if self.storm:
            self.storm -= 1
            headers = {"X-Ratelimit-Used": "600", "X-Ratelimit-Remaining": "0.0", "X-Ratelimit-Reset": "0"}
            return web.json_response(fixture("reddit_429.json"), status=429, headers=headers)
        assert request.query.get("raw_json") == "1"
        if request.path == "/search":
            assert request.query.get("q") == "acme" and request.query.get("sort") == "new"
        children = self.listings[request.path]
        limit = int(request.query.get("limit", "25"))
        after = request.query.get("after")
        names = [c["data"]["name"] for c in children]
        start = names.index(after) + 1 if after in names else 0
        page = children[start : start + limit]
        more = start + limit < len(children)
        data = {
            "after": page[-1]["data"]["name"] if more and page else None,
            "dist": len(page),
            "modhash": "",
            "geo_filter": "",
            "children": page,
            "before": None,
        }
        return web.json_response({"kind": "Listing", "data": data}, headers=self.limits())


def reddit_entry(server: TestServer, interval: float = 60.0) -> str:
    base = str(server.make_url("")).rstrip("/")
    return f"""  - name: reddit-acme
    kind: reddit
    query: acme
    comments: [r/acme]
    client_id_env: REDDIT_TEST_CLIENT_ID
    client_secret_env: REDDIT_TEST_CLIENT_SECRET
    user_agent: "{REDDIT_UA}"
    page_limit: 2
    backfill: null
    interval: {interval}s
    token_url: {base}/api/v1/access_token
    api_url: {base}
"""


async def test_reddit_token_expiry_429_storm_disconnect_and_restart(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDDIT_TEST_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("REDDIT_TEST_CLIENT_SECRET", CLIENT_SECRET)
    settings = fast(settings)
    reddit = RedditServer()
    reddit.token_lifetime = 1  # renewed 0.1 s before it expires, and again whenever the API answers 401
    reddit.storm = 8  # more than one request waits out: the cycle fails and the run loop retries it
    reddit.drop = 1
    first_run = {"reddit:t3_1h6c0e5", "reddit:t3_1h6bz11", "reddit:t3_1h6bqq3", "reddit:t3_1h6bm0a"} | {
        "reddit:t1_m0zq9k2",
        "reddit:t1_m0zq1aa",
        "reddit:t1_m0zpz00",
    }
    async with serve(reddit.app()) as server:
        async with sink_for(settings) as sink:
            connector = from_sources(tmp_path, reddit_entry(server, interval=0.1), settings)
            assert isinstance(connector, RedditConnector)
            async with running(connector, sink):
                await wait_for(lambda: sink.sent >= len(first_run), what="the first listings")
                reddit.tokens.clear()  # revoked server-side: the next call answers 401, a new token is fetched
                await wait_for(lambda: reddit.reactive >= 1 and reddit.proactive >= 1, what="token renewals")
                calls = len(reddit.calls)
                await wait_for(lambda: len(reddit.calls) >= calls + 4, what="cycles after the renewals")
            assert sink.sent == len(first_run), "no cycle re-published anything"
        checkpoint = await checkpoint_of(settings, "connector:reddit:reddit-acme")
        assert checkpoint["listings"]["search::acme"]["newest"] == epoch("2026-12-03T12:40:00")

        reddit.add("/search", fixture("reddit_search_new_later.json")["data"]["children"])
        reddit.exhaust_next = True  # the first answer says the budget is used up until the reset (1 s)
        async with sink_for(settings) as sink:  # a new process: the checkpoint comes back from Kafka
            restarted = from_sources(tmp_path, reddit_entry(server), settings, only="reddit-acme")
            before = len(reddit.calls)
            assert await restarted.poll_once(sink) == 2  # the new post, and the one Reddit listed late at 12:40
            after = reddit.calls[before:]
            assert after[1][0] - after[0][0] >= 0.9, "waited for X-Ratelimit-Reset when Remaining was 0"
            assert await restarted.poll_once(sink) == 0
            await restarted.aclose()

    mentions, raw = await raw_topic(settings)
    assert not raw
    assert set(mentions) == first_run | {"reddit:t3_1h6d3f1", "reddit:t3_1h6d1a9"}
    post = mentions["reddit:t3_1h6c0e5"]
    assert post.source == "reddit" and post.text.startswith("Acme blender caught fire on the counter\nSmoke")
    assert post.created_at == datetime(2026, 12, 3, 12, 40, tzinfo=UTC)
    assert post.url == "https://www.reddit.com/r/BuyItForLife/comments/1h6c0e5/acme_blender_caught_fire_on_th/"
    assert post.author is not None and post.author.handle == "smokey_kitchen"
    assert post.metrics is not None and (post.metrics.likes, post.metrics.replies) == (311, 57)
    assert post.context is not None and post.context.channel == "r/BuyItForLife" and not post.owned
    assert mentions["reddit:t3_1h6bqq3"].metrics.likes == 0  # a negative score counts as no likes
    assert mentions["reddit:t3_1h6bz11"].text == "Anyone else's Acme X200 lid cracking?"  # link post: title only
    reply = mentions["reddit:t1_m0zq9k2"]
    assert reply.text == "Mine arrived with a cracked jar & no reply from support"  # raw_json=1: no &amp;
    assert reply.context is not None
    assert (reply.context.in_reply_to, reply.context.root, reply.context.channel) == (
        "reddit:t1_m0zq1aa",
        "reddit:t3_1h69x00",
        "r/acme",
    )
    assert any(q.get("after") == "t3_1h6bz11" for _, path, q in reddit.calls if path == "/search"), "pages followed"


async def test_reddit_bad_credentials_fail_the_cycle_without_publishing(settings: Settings, tmp_path: Path) -> None:
    reddit = RedditServer()
    async with serve(reddit.app()) as server, sink_for(settings) as sink:
        base = str(server.make_url("")).rstrip("/")
        connector = RedditConnector(
            CLIENT_ID,
            "wrong",
            [Listing("search", query="acme")],
            token_url=f"{base}/api/v1/access_token",
            api_url=base,
            user_agent=REDDIT_UA,
        )
        with pytest.raises(ConnectorError, match="client id/secret"):
            await connector.poll_once(sink)
        await connector.aclose()
    assert reddit.calls == [] and sink.sent == 0


# --- Hacker News (Algolia) ------------------------------------------------------------------------------------
class AlgoliaServer:
    """hn.algolia.com/api/v1/search_by_date: numericFilters, newest first, paging capped like Algolia's."""

    def __init__(self, pagination_limit: int = 1000) -> None:
        self.hits: list[dict[str, Any]] = fixture("hackernews_search_by_date.json")["hits"]
        self.pagination_limit = pagination_limit
        self.storm = 0
        self.drop = 0
        self.calls: list[dict[str, str]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/search_by_date", self.search)
        return app

    @staticmethod
    def _passes(hit: dict[str, Any], filters: str) -> bool:
        for clause in filter(None, filters.split(",")):
            match = re.fullmatch(r"created_at_i(>=|<=|>|<|=)(\d+)", clause)
            assert match, f"unexpected numeric filter {clause!r}"
            op, value = match.group(1), int(match.group(2))
            at = hit["created_at_i"]
            ok = {">=": at >= value, "<=": at <= value, ">": at > value, "<": at < value, "=": at == value}[op]
            if not ok:
                return False
        return True

    async def search(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.calls.append(query)
        if self.drop:
            self.drop -= 1
            return drop_connection(request)
        if self.storm:
            self.storm -= 1
            return web.json_response(fixture("hackernews_429.json"), status=429)
        assert query["query"] == "acme" and query["tags"] == "(story,comment)"
        matching = [h for h in self.hits if self._passes(h, query.get("numericFilters", ""))]
        matching.sort(key=lambda h: (h["created_at_i"], int(h.get("objectID") or 0)), reverse=True)
        per_page, page = int(query.get("hitsPerPage", "20")), int(query.get("page", "0"))
        reachable = matching[: self.pagination_limit]
        hits = reachable[page * per_page : (page + 1) * per_page]
        body = {
            "exhaustive": {"nbHits": True, "typo": True},
            "exhaustiveNbHits": True,
            "hits": hits,
            "hitsPerPage": per_page,
            "nbHits": len(matching),
            "nbPages": -(-len(reachable) // per_page),
            "page": page,
            "params": request.query_string,
            "processingTimeMS": 1,
            "query": query["query"],
        }
        return web.json_response(body)


def hn_entry(server: TestServer, interval: float = 60.0) -> str:
    return f"""  - name: hn-acme
    kind: hackernews
    query: acme
    hits_per_page: 2
    backfill: null
    interval: {interval}s
    base_url: {server.make_url("/api/v1")}
"""


async def test_hackernews_windows_past_the_paging_limit_storm_disconnect_and_restart(
    settings: Settings, tmp_path: Path
) -> None:
    settings = fast(settings)
    algolia = AlgoliaServer(pagination_limit=4)  # 6 hits, only 4 reachable per query: the walk narrows
    textless = {"_tags": ["comment", "author_ghost"], "author": "ghost", "comment_text": None, "objectID": "42310060"}
    algolia.hits.append({**textless, "created_at_i": int(epoch("2026-12-03T12:25:00")), "parent_id": 42310001})
    algolia.storm, algolia.drop = 7, 1
    async with serve(algolia.app()) as server:
        async with sink_for(settings) as sink:
            connector = from_sources(tmp_path, hn_entry(server, interval=0.1), settings)
            assert isinstance(connector, HackerNewsConnector)
            async with running(connector, sink):
                await wait_for(lambda: sink.sent >= 6, what="the first hits")
                calls = len(algolia.calls)
                await wait_for(lambda: len(algolia.calls) >= calls + 3, what="more cycles")
            assert sink.sent == 6, "the overlap re-read nothing twice (nor the textless hit)"
        windows = {c.get("numericFilters") for c in algolia.calls}
        assert any("created_at_i<=" in (w or "") for w in windows), "narrowed past the 1000-hit (here 4) limit"
        newest = int(epoch("2026-12-03T12:30:00"))
        assert (await checkpoint_of(settings, "connector:hackernews:hn-acme"))["mark"]["newest"] == newest

        algolia.hits += fixture("hackernews_later_hits.json")["hits"]
        async with sink_for(settings) as sink:  # a new process: the checkpoint comes back from Kafka
            restarted = from_sources(tmp_path, hn_entry(server), settings, only="hn-acme")
            assert await restarted.poll_once(sink) == 2  # the new comment and the one indexed late (12:30)
            # re-read from the overlap (5 minutes) before the checkpoint's newest hit
            assert algolia.calls[-1]["numericFilters"].split(",")[0] == f"created_at_i>={newest - 300}"
            assert await restarted.poll_once(sink) == 0
            await restarted.aclose()

    mentions, raw = await raw_topic(settings)
    assert set(mentions) == {f"hackernews:{i}" for i in (42310077, 42310076, 42310050, 42310020, 42310001)} | {
        "hackernews:42310099",
        "hackernews:42310078",
    }
    assert [json.loads(r)["objectID"] for r in raw] == ["42310060"]  # handed over raw once, for the DLQ
    comment = mentions["hackernews:42310077"]
    assert comment.text == "Same here. Acme's support told me to wait for the fix. Not great."
    assert comment.url == "https://news.ycombinator.com/item?id=42310077"
    assert comment.context is not None
    assert (comment.context.in_reply_to, comment.context.root) == ("hackernews:42310050", "hackernews:42310001")
    assert comment.created_at == datetime(2026, 12, 3, 12, 30, tzinfo=UTC)
    story = mentions["hackernews:42310020"]
    assert story.text == "Ask HN: Is Acme still worth buying?\nMy Acme X100 lasted 8 years. Thinking about the X200."
    assert story.metrics is not None and (story.metrics.likes, story.metrics.replies) == (35, 40)
    assert story.author is not None and story.author.handle == "asker" and story.context is None


# --- YouTube Data API v3 --------------------------------------------------------------------------------------
OWNED_CHANNEL = "UCacmeOfficial0000000001"
REVIEW_VIDEO, DISABLED_VIDEO, THREAD_WITH_7 = "rEvIeWx200z", "dIsAbLeD001", "UgzQ1launchThread1AaABAg"
API_KEY = "AIzaSyTest-not-a-real-key"


def paged(items: list[Any], query: dict[str, str], kind: str) -> dict[str, Any]:
    size = int(query.get("maxResults", "20"))
    start = int(query.get("pageToken", "page-0").removeprefix("page-"))
    body: dict[str, Any] = {
        "kind": kind,
        "etag": f"etag-{start}",
        "pageInfo": {"totalResults": len(items), "resultsPerPage": size},
        "items": items[start : start + size],
    }
    if start + size < len(items):
        body["nextPageToken"] = f"page-{start + size}"
    return body


class YouTubeServer:
    """www.googleapis.com/youtube/v3: commentThreads, comments, search; Google error bodies."""

    def __init__(self) -> None:
        self.threads: dict[str, list[dict[str, Any]]] = {
            f"channel:{OWNED_CHANNEL}": fixture("youtube_owned_channel_threads.json")["items"],
            f"video:{REVIEW_VIDEO}": fixture("youtube_review_threads.json")["items"],
        }
        self.replies = {THREAD_WITH_7: fixture("youtube_thread_replies.json")["items"]}
        self.storm = 0
        self.drop = 0
        self.quota_exhausted = False
        self.searches_answered = 0
        self.calls: list[tuple[str, dict[str, str]]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/youtube/v3/{resource}", self.handle)
        return app

    def add(self, key: str, threads: list[dict[str, Any]]) -> None:
        self.threads[key] = sorted(
            self.threads[key] + threads,
            key=lambda t: t["snippet"]["topLevelComment"]["snippet"]["publishedAt"],
            reverse=True,
        )

    async def handle(self, request: web.Request) -> web.Response:
        resource, query = request.match_info["resource"], dict(request.query)
        self.calls.append((resource, query))
        if query.get("key") != API_KEY:
            return web.json_response({"error": {"code": 400, "message": "API key not valid."}}, status=400)
        if self.drop:
            self.drop -= 1
            return drop_connection(request)
        if self.quota_exhausted:
            return web.json_response(fixture("youtube_403_quota_exceeded.json"), status=403)
        if self.storm:
            self.storm -= 1
            return web.json_response(fixture("youtube_429.json"), status=429)
        if resource == "search":
            assert (query["type"], query["order"], query["part"]) == ("video", "date", "snippet")
            self.searches_answered += 1
            return web.json_response(fixture("youtube_search.json"))
        if resource == "comments":
            return web.json_response(paged(self.replies[query["parentId"]], query, "youtube#commentListResponse"))
        assert resource == "commentThreads" and query["part"] == "snippet,replies"
        if query.get("videoId") == DISABLED_VIDEO:
            return web.json_response(fixture("youtube_403_comments_disabled.json"), status=403)
        key = f"channel:{query['allThreadsRelatedToChannelId']}" if "allThreadsRelatedToChannelId" in query else None
        key = key or f"video:{query['videoId']}"
        return web.json_response(paged(self.threads[key], query, "youtube#commentThreadListResponse"))


def youtube_entry(server: TestServer, interval: float = 300.0) -> str:
    return f"""  - name: youtube-acme
    kind: youtube
    api_key_env: YOUTUBE_TEST_API_KEY
    owned:
      acme:
        channels: [{OWNED_CHANNEL}]
        videos: [{DISABLED_VIDEO}]
    search: ["acme x200"]
    page_size: 2
    backfill: null
    interval: {interval}s
    base_url: {server.make_url("/youtube/v3")}
"""


@pytest.fixture
def youtube_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Settings) -> Settings:
    """The API key in the environment and a brands file naming the owner (acme); fast backoff."""
    monkeypatch.setenv("YOUTUBE_TEST_API_KEY", API_KEY)
    brands = tmp_path / "brands.yaml"
    brands.write_text("brands:\n  - id: acme\n    terms: [acme]\n", encoding="utf-8")
    return fast(settings).model_copy(update={"brands_file": brands})


async def test_youtube_owned_and_searched_comments_storm_disconnect_and_restart(
    youtube_env: Settings, tmp_path: Path
) -> None:
    settings = youtube_env
    youtube = YouTubeServer()
    youtube.storm, youtube.drop = 7, 1
    owned_first = 4 + 7 + 1  # four threads, all seven replies of one (fetched with comments.list), one more reply
    async with serve(youtube.app()) as server:
        async with sink_for(settings) as sink:
            connector = from_sources(tmp_path, youtube_entry(server, interval=0.1), settings)
            assert isinstance(connector, YouTubeConnector)
            async with running(connector, sink):
                await wait_for(lambda: sink.sent >= owned_first + 1, what="the first comments")
                calls = len(youtube.calls)
                await wait_for(lambda: len(youtube.calls) >= calls + 3, what="more cycles")
            assert sink.sent == owned_first + 1
        assert youtube.searches_answered == 1, "a search (100 units) runs once per search_interval, not every cycle"
        disabled = [q for r, q in youtube.calls if r == "commentThreads" and q.get("videoId") == DISABLED_VIDEO]
        assert len(disabled) == 1, "a video with comments disabled is skipped, not asked every cycle"
        launch_video = [q for r, q in youtube.calls if q.get("videoId") == "aCmEx200lch"]
        assert not launch_video, "a searched video on an owned channel is read through the channel"

        youtube.add(f"channel:{OWNED_CHANNEL}", fixture("youtube_later_threads.json")["items"])
        before = len(youtube.calls)
        async with sink_for(settings) as sink:  # a new process: the checkpoint comes back from Kafka
            restarted = from_sources(tmp_path, youtube_entry(server), settings, only="youtube-acme")
            assert await restarted.poll_once(sink) == 2  # the new comment and the one at the newest second
            resources = [r for r, _ in youtube.calls[before:]]
            assert "search" not in resources and "comments" not in resources  # both remembered in the checkpoint
            assert await restarted.poll_once(sink) == 0
            await restarted.aclose()

    mentions, raw = await raw_topic(settings)
    assert not raw and len(mentions) == owned_first + 1 + 2
    top = mentions["youtube:UgxN3wNewestComment4AaABAg"]
    assert top.text == "this thing literally caught fire in my kitchen" and top.source == "youtube"
    assert top.owned and top.owner == "acme"
    assert top.context is not None and (top.context.post, top.context.channel) == ("aCmEx200ad1", OWNED_CHANNEL)
    assert top.url == "https://www.youtube.com/watch?v=aCmEx200ad1&lc=UgxN3wNewestComment4AaABAg"
    assert top.author is not None and top.author.handle == "@burnt_toast"
    assert top.metrics is not None and top.metrics.likes == 230
    assert top.created_at == datetime(2026, 12, 3, 12, 50, tzinfo=UTC)
    reply = mentions[f"youtube:{THREAD_WITH_7}.A1reply3"]
    assert reply.context is not None and reply.context.in_reply_to == f"youtube:{THREAD_WITH_7}"
    assert reply.owned and reply.owner == "acme" and reply.context.post == "aCmEx200lch"
    review = mentions["youtube:UgzReviewTopComment01AaABAg"]
    assert not review.owned and review.owner is None
    assert review.context is not None and review.context.channel == "UCreviewer00000000000042"
    assert all(API_KEY not in m.model_dump_json() for m in mentions.values())


async def test_youtube_quota_exceeded_pauses_until_midnight_pacific(
    youtube_env: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    youtube = YouTubeServer()
    youtube.quota_exhausted = True
    async with serve(youtube.app()) as server, sink_for(youtube_env) as sink:
        connector = from_sources(tmp_path, youtube_entry(server), youtube_env)
        with (
            caplog.at_level(logging.WARNING, logger="crisiswatch.connectors.platforms.youtube"),
            pytest.raises(ConnectorError) as raised,
        ):
            await connector.poll_once(sink)
        expected = seconds_until_quota_reset(datetime.now(UTC))
        await connector.aclose()
    assert raised.value.reason == "rate_limited" and raised.value.retry_after is not None
    assert abs(raised.value.retry_after - expected) < 30, "run() waits this long before the next call"
    assert len(youtube.calls) == 1, "no call after quotaExceeded"
    [line] = [r.getMessage() for r in caplog.records if "quota" in r.getMessage()]
    assert "midnight Pacific" in line and API_KEY not in line
    assert sink.sent == 0


def test_quota_reset_is_midnight_pacific_in_winter_and_summer() -> None:
    assert seconds_until_quota_reset(datetime(2026, 12, 4, 7, 59, tzinfo=UTC)) == 60  # 23:59 PST (UTC-8)
    assert seconds_until_quota_reset(datetime(2026, 7, 1, 6, 59, 30, tzinfo=UTC)) == 30  # 23:59:30 PDT (UTC-7)
    assert seconds_until_quota_reset(datetime(2026, 12, 4, 8, 0, tzinfo=UTC)) == 86400  # just reset


def test_sources_file_problems_of_the_polling_kinds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.delenv("REDDIT_UNSET_ID", raising=False)
    monkeypatch.setenv("YT_KEY", API_KEY)
    brands = tmp_path / "brands.yaml"
    brands.write_text("brands:\n  - id: acme\n    terms: [acme]\n", encoding="utf-8")
    path = tmp_path / "sources.yaml"
    path.write_text(
        """brands: brands.yaml
sources:
  - {name: r, kind: reddit, query: acme, client_id_env: REDDIT_UNSET_ID, client_secret_env: YT_KEY}
  - {name: y, kind: youtube, api_key_env: YT_KEY, owned: {initech: {channels: [UC1]}}}
  - {name: h, kind: hackernews, query: acme}
""",
        encoding="utf-8",
    )
    with pytest.raises(SourcesFileError) as problems:
        load_sources(path).build(settings)
    first, second = problems.value.problems  # one line per entry that cannot be built
    assert first.startswith("r (reddit)") and "REDDIT_UNSET_ID" in first and CLIENT_SECRET not in first
    assert second == "y (youtube): owned: initech not in the brands file (acme)"
    (hn,) = load_sources(path).build(settings, only="h")
    assert isinstance(hn, HackerNewsConnector) and hn.query == "acme"

    path.write_text("sources:\n  - {name: r, kind: reddit}\n  - {name: y, kind: youtube, api_key: x}\n")
    with pytest.raises(SourcesFileError) as problems:
        load_sources(path)
    assert "give a query, subreddits or comments" in problems.value.problems[0]
    assert "credentials are not written in the file" in problems.value.problems[1]


def test_the_readme_example_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**Reddit, Hacker News and YouTube**") :]
    example = section[section.index("```yaml\n") + 8 : section.index("```\n", section.index("```yaml\n") + 8)]
    (tmp_path / "sources.yaml").write_text(example, encoding="utf-8")
    (tmp_path / "brands.yaml").write_text("brands:\n  - id: acme\n    terms: [acme]\n", encoding="utf-8")
    for name in ("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "YOUTUBE_API_KEY"):
        monkeypatch.setenv(name, f"value-of-{name}")
    reddit, hn, youtube = load_sources(tmp_path / "sources.yaml").build(settings)
    assert isinstance(reddit, RedditConnector) and isinstance(hn, HackerNewsConnector)
    assert isinstance(youtube, YouTubeConnector)
    assert [listing.key for listing in reddit.listings] == [
        "search::acme",
        "r/acme/new",
        "r/acme/comments",
        "r/BuyItForLife/comments",
    ]
    assert reddit.user_agent.startswith("python:acme-listening:1.0")
    assert youtube.owned_channels == {"UCxxxxxxxxxxxxxxxxxxxxxx": "acme"}
    assert youtube.owned_videos == {"dQw4w9WgXcQ": "acme"} and youtube.searches == ["acme x200"]
    assert youtube.api_key == "value-of-YOUTUBE_API_KEY"


# --- a real kill: SIGKILL between cycles, restart, nothing missing (more platforms: test_platforms_sigkill.py) -
async def test_hackernews_killed_with_sigkill_resumes_from_the_kafka_checkpoint(
    settings: Settings, tmp_path: Path
) -> None:
    assert settings.kafka.bootstrap_servers
    algolia = AlgoliaServer()
    env = connect_env(settings)
    await ensure_topics(settings.kafka.bootstrap_servers, settings)
    newest = int(epoch("2026-12-03T12:30:00"))
    mentions_topic, checkpoints_topic = settings.topic(MENTIONS_RAW.name), settings.topic(CONNECTOR_CHECKPOINTS.name)
    async with serve(algolia.app()) as server, TopicWatch(settings.kafka.bootstrap_servers, mentions_topic) as raw:
        path = tmp_path / "sources.yaml"
        path.write_text("sources:\n" + hn_entry(server, interval=0.2), encoding="utf-8")
        first = await start_connect(path, "hn-acme", env)
        try:
            async with TopicWatch(settings.kafka.bootstrap_servers, checkpoints_topic) as checkpoints:
                await checkpoints.until(
                    lambda rs: any((json.loads(r.value)["state"].get("mark") or {}).get("newest") == newest for r in rs)
                )
            await raw.until(lambda rs: len(set(raw.keys())) >= 5)
        finally:
            await kill(first)
        calls_before_restart = len(algolia.calls)
        algolia.hits += fixture("hackernews_later_hits.json")["hits"]
        second = await start_connect(path, "hn-acme", env)
        try:
            await raw.until(lambda rs: len(set(raw.keys())) >= 7)
        finally:
            await stop_cleanly(second, path, "hn-acme")
        await raw.until_end()  # everything both processes wrote: a late repeat would be seen
    resumed = algolia.calls[calls_before_restart]
    assert resumed["numericFilters"] == f"created_at_i>={newest - 300}", "the new process resumed from Kafka"
    got = raw.keys()
    expected = {f"hackernews:{h['objectID']}" for h in algolia.hits}
    assert set(got) == expected and len(got) == len(expected), "nothing missing, nothing twice"

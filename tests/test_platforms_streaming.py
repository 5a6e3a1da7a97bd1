"""Streaming platform connectors (Mastodon, Bluesky Jetstream, X filtered stream) against local servers.

Each server is an aiohttp app speaking the platform's wire format with payloads written from the public
API documentation (tests/fixtures/platforms/): Mastodon's SSE streaming API and REST timelines with
X-RateLimit-* headers, Jetstream's WebSocket with its cursor, X's NDJSON stream with keep-alive lines,
its rules endpoints and recent search. Every connector is built from a sources file, runs into the real
broker, survives a dropped connection and a storm of 429s, is restarted from its checkpoint (in the
compacted ``connectors.checkpoints`` topic, read back by a new sink), and what lands on ``mentions.raw``
is checked for gaps and duplicates. One more test SIGKILLs ``crisiswatch connect --sources`` mid-stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import connector_servers as servers
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from connector_servers import checkpoint_of, kafka_sink, serve, split
from kill_harness import TopicWatch, connect_env, kill, start_connect, stop_cleanly
from prometheus_client import REGISTRY

from crisiswatch.connectors.platforms.bluesky import BlueskyConnector
from crisiswatch.connectors.platforms.mastodon import MastodonConnector
from crisiswatch.connectors.platforms.x import XFilteredStream, brand_rule
from crisiswatch.connectors.sources import load_sources
from crisiswatch.contracts.topics import CONNECTOR_CHECKPOINTS, MENTIONS_RAW
from crisiswatch.detectors.brands import TermSet
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "platforms"
BRANDS = """brands:
  - id: acme
    terms: ["acme", "#acme", "@acme"]
    exclude: ["acme tools"]
  - id: globex
    terms: ["globex", "globex corp"]
"""

# --- helpers (tests/connector_servers.py), with this file's time limits ----------------------------------------
sink_for = kafka_sink
wait_for = partial(servers.wait_for, timeout=20.0)
running = partial(servers.running, timeout=15)
read_topic = partial(servers.read_topic, timeout=20.0)


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def fast(settings: Settings, tmp_path: Path) -> Settings:
    """Settings with short generic backoff and no checkpoint folder (checkpoints live in Kafka only)."""
    return settings.model_copy(
        update={
            "connector_state_dir": None,
            "connector_backoff_initial_seconds": 0.05,
            "connector_backoff_max_seconds": 0.2,
        }
    )


def sources_file(tmp_path: Path, entries: str) -> Path:
    (tmp_path / "brands.yaml").write_text(BRANDS, encoding="utf-8")
    path = tmp_path / "sources.yaml"
    path.write_text(f"brands: brands.yaml\nsources:\n{entries}", encoding="utf-8")
    return path


def gone(request: web.Request) -> bool:
    """Whether the client of a long-lived response has gone away."""
    return request.transport is None or request.transport.is_closing()


def iso_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


# --- Mastodon --------------------------------------------------------------------------------------------------
STATUS = json.loads((FIXTURES / "mastodon_status.json").read_text(encoding="utf-8"))
MASTODON_BASE_ID = 113_500_000_000_000_000


class MastodonServer:
    """The streaming endpoint (``plan`` per connection: ``429``, ``drop:N``, ``live``, ``hold:…``) and the
    hashtag timeline (``rest_plan`` per request: ``429``, ``exhausted``, ``ok``), over one list of statuses."""

    def __init__(self) -> None:
        self.statuses: list[tuple[dict[str, Any], bool]] = []  # (status, visible on the stream)
        self.plan: list[str] = []
        self.rest_plan: list[str] = []
        self.release = asyncio.Event()
        self.connections = 0
        self.live = 0  # connections past their start: everything posted from now on is streamed
        self.auth: list[str | None] = []
        self.rest_queries: list[dict[str, str]] = []
        self.search_queries: list[dict[str, str]] = []

    def status(self, n: int, text: str, *, reblog: dict[str, Any] | None = None) -> dict[str, Any]:
        status = copy.deepcopy(STATUS)
        status.update(id=str(MASTODON_BASE_ID + n), content=f"<p>{text}</p>", in_reply_to_id=None, reblog=reblog)
        status["created_at"] = "2026-12-04T09:15:02.000Z"
        if reblog is not None:
            status.update(content="", language=None)
            status["account"] = {**status["account"], "id": "9", "username": "booster", "acct": "booster@other.example"}
        return status

    def post(self, status: dict[str, Any], stream: bool = True) -> dict[str, Any]:
        self.statuses.append((status, stream))
        return status

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/streaming/hashtag", self.stream)
        app.router.add_get("/api/v1/streaming/public", self.stream)
        app.router.add_get("/api/v1/timelines/tag/{tag}", self.timeline)
        app.router.add_get("/api/v1/timelines/public", self.timeline)
        app.router.add_get("/api/v2/search", self.search)
        return app

    async def stream(self, request: web.Request) -> web.StreamResponse:
        self.connections += 1
        self.auth.append(request.headers.get("Authorization"))
        if request.path.endswith("/hashtag"):
            assert request.query["tag"] == "acme"
        plan = self.plan.pop(0) if self.plan else "live"
        if plan.startswith("hold:"):
            await self.release.wait()
            plan = plan.removeprefix("hold:")
        if plan == "429":
            headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": iso_in(0.1)}
            return web.json_response({"error": "Too many requests"}, status=429, headers=headers)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        await response.write(b":)\n\nevent: delete\ndata: 113400000000000000\n\n")
        drop_after = int(plan.split(":")[1]) if plan.startswith("drop:") else None
        cursor, sent, quiet = len(self.statuses), 0, 0
        self.live += 1
        with contextlib.suppress(ConnectionError):
            while True:
                while cursor < len(self.statuses):
                    status, visible = self.statuses[cursor]
                    cursor += 1
                    if visible:
                        await response.write(f"event: update\ndata: {json.dumps(status)}\n\n".encode())
                        sent += 1
                if drop_after is not None and sent >= drop_after:
                    request.transport.close()  # dropped mid-stream, no clean end
                    return response
                if gone(request):
                    return response
                await asyncio.sleep(0.02)
                quiet += 1
                if quiet % 10 == 0:
                    await response.write(b":thump\n\n")
        return response

    async def search(self, request: web.Request) -> web.Response:
        """``/api/v2/search?type=statuses``: statuses whose content holds ``q``, oldest first after ``min_id``."""
        query = dict(request.query)
        self.search_queries.append(query)
        assert query["type"] == "statuses"
        after, limit = int(query["min_id"]), int(query.get("limit", "20"))
        rows = [s for s, _ in self.statuses if int(s["id"]) > after and query["q"] in s["content"]]
        rows.sort(key=lambda s: int(s["id"]))
        return web.json_response({"accounts": [], "statuses": rows[:limit], "hashtags": []})

    async def timeline(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.rest_queries.append(query)
        self.auth.append(request.headers.get("Authorization"))
        plan = self.rest_plan.pop(0) if self.rest_plan else "ok"
        if plan == "429":
            headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": iso_in(0.3)}
            return web.json_response({"error": "Too many requests"}, status=429, headers=headers)
        since, limit = int(query["since_id"]), int(query.get("limit", "20"))
        below = int(query["max_id"]) if "max_id" in query else None
        rows = [s for s, _ in self.statuses if int(s["id"]) > since and (below is None or int(s["id"]) < below)]
        rows.sort(key=lambda s: int(s["id"]), reverse=True)
        headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0" if plan == "exhausted" else "250",
                   "X-RateLimit-Reset": iso_in(0.2)}  # fmt: skip
        return web.json_response(rows[:limit], headers=headers)


async def test_mastodon_stream_drop_429_storm_catch_up_and_restart(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MASTODON_TEST_TOKEN", "tok-123")
    settings = fast(settings, tmp_path)
    server = MastodonServer()
    server.plan = ["drop:3", "429", "429", "429", "hold:live"]
    server.rest_plan = ["429", "exhausted", "ok"]
    ignored_before = counter("crisiswatch_connector_ignored_total", connector="mastodon", why="event_type")
    async with serve(server.app()) as http:
        path = sources_file(
            tmp_path,
            f"""  - name: masto-acme
    kind: mastodon
    base_url: {str(http.make_url("/")).rstrip("/")}
    timeline: hashtag
    tag: "#acme"
    search: [gap]
    token_env: MASTODON_TEST_TOKEN
    idle_timeout: 5s
""",
        )
        async with sink_for(settings) as sink:
            (connector,) = load_sources(path).build(settings)
            assert isinstance(connector, MastodonConnector)
            async with running(connector, sink):
                await wait_for(lambda: server.connections >= 1)
                reply = server.post(STATUS)  # the recorded-shape status as is: a reply with HTML, an entity, an emoji
                original = server.post(server.status(2, "Acme support is the worst"))
                server.post(server.status(3, "", reblog=original))  # a boost: the same post again
                await wait_for(lambda: server.connections >= 5)  # dropped, then three 429s, now held
                gap = [server.post(server.status(10 + i, f"acme gap post {i}"), stream=False) for i in range(45)]
                server.release.set()
                await wait_for(lambda: sink.sent >= 47)
                live = server.post(server.status(100, "acme live again"))
                await wait_for(lambda: sink.sent >= 48)
        assert (await checkpoint_of(settings, "connector:mastodon:masto-acme"))["since_id"] == live["id"]

        # a new process: its checkpoint comes back from Kafka; what was posted meanwhile comes from REST
        down = [server.post(server.status(200 + i, f"acme while down {i}"), stream=False) for i in range(2)]
        server.plan, server.rest_plan = ["live"], []
        async with sink_for(settings) as sink:
            (restarted,) = load_sources(path).build(settings, only="masto-acme")
            async with running(restarted, sink):
                await wait_for(lambda: sink.sent >= 2)
                after = server.post(server.status(300, "acme after the restart"))
                await wait_for(lambda: sink.sent >= 3)
        records = await read_topic(settings.kafka.bootstrap_servers, settings.topic(MENTIONS_RAW.name), expect=51)

    mentions, raw = split(records)
    expected = {reply["id"], original["id"], live["id"], after["id"], *(s["id"] for s in gap + down)}
    assert set(mentions) == {f"mastodon:127.0.0.1:{i}" for i in expected} and not raw
    first = mentions[f"mastodon:127.0.0.1:{reply['id']}"]
    assert first.text == "Hey #acme my order never came & support is silent 😡 still waiting day 9"
    assert first.lang == "en" and first.url == reply["url"] and first.source == "mastodon"
    assert first.author is not None and first.author.handle == "alice@127.0.0.1" and first.author.followers == 412
    assert first.metrics is not None and (first.metrics.likes, first.metrics.shares) == (11, 5)
    assert first.context is not None and first.context.in_reply_to == "mastodon:127.0.0.1:113499999999999990"
    assert first.context.channel == "#acme"
    boosted = mentions[f"mastodon:127.0.0.1:{original['id']}"]
    assert boosted.author is not None and boosted.author.handle == "alice@127.0.0.1"  # the original, not the booster
    assert set(server.auth) == {"Bearer tok-123"}
    since_ids = [q["since_id"] for q in server.rest_queries]
    reblog_id = str(MASTODON_BASE_ID + 3)
    assert since_ids == [reblog_id, reblog_id, reblog_id, live["id"]]  # 429, page 1, page 2; restart
    assert "max_id" in server.rest_queries[2] and server.rest_queries[1]["limit"] == "40"
    searched_after = [q["min_id"] for q in server.search_queries]  # 45 hits: 40, then the 5 after the 40th
    assert searched_after == [reblog_id, str(MASTODON_BASE_ID + 49), live["id"]]
    assert counter("crisiswatch_connector_ignored_total", connector="mastodon", why="event_type") > ignored_before


async def test_mastodon_public_timeline_hands_over_only_posts_naming_a_brand(
    settings: Settings, tmp_path: Path
) -> None:
    """The public timeline is everything an instance sees: by default only posts naming a watched brand
    are handed over (as on Bluesky); ``match_brands: false`` passes every post on."""
    server = MastodonServer()
    await ensure_topics(settings.kafka.bootstrap_servers, settings)
    async with serve(server.app()) as http:
        base = str(http.make_url("")).rstrip("/")
        path = sources_file(
            tmp_path,
            f"  - {{name: m-public, kind: mastodon, base_url: '{base}', timeline: public}}\n"
            f"  - {{name: m-all, kind: mastodon, base_url: '{base}', timeline: public, match_brands: false}}\n",
        )
        (connector,) = load_sources(path).build(fast(settings, tmp_path), only="m-public")
        (unfiltered,) = load_sources(path).build(fast(settings, tmp_path), only="m-all")
        assert isinstance(unfiltered, MastodonConnector) and unfiltered.matcher is None
        ignored = counter("crisiswatch_connector_ignored_total", connector="mastodon", why="no_match")
        async with sink_for(settings) as sink, running(connector, sink):
            await wait_for(lambda: server.live >= 1)
            texts = ["the weather today", "my Acme blender caught fire", "Acme tools are on sale", "#acme recall",
                     "globex corp layoffs", "acmeville parade"]  # fmt: skip
            posted = [server.post(server.status(n, text)) for n, text in enumerate(texts, start=1)]
            await wait_for(
                lambda: (
                    counter("crisiswatch_connector_ignored_total", connector="mastodon", why="no_match") >= ignored + 3
                    and sink.sent >= 3
                )
            )
        records = await read_topic(settings.kafka.bootstrap_servers, settings.topic(MENTIONS_RAW.name), expect=3)
    mentions, _ = split(records)
    assert set(mentions) == {f"mastodon:127.0.0.1:{posted[i]['id']}" for i in (1, 3, 4)}  # excluded: "acme tools"
    assert counter("crisiswatch_connector_ignored_total", connector="mastodon", why="no_match") == ignored + 3


# --- Bluesky Jetstream -----------------------------------------------------------------------------------------
JETSTREAM = [json.loads(line) for line in (FIXTURES / "jetstream_events.jsonl").read_text().splitlines()]
T0 = 1_796_000_000_000_000  # time_us


class JetstreamServer:
    """``/subscribe``: replays from ``cursor`` then streams live; ``plan`` per connection (``429``,
    ``drop:N`` — close abruptly after N events —, ``live``)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.plan: list[str] = []
        self.cursors: list[int | None] = []

    def add(self, event: dict[str, Any]) -> dict[str, Any]:
        event = copy.deepcopy(event)
        event["time_us"] = T0 + len(self.events) * 1_000_000  # one event a second
        self.events.append(event)
        return event

    def post(self, rkey: str, text: str, template: int = 2, created: str | None = None) -> dict[str, Any]:
        event = copy.deepcopy(JETSTREAM[template])
        event["commit"]["rkey"] = rkey
        event["commit"]["record"]["text"] = text
        if created is not None:
            event["commit"]["record"]["createdAt"] = created
        return self.add(event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/subscribe", self.subscribe)
        return app

    async def subscribe(self, request: web.Request) -> web.StreamResponse:
        assert request.query["wantedCollections"] == "app.bsky.feed.post"
        cursor = int(request.query["cursor"]) if "cursor" in request.query else None
        self.cursors.append(cursor)
        plan = self.plan.pop(0) if self.plan else "live"
        if plan == "429":
            return web.Response(status=429, text="rate limited", headers={"Retry-After": "0"})
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        index = len(self.events) if cursor is None else next(
            (i for i, e in enumerate(self.events) if e["time_us"] >= cursor), len(self.events)
        )  # fmt: skip
        drop_after = int(plan.split(":")[1]) if plan.startswith("drop:") else None
        sent = 0
        with contextlib.suppress(ConnectionError):
            while not ws.closed and not gone(request):
                while index < len(self.events):
                    await ws.send_str(json.dumps(self.events[index]))
                    index += 1
                    sent += 1
                if drop_after is not None and sent >= drop_after:
                    request.transport.close()
                    return ws
                await asyncio.sleep(0.02)
        return ws


async def test_bluesky_jetstream_filter_cursor_resume_and_restart(settings: Settings, tmp_path: Path) -> None:
    settings = fast(settings, tmp_path)
    server = JetstreamServer()
    server.plan = ["drop:8", "429", "429", "429", "live"]
    no_match_before = counter("crisiswatch_connector_ignored_total", connector="bluesky", why="no_match")
    async with serve(server.app()) as http:
        path = sources_file(
            tmp_path,
            f"""  - name: bsky
    kind: bluesky
    url: {http.make_url("/subscribe")}
    cursor_margin: 5s
    idle_timeout: 10s
""".replace("http://", "ws://"),
        )
        async with sink_for(settings) as sink:
            (connector,) = load_sources(path).build(settings)
            assert isinstance(connector, BlueskyConnector)
            async with running(connector, sink):
                await wait_for(lambda: len(server.cursors) >= 1)
                server.add(JETSTREAM[0])  # identity
                server.add(JETSTREAM[1])  # account
                a = server.post("3laaaaaaaaa2a", "My Acme blender exploded in the kitchen")
                server.add(JETSTREAM[3])  # a delete
                server.add(JETSTREAM[4])  # a like: another collection
                b = server.post("3lbbbbbbbbb2b", "Globex Corp hat geantwortet", template=5)
                server.post("3lccccccccc2c", "nice weather today")  # no brand
                server.post("3lddddddddd2d", "acme tools are on sale")  # excluded phrase
                await wait_for(lambda: len(server.cursors) >= 5)  # dropped after 8 events, three 429s, live again
                last_before_drop = server.events[-1]["time_us"]
                server.post("3leeeeeeeee2e", "acme post with a broken date", created="yesterday-ish")
                f = server.post("3lfffffffff2f", "#acme refund please")
                await wait_for(lambda: sink.sent >= 4)
        assert (await checkpoint_of(settings, "connector:bluesky:bsky"))["time_us"] == f["time_us"]

        g = server.post("3lggggggggg2g", "posted while acme's connector was down")
        server.plan = ["live"]
        async with sink_for(settings) as sink:  # a new process: the cursor comes back from Kafka
            (restarted,) = load_sources(path).build(settings)
            async with running(restarted, sink):
                await wait_for(lambda: len(server.cursors) >= 6 and sink.sent >= 1)
                h = server.post("3lhhhhhhhhh2h", "acme after the restart")
                await wait_for(lambda: sink.sent >= 2)
        records = await read_topic(settings.kafka.bootstrap_servers, settings.topic(MENTIONS_RAW.name), expect=6)

    rewind = 5_000_000
    assert server.cursors == [None, *[last_before_drop - rewind] * 4, f["time_us"] - rewind]
    mentions, raw = split(records)
    ids = {e["did"] + "/app.bsky.feed.post/" + e["commit"]["rkey"] for e in (a, b, f, g, h)}
    assert set(mentions) == {f"bluesky:at://{i}" for i in ids}
    assert len(raw) == 1 and b"broken date" in raw[0]  # handed over once, although replayed in the overlap
    first = mentions[f"bluesky:at://{a['did']}/app.bsky.feed.post/3laaaaaaaaa2a"]
    assert first.url == f"https://bsky.app/profile/{a['did']}/post/3laaaaaaaaa2a" and first.lang == "en"
    assert first.context is not None
    assert first.context.in_reply_to == "bluesky:at://did:plc:parentdid/app.bsky.feed.post/3l3parent"
    assert first.context.root == "bluesky:at://did:plc:rootdid/app.bsky.feed.post/3l3root"
    assert first.author is not None and first.author.id == a["did"]
    quote = mentions[f"bluesky:at://{b['did']}/app.bsky.feed.post/3lbbbbbbbbb2b"]
    assert quote.lang == "de" and quote.context is not None
    assert quote.context.quotes == "bluesky:at://did:plc:quoteddid/app.bsky.feed.post/3l3quoted"
    assert counter("crisiswatch_connector_ignored_total", connector="bluesky", why="no_match") >= no_match_before + 2


# --- X filtered stream -----------------------------------------------------------------------------------------
TWEET_LINE = json.loads((FIXTURES / "x_stream_tweet.json").read_text(encoding="utf-8"))
DISCONNECT = (FIXTURES / "x_operational_disconnect.json").read_text(encoding="utf-8").strip()
TOO_MANY = json.loads((FIXTURES / "x_too_many_requests.json").read_text(encoding="utf-8"))
UNAVAILABLE = json.loads((FIXTURES / "x_service_unavailable.json").read_text(encoding="utf-8"))
INVALID_SINCE = json.loads((FIXTURES / "x_invalid_since_id.json").read_text(encoding="utf-8"))
X_BASE_ID = 1_866_200_000_000_000_000
GLOBEX_RULE = brand_rule(TermSet("globex", ("globex", "globex corp")))


class XServer:
    """Rules, the filtered stream (``plan`` per connection: ``429``, ``503``, ``disconnect:N``, ``stall:N``,
    ``live``, ``hold:…``) and recent search (``recent_plan``: ``429`` or ``ok``; two tweets a page)."""

    def __init__(self) -> None:
        self.rules = [
            {"id": "1", "value": "old brand rule", "tag": "crisiswatch:oldbrand"},
            {"id": "2", "value": "from:someone", "tag": "other-team"},
            {"id": "3", "value": GLOBEX_RULE, "tag": "crisiswatch:globex"},
        ]
        self.rule_posts: list[dict[str, Any]] = []
        self.tweets: list[tuple[dict[str, Any], bool]] = []
        self.plan: list[str] = []
        self.recent_plan: list[str] = []
        self.recent_queries: list[dict[str, str]] = []
        self.release = asyncio.Event()
        self.connections = 0
        self.live = 0  # connections past their start: everything posted from now on is streamed
        self.auth: list[str | None] = []

    def post(self, n: int, text: str, stream: bool = True) -> dict[str, Any]:
        line = copy.deepcopy(TWEET_LINE)
        line["data"].update(id=str(X_BASE_ID + n), text=text, edit_history_tweet_ids=[str(X_BASE_ID + n)])
        self.tweets.append((line, stream))
        return line["data"]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/2/tweets/search/stream/rules", self.get_rules)
        app.router.add_post("/2/tweets/search/stream/rules", self.post_rules)
        app.router.add_get("/2/tweets/search/stream", self.stream)
        app.router.add_get("/2/tweets/search/recent", self.recent)
        return app

    def _authorised(self, request: web.Request) -> bool:
        self.auth.append(request.headers.get("Authorization"))
        return request.headers.get("Authorization") == "Bearer x-bearer"

    async def get_rules(self, request: web.Request) -> web.Response:
        assert self._authorised(request)
        meta = {"sent": "2026-12-04T09:00:00.000Z", "result_count": len(self.rules)}
        return web.json_response({"data": self.rules, "meta": meta} if self.rules else {"meta": meta})

    async def post_rules(self, request: web.Request) -> web.Response:
        assert self._authorised(request)
        body = await request.json()
        self.rule_posts.append(body)
        if "delete" in body:
            before = len(self.rules)
            self.rules = [r for r in self.rules if r["id"] not in body["delete"]["ids"]]
            deleted = before - len(self.rules)
            summary = {"deleted": deleted, "not_deleted": len(body["delete"]["ids"]) - deleted}
            return web.json_response({"meta": {"sent": "2026-12-04T09:00:01.000Z", "summary": summary}})
        created = []
        for i, rule in enumerate(body["add"]):
            created.append({"id": f"18661000000000000{i:02d}", **rule})
        self.rules.extend(created)
        summary = {"created": len(created), "not_created": 0, "valid": len(created), "invalid": 0}
        return web.json_response({"data": created, "meta": {"sent": "2026-12-04T09:00:02.000Z", "summary": summary}})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        self.connections += 1
        if not self._authorised(request):
            return web.json_response({"title": "Unauthorized", "type": "about:blank", "status": 401}, status=401)
        assert request.query["expansions"] == "author_id" and "referenced_tweets" in request.query["tweet.fields"]
        plan = self.plan.pop(0) if self.plan else "live"
        if plan.startswith("hold:"):
            await self.release.wait()
            plan = plan.removeprefix("hold:")
        if plan == "429":
            headers = {"x-rate-limit-limit": "50", "x-rate-limit-remaining": "0",
                       "x-rate-limit-reset": str(int(time.time()) + 2)}  # fmt: skip
            return web.json_response(TOO_MANY, status=429, headers=headers)
        if plan == "503":
            return web.json_response(UNAVAILABLE, status=503)
        response = web.StreamResponse(headers={"Content-Type": "application/json; charset=utf-8"})
        await response.prepare(request)
        kind, _, count = plan.partition(":")
        limit = int(count) if count else None
        cursor, sent = len(self.tweets), 0
        self.live += 1
        with contextlib.suppress(ConnectionError):
            await response.write(b"\r\n")
            while True:
                while cursor < len(self.tweets) and (limit is None or sent < limit):
                    line, visible = self.tweets[cursor]
                    cursor += 1
                    if visible:
                        await response.write(json.dumps(line).encode() + b"\r\n")
                        sent += 1
                if kind == "disconnect" and limit is not None and sent >= limit:
                    await response.write(DISCONNECT.encode() + b"\r\n")
                    await response.write_eof()
                    return response
                if kind == "stall" and limit is not None and sent >= limit:
                    while not gone(request):  # silence, no keep-alive either, until the client gives up
                        await asyncio.sleep(0.05)
                    return response
                await asyncio.sleep(0.05)
                await response.write(b"\r\n")  # keep-alive
        return response

    async def recent(self, request: web.Request) -> web.Response:
        assert self._authorised(request)
        query = dict(request.query)
        self.recent_queries.append(query)
        plan = self.recent_plan.pop(0) if self.recent_plan else "ok"
        if plan == "400":  # e.g. a since_id older than the 7 days recent search covers
            return web.json_response(INVALID_SINCE, status=400)
        if plan == "429":
            headers = {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "0",
                       "x-rate-limit-reset": str(int(time.time()) + 1)}  # fmt: skip
            return web.json_response(TOO_MANY, status=429, headers=headers)
        since = int(query["since_id"])
        found = [t for t, _ in self.tweets if int(t["data"]["id"]) > since and "acme" in query["query"]]
        rows = sorted(found, key=lambda t: -int(t["data"]["id"]))  # newest first, like the API
        start = int(query.get("next_token", "0"))
        page = rows[start : start + 2]
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta.update(newest_id=page[0]["data"]["id"], oldest_id=page[-1]["data"]["id"])
        if start + 2 < len(rows):
            meta["next_token"] = str(start + 2)
        body: dict[str, Any] = {"meta": meta}
        if page:
            body.update(data=[t["data"] for t in page], includes=TWEET_LINE["includes"])
        return web.json_response(body)


def x_entry(http: TestServer) -> str:
    return f"""  - name: x-brands
    kind: x
    api_url: {str(http.make_url("/")).rstrip("/")}
    token_env: X_TEST_BEARER
    stall_timeout: 0.6s
    reconnect: {{network_step: 0.05s, network_max: 0.2s, http_initial: 0.1s, http_max: 0.4s, rate_limit_initial: 0.1s}}
"""


async def test_x_filtered_stream_rules_backoff_stall_catch_up_and_restart(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("X_TEST_BEARER", "x-bearer")
    settings = fast(settings, tmp_path)
    server = XServer()
    server.plan = ["disconnect:2", "429", "503", "hold:stall:1", "live"]
    server.recent_plan = ["429"]
    async with serve(server.app()) as http:
        path = sources_file(tmp_path, x_entry(http))
        async with sink_for(settings) as sink:
            (connector,) = load_sources(path).build(settings)
            assert isinstance(connector, XFilteredStream)
            async with running(connector, sink):
                await wait_for(lambda: server.connections >= 1)
                t1 = server.post(1, "Acme charged me twice")
                t2 = server.post(2, "@acme why is my refund late?")
                await wait_for(lambda: server.connections >= 4)  # disconnect, 429, 503, now held
                gap = [server.post(10 + i, f"acme gap {i}", stream=False) for i in range(3)]
                server.release.set()
                await wait_for(lambda: sink.sent >= 5)
                t3 = server.post(20, "acme then silence")
                await wait_for(lambda: server.connections >= 5)  # the stall was noticed
                await wait_for(lambda: len(server.recent_queries) >= 6)  # catch-up after the stall: nothing new
                t4 = server.post(30, "acme live again")
                await wait_for(lambda: sink.sent >= 7)
        assert (await checkpoint_of(settings, "connector:x:x-brands"))["since_id"] == t4["id"]
        down = server.post(40, "acme while the connector was down", stream=False)
        server.plan = ["live"]
        async with sink_for(settings) as sink:  # a new process: the newest id comes back from Kafka
            (restarted,) = load_sources(path).build(settings)
            async with running(restarted, sink):
                await wait_for(lambda: sink.sent >= 1)
                t5 = server.post(50, "acme after the restart")
                await wait_for(lambda: sink.sent >= 2)
        records = await read_topic(settings.kafka.bootstrap_servers, settings.topic(MENTIONS_RAW.name), expect=9)

    # rules: ours kept in step with the brands file, the other team's untouched
    assert server.rule_posts[0] == {"delete": {"ids": ["1"]}}
    acme_rule = '(acme OR #acme OR @acme) -"acme tools" -is:retweet'
    assert server.rule_posts[1] == {"add": [{"value": acme_rule, "tag": "crisiswatch:acme"}]}
    assert {r["tag"] for r in server.rules} == {"other-team", "crisiswatch:globex", "crisiswatch:acme"}
    assert len(server.rule_posts) == 2, "the restart found the rules in step: nothing to change"
    # reconnect schedules: operational disconnect → network, 429 → until x-rate-limit-reset, 503 → HTTP
    schedules = [s for s, _ in connector.delays]
    assert schedules == ["network", "rate_limit", "http", "network"]
    assert connector.delays[0][1] == pytest.approx(0.05) and connector.delays[2][1] == pytest.approx(0.1)
    assert connector.delays[1][1] > 1.0  # waited for the reset, not just the 0.1 s initial delay
    assert set(server.auth) == {"Bearer x-bearer"}
    acme = [q for q in server.recent_queries if q["query"] == acme_rule]
    assert [q["since_id"] for q in acme] == [t2["id"]] * 3 + [t3["id"], t4["id"]]  # 429, 2 pages; stall; restart
    assert "next_token" in acme[2] and len(server.recent_queries) == 2 * len(acme) - 2  # globex: one page each
    mentions, raw = split(records)
    assert set(mentions) == {f"x:{t['id']}" for t in (t1, t2, *gap, t3, t4, down, t5)} and not raw
    one = mentions[f"x:{t1['id']}"]
    assert one.url == f"https://x.com/devperson/status/{t1['id']}" and one.lang == "en"
    assert one.author is not None and (one.author.handle, one.author.followers) == ("devperson", 5120)
    assert one.metrics is not None and (one.metrics.likes, one.metrics.shares, one.metrics.reach) == (12, 5, 1850)
    assert one.context is not None and one.context.in_reply_to == "x:1866000000000000001"
    assert one.context.root == "x:1866000000000000000"


async def test_x_catch_up_refused_for_good_still_follows_the_stream(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("X_TEST_BEARER", "x-bearer")
    settings = fast(settings, tmp_path)
    server = XServer()
    server.plan, server.recent_plan = ["disconnect:1", "live"], ["400"]
    refused_before = counter("crisiswatch_connector_errors_total", connector="x", reason="http_4xx")
    async with serve(server.app()) as http, sink_for(settings) as sink:
        (connector,) = load_sources(sources_file(tmp_path, x_entry(http))).build(settings)
        async with running(connector, sink):
            await wait_for(lambda: server.connections >= 1)
            first = server.post(1, "acme one")
            await wait_for(lambda: server.connections >= 2 and len(server.recent_queries) >= 1)
            second = server.post(2, "acme two")
            await wait_for(lambda: sink.sent >= 2)
        records = await read_topic(settings.kafka.bootstrap_servers, settings.topic(MENTIONS_RAW.name), expect=2)
    assert server.recent_queries[0]["since_id"] == first["id"]
    assert server.connections == 2, "a refused catch-up is not a reason to reconnect"
    assert set(split(records)[0]) == {f"x:{first['id']}", f"x:{second['id']}"}
    assert counter("crisiswatch_connector_errors_total", connector="x", reason="http_4xx") == refused_before + 1


# --- a real kill: SIGKILL mid-stream, restart, nothing missing (more platforms: test_platforms_sigkill.py) ----
async def test_bluesky_killed_with_sigkill_resumes_from_the_kafka_checkpoint(
    settings: Settings, tmp_path: Path
) -> None:
    server = JetstreamServer()

    async def firehose() -> None:  # the network never sleeps: unrelated posts all the time
        n = 0
        while True:
            n += 1
            server.post(f"3lnoise{n:06d}", f"the weather, part {n}")
            await asyncio.sleep(0.05)

    env = connect_env(settings)
    await ensure_topics(settings.kafka.bootstrap_servers, settings)
    noise = asyncio.create_task(firehose())
    mentions_topic, checkpoints_topic = settings.topic(MENTIONS_RAW.name), settings.topic(CONNECTOR_CHECKPOINTS.name)
    try:
        async with serve(server.app()) as http, TopicWatch(settings.kafka.bootstrap_servers, mentions_topic) as raw:
            url = str(http.make_url("/subscribe")).replace("http://", "ws://")
            path = sources_file(tmp_path, f"  - {{name: bsky, kind: bluesky, url: '{url}', checkpoint_every: 0.2s}}\n")
            first = await start_connect(path, "bsky", env)
            try:
                await wait_for(lambda: len(server.cursors) >= 1, timeout=60)
                before = [server.post(f"3lbefore{i}", f"acme problem {i}") for i in range(3)]
                async with TopicWatch(settings.kafka.bootstrap_servers, checkpoints_topic) as checkpoints:
                    saved = before[-1]["time_us"]
                    await checkpoints.until(
                        lambda rs: any(json.loads(r.value)["state"].get("time_us", 0) > saved for r in rs), timeout=60
                    )  # a periodic checkpoint (checkpoint_every) after the three posts, carried by the noise
                after = [server.post(f"3lafter{i}", f"acme problem after {i}") for i in range(2)]
                await raw.until(lambda rs: len(set(raw.keys())) >= 5)
            finally:
                await kill(first)
            down = server.post("3ldown", "acme posted while the connector was dead")
            second = await start_connect(path, "bsky", env)
            try:
                await wait_for(lambda: len(server.cursors) >= 2, timeout=60)
                late = server.post("3llate", "acme after the restart")
                await raw.until(lambda rs: len(set(raw.keys())) >= 7)
            finally:
                await stop_cleanly(second, path, "bsky")
            await raw.until_end()  # everything both processes wrote: a late repeat would be seen
    finally:
        noise.cancel()

    def mention_id(event: dict[str, Any]) -> str:
        return f"bluesky:at://{event['did']}/app.bsky.feed.post/{event['commit']['rkey']}"

    got = raw.keys()
    assert set(got) == {mention_id(e) for e in [*before, *after, down, late]}  # nothing missing, no noise
    resumed_at = server.cursors[1]
    assert resumed_at is not None and before[-1]["time_us"] < resumed_at <= down["time_us"]  # from the checkpoint
    for event in [*before, down, late]:  # checkpointed (or new): handed over exactly once
        assert got.count(mention_id(event)) == 1, mention_id(event)
    for event in after:  # handed over after the last checkpoint: maybe again (the pipeline de-duplicates by id)
        assert got.count(mention_id(event)) in (1, 2)

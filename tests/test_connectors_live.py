"""Live connectors against real local servers speaking the real wire formats, publishing to the real broker.

Servers are aiohttp apps on 127.0.0.1: RSS 2.0 and Atom feeds (ETag / Last-Modified → 304), an SSE
endpoint (comments, multi-line data, ids, a dropped connection, Last-Event-ID on reconnect), a WebSocket
endpoint (subscribe, objects, arrays, a malformed frame, pings), a paginated JSON API (429 +
Retry-After), and the webhook receiver itself. Every test reads back what landed on ``mentions.raw``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import connector_servers as servers
import httpx
import pytest
from aiohttp import WSMsgType, web
from connector_servers import read_topic, serve, split
from prometheus_client import REGISTRY

from crisiswatch.connectors.base import Backoff, StateStore
from crisiswatch.connectors.mapping import FieldMapping
from crisiswatch.connectors.poll import JsonApiPoller
from crisiswatch.connectors.rss import FeedConnector
from crisiswatch.connectors.sink import MentionSink
from crisiswatch.connectors.sse import SseConnector
from crisiswatch.connectors.webhook import SIGNATURE_HEADER, WebhookReceiver, sign
from crisiswatch.connectors.websocket import WebSocketConnector
from crisiswatch.contracts.records import Mention
from crisiswatch.contracts.topics import MENTIONS_RAW
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings

FAST = Backoff(0.05, 0.2)


# --- helpers (tests/connector_servers.py), with this file's time limits ----------------------------------------
wait_for = partial(servers.wait_for, timeout=10.0)
running = partial(servers.running, timeout=10)


@contextlib.asynccontextmanager
async def sink_for(settings: Settings, bootstrap: str) -> AsyncIterator[MentionSink]:
    await ensure_topics(bootstrap, settings)
    async with MentionSink(settings, bootstrap) as sink:
        yield sink


def utc_json(mention: Mention, field: str = "created_at") -> str:
    return json.loads(mention.model_dump_json())[field]


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- RSS / Atom ------------------------------------------------------------------------------------
RSS_V1 = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Acme News</title><link>https://news.example/</link><language>en-us</language>
<item><guid isPermaLink="false">news-1</guid><title>Acme recalls blenders</title>
 <link>https://news.example/1</link><author>desk@news.example (News Desk)</author>
 <pubDate>Mon, 02 Mar 2026 09:00:00 +0200</pubDate>
 <description>&lt;p&gt;Blades &lt;b&gt;came loose&lt;/b&gt; &amp;amp; injured users.&lt;/p&gt;</description></item>
<item><title>Acme shares fall</title><link>https://news.example/2</link>
 <pubDate>Mon, 02 Mar 2026 07:30:00</pubDate><description>Down 9%.</description></item>
<item><guid isPermaLink="false">news-empty</guid><link>https://news.example/3</link></item>
{extra}</channel></rss>"""
RSS_EXTRA = """<item><guid isPermaLink="false">news-4</guid><title>Acme apologises</title><link>https://news.example/4</link>
 <pubDate>Mon, 02 Mar 2026 10:00:00 GMT</pubDate><description>Statement.</description></item>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="de-DE"><title>Acme Blog</title><id>urn:blog</id>
<updated>2026-03-02T08:00:00Z</updated>
<entry><id>urn:blog:1</id><title>Wir entschuldigen uns</title><link href="/posts/1"/>
 <published>2026-03-02T09:00:00+02:00</published><updated>2026-03-02T09:30:00+02:00</updated>
 <author><name>Acme PR</name></author>
 <summary type="html">&lt;p&gt;Der &lt;em&gt;Mixer&lt;/em&gt; wird zurückgerufen.&lt;/p&gt;</summary></entry>
<entry><id>urn:blog:2</id><title>Update</title><link href="https://blog.example/posts/2"/>
 <updated>2026-03-02T07:15:00</updated><content type="html">&lt;b&gt;Neue&lt;/b&gt; Infos</content></entry>
</feed>"""


async def test_rss_feed_with_etag_304_restart_and_new_entry(
    kafka_bootstrap: str, settings: Settings, tmp_path: Path
) -> None:
    feed = {"body": RSS_V1.format(extra=""), "etag": '"v1"'}
    seen_headers: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen_headers.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == feed["etag"]:
            return web.Response(status=304, headers={"ETag": feed["etag"]})
        return web.Response(
            body=feed["body"].encode(), content_type="application/rss+xml", headers={"ETag": feed["etag"]}
        )

    app = web.Application()
    app.router.add_get("/feed.xml", handler)
    state_dir = tmp_path / "state"
    async with serve(app) as server, sink_for(settings, kafka_bootstrap) as sink:
        url = str(server.make_url("/feed.xml"))
        host = "127.0.0.1"
        first = FeedConnector(url, source="news", state=StateStore.for_connector(state_dir, "rss", url))
        assert await first.poll_once(sink) == 2
        assert await first.poll_once(sink) == 0  # 304
        await first.aclose()
        feed.update(body=RSS_V1.format(extra=RSS_EXTRA), etag='"v2"')
        restarted = FeedConnector(url, source="news", state=StateStore.for_connector(state_dir, "rss", url))
        assert await restarted.poll_once(sink) == 1  # only the new entry: seen ids survived the restart
        await restarted.aclose()
    assert seen_headers == [None, '"v1"', '"v1"']

    mentions, raw = split(await read_topic(kafka_bootstrap, settings.topic(MENTIONS_RAW.name), expect=4))
    link_hash = hashlib.sha1(b"https://news.example/2").hexdigest()[:16]
    assert set(mentions) == {f"rss:{host}:news-1", f"rss:{host}:{link_hash}", f"rss:{host}:news-4"}
    one = mentions[f"rss:{host}:news-1"]
    assert one.source == "news" and one.lang == "en" and one.url == "https://news.example/1"
    assert one.text == "Acme recalls blenders\nBlades came loose & injured users."
    assert utc_json(one) == "2026-03-02T07:00:00Z"
    assert one.author is not None and "News Desk" in (one.author.handle or "")
    assert utc_json(mentions[f"rss:{host}:{link_hash}"]) == "2026-03-02T07:30:00Z"  # no zone → UTC
    assert utc_json(mentions[f"rss:{host}:news-4"]) == "2026-03-02T10:00:00Z"
    assert all(m.fetched_at is not None and utc_json(m, "fetched_at").endswith("Z") for m in mentions.values())
    assert len(raw) == 1 and json.loads(raw[0])["id"] == "news-empty"  # entry without text: handed over raw


async def test_atom_feed_run_loop_with_last_modified(kafka_bootstrap: str, settings: Settings) -> None:
    last_modified = "Mon, 02 Mar 2026 08:00:00 GMT"
    conditional: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        conditional.append(request.headers.get("If-Modified-Since"))
        if request.headers.get("If-Modified-Since") == last_modified:
            return web.Response(status=304)
        return web.Response(
            body=ATOM.encode(), content_type="application/atom+xml", headers={"Last-Modified": last_modified}
        )

    app = web.Application()
    app.router.add_get("/atom", handler)
    before = counter("crisiswatch_connector_items_total", connector="rss")
    async with serve(app) as server, sink_for(settings, kafka_bootstrap) as sink:
        url = str(server.make_url("/atom"))
        connector = FeedConnector(url, source="blog", interval=0.05, backoff=FAST)
        async with running(connector, sink):
            await wait_for(lambda: len(conditional) >= 3)
    assert conditional[:3] == [None, last_modified, last_modified]
    assert counter("crisiswatch_connector_items_total", connector="rss") - before == 2

    mentions, raw = split(await read_topic(kafka_bootstrap, settings.topic(MENTIONS_RAW.name), expect=2))
    assert not raw and set(mentions) == {"rss:127.0.0.1:urn:blog:1", "rss:127.0.0.1:urn:blog:2"}
    first, second = mentions["rss:127.0.0.1:urn:blog:1"], mentions["rss:127.0.0.1:urn:blog:2"]
    assert first.source == "blog" and first.lang == "de"
    assert first.url == f"{url.rsplit('/', 1)[0]}/posts/1"  # relative link resolved against the feed URL
    assert first.text == "Wir entschuldigen uns\nDer Mixer wird zurückgerufen."
    assert utc_json(first) == "2026-03-02T07:00:00Z" and first.author.handle == "Acme PR"
    assert utc_json(second) == "2026-03-02T07:15:00Z"  # updated only, no zone → UTC
    assert second.text == "Update\nNeue Infos"


async def test_not_a_feed_is_a_source_error_not_a_mention(kafka_bootstrap: str, settings: Settings) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="<html><body>maintenance</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/feed", handler)
    before = counter("crisiswatch_connector_errors_total", connector="rss", reason="parse")
    async with serve(app) as server, sink_for(settings, kafka_bootstrap) as sink:
        connector = FeedConnector(str(server.make_url("/feed")), interval=0.05, backoff=FAST)
        async with running(connector, sink):
            await wait_for(
                lambda: counter("crisiswatch_connector_errors_total", connector="rss", reason="parse") > before
            )
        assert sink.sent == 0


async def test_cli_connect_rss_runs_until_sigint(kafka_bootstrap: str, settings: Settings, tmp_path: Path) -> None:
    requests: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        requests.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304)
        return web.Response(body=RSS_V1.format(extra="").encode(), content_type="text/xml", headers={"ETag": '"v1"'})

    app = web.Application()
    app.router.add_get("/feed", handler)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CRISISWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "CRISISWATCH_PARTITIONS": "2",
        "CRISISWATCH_CONNECTOR_STATE_DIR": str(tmp_path / "state"),
        "CRISISWATCH_CONNECTOR_CHECKPOINTS": "file",  # this test reads the checkpoint file
    }
    await ensure_topics(kafka_bootstrap, settings)
    async with serve(app) as server:
        args = ["connect", "rss", str(server.make_url("/feed")), "--interval", "0.2s", "--source", "blog"]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crisiswatch.cli", *args, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await wait_for(lambda: len(requests) >= 2, timeout=30)
        finally:
            process.send_signal(signal.SIGINT)
            _, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, err.decode()
    assert "stopped; 3 records handed over" in err.decode()
    assert requests[:2] == [None, '"v1"']
    assert list((tmp_path / "state").glob("rss-*.json")), "checkpoint written"
    mentions, raw = split(await read_topic(kafka_bootstrap, settings.topic(MENTIONS_RAW.name), expect=3))
    assert len(mentions) == 2 and len(raw) == 1 and {m.source for m in mentions.values()} == {"blog"}


# --- Server-Sent Events ----------------------------------------------------------------------------
SSE_MAPPING = FieldMapping.from_dict(
    {
        "source": "firehose",
        "fields": {"id": "id", "text": "text", "created_at": "created_at", "author.handle": "user.handle"},
    }
)


async def test_sse_stream_multiline_comments_drop_and_last_event_id(
    kafka_bootstrap: str, settings: Settings, tmp_path: Path
) -> None:
    connections: list[str | None] = []
    second_done = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        connections.append(request.headers.get("Last-Event-ID"))
        if len(connections) > 2:
            return web.Response(status=204)  # "stop reconnecting"
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        if len(connections) == 1:
            await response.write(b": welcome\n\nretry: 50\n\n")
            await response.write(
                b'event: mention\nid: 1\ndata: {"id": "a1",\ndata:  "text": "Acme blender\\nexploded",\n'
                b'data: "created_at": "2026-03-02T09:00:00+02:00", "user": {"handle": "jo"}}\n\n'
            )
            await response.write(b": heartbeat\n\n")
            await response.write(
                b'id: 2\r\ndata: [{"id": "a2", "text": "two", "created_at": 1772434800},'
                b' {"id": "a3", "text": "three", "created_at": "2026-03-02T07:00:00"}]\r\n\r\n'
            )
            await asyncio.sleep(0.05)
            request.transport.close()  # drop the connection mid-stream, no clean end
            return response
        await response.write(b'id: 3\ndata: {"id": "a4", "text": "four", "created_at": "2026-03-02T07:05:00Z"}\n\n')
        await response.write(b"data: not json at all\n\n")
        await response.write(b'event: status\ndata: {"ok": true}\n\n')
        second_done.set()
        with contextlib.suppress(ConnectionError):
            while True:
                await asyncio.sleep(0.05)
                await response.write(b": keepalive\n\n")
        return response

    app = web.Application()
    app.router.add_get("/stream", handler)
    async with serve(app) as server, sink_for(settings, kafka_bootstrap) as sink:
        url = str(server.make_url("/stream"))
        state_file = tmp_path / "sse.json"
        connector = SseConnector(
            url, SSE_MAPPING, events={"mention", "message"}, backoff=FAST, state=StateStore(state_file)
        )
        async with running(connector, sink):
            await asyncio.wait_for(second_done.wait(), 10)
            records = await read_topic(kafka_bootstrap, settings.topic(MENTIONS_RAW.name), expect=5)
        assert json.loads(state_file.read_text())["last_event_id"] == "3"
        restarted = SseConnector(url, SSE_MAPPING, backoff=FAST, state=StateStore(state_file))
        await asyncio.wait_for(restarted.run(sink, asyncio.Event()), 5)  # returns by itself on 204
    assert connections == [None, "2", "3"]  # reconnects (and the restart) send the last id the server gave
    assert connector.last_event_id == "3" and connector.reconnect_seconds == 0.05
    mentions, raw = split(records)
    assert set(mentions) == {"firehose:a1", "firehose:a2", "firehose:a3", "firehose:a4"}
    a1 = mentions["firehose:a1"]
    assert a1.text == "Acme blender\nexploded" and a1.author.handle == "jo" and a1.source == "firehose"
    assert utc_json(a1) == "2026-03-02T07:00:00Z"
    assert utc_json(mentions["firehose:a2"]) == "2026-03-02T07:00:00Z"  # epoch seconds
    assert utc_json(mentions["firehose:a3"]) == "2026-03-02T07:00:00Z"  # naive → UTC
    assert raw == [b"not json at all"]  # the status event was filtered out by event type, not published


# --- WebSocket -------------------------------------------------------------------------------------
WS_MAPPING = FieldMapping.from_dict(
    {
        "source": "social",
        "match": {"type": "mention"},
        "fields": {
            "id": "id",
            "text": "body",
            "created_at": "ts",
            "author.handle": "author",
            "metrics.likes": "likes",
        },
    }
)


def ws_item(ident: str, likes: int = 0) -> dict[str, Any]:
    return {"type": "mention", "id": ident, "body": f"text {ident}", "ts": "2026-03-02T08:00:00+01:00", "likes": likes}


async def test_websocket_subscribe_frames_pings_and_reconnect(kafka_bootstrap: str, settings: Settings) -> None:
    subscriptions: list[Any] = []
    pings = 0
    second_done = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        nonlocal pings
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        first = await ws.receive(timeout=5)
        subscriptions.append(json.loads(first.data))
        if len(subscriptions) == 1:
            await ws.send_str(json.dumps({"type": "subscribed", "channel": "acme"}))
            await ws.send_str(json.dumps(ws_item("w1", likes=5)))
            await ws.send_str(json.dumps([ws_item("w2"), ws_item("w3")]))
            await ws.send_str("{oops")
            await ws.send_str(json.dumps({"type": "mention", "id": "w-bad", "ts": "2026-03-02T08:00:00Z"}))
            while pings == 0:  # the client keeps the connection alive with pings
                message = await ws.receive(timeout=5)
                if message.type == WSMsgType.PING:
                    pings += 1
                    await ws.pong(message.data)
            await ws.close()
            return ws
        await ws.send_str(json.dumps(ws_item("w4")))
        second_done.set()
        async for message in ws:
            if message.type == WSMsgType.PING:
                await ws.pong(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    subscribe = {"op": "subscribe", "track": ["acme"]}
    async with serve(app) as server, sink_for(settings, kafka_bootstrap) as sink:
        connector = WebSocketConnector(
            str(server.make_url("/ws")), WS_MAPPING, subscribe=[subscribe], heartbeat=0.1, backoff=FAST
        )
        async with running(connector, sink):
            await asyncio.wait_for(second_done.wait(), 10)
            records = await read_topic(kafka_bootstrap, settings.topic(MENTIONS_RAW.name), expect=6)
    assert subscriptions == [subscribe, subscribe] and pings >= 1 and connector.connections == 2
    mentions, raw = split(records)
    assert set(mentions) == {"social:w1", "social:w2", "social:w3", "social:w4"}
    w1 = mentions["social:w1"]
    assert w1.metrics.likes == 5 and w1.text == "text w1" and utc_json(w1) == "2026-03-02T07:00:00Z"
    assert sorted(raw) == sorted(
        [b"{oops", json.dumps({"type": "mention", "id": "w-bad", "ts": "2026-03-02T08:00:00Z"}).encode()]
    )


# --- JSON API poller -------------------------------------------------------------------------------
POLL_MAPPING = FieldMapping.from_dict(
    {
        "source": "forum",
        "items": "data",
        "fields": {
            "id": "id",
            "text": "body",
            "created_at": "posted_at",
            "url": "permalink",
            "author.handle": "user.name",
            "metrics.likes": "votes",
        },
        "params": {"q": "acme"},
        "pagination": {"cursor_path": "meta.next_cursor", "cursor_param": "cursor", "since_param": "since_id"},
    }
)


def post(ident: int, posted_at: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "body": f"post {ident}",
        "posted_at": posted_at,
        "permalink": f"https://forum.example/p/{ident}",
        "user": {"name": f"user{ident}"},
        "votes": ident,
    }


async def test_json_api_pagination_retry_after_and_since(kafka_bootstrap: str, settings: Settings) -> None:
    calls: list[dict[str, str]] = []
    limited = {"done": False}

    async def handler(request: web.Request) -> web.Response:
        query = dict(request.query)
        calls.append(query)
        assert query.get("q") == "acme"
        if query.get("cursor") == "c2":
            if not limited["done"]:
                limited["done"] = True
                return web.json_response({"error": "slow down"}, status=429, headers={"Retry-After": "1"})
            return web.json_response({"data": [post(3, 1772434800000), post(4, "2026-03-02T07:00:00Z")], "meta": {}})
        if query.get("since_id") == "4":
            return web.json_response({"data": [post(5, "2026-03-02T08:00:00+01:00")], "meta": {"next_cursor": None}})
        return web.json_response(
            {
                "data": [post(1, 1772434800), post(2, "Mon, 02 Mar 2026 07:00:00 GMT"), {"body": "no id"}],
                "meta": {"next_cursor": "c2"},
            }
        )

    app = web.Application()
    app.router.add_get("/api/search", handler)
    async with serve(app) as server, sink_for(settings, kafka_bootstrap) as sink:
        poller = JsonApiPoller(str(server.make_url("/api/search")), POLL_MAPPING, backoff=FAST)
        started = time.monotonic()
        assert await poller.poll_once(sink) == 4
        assert time.monotonic() - started >= 0.95  # waited out Retry-After: 1 on the same page
        assert await poller.poll_once(sink) == 1
        await poller.aclose()
    assert [c.get("cursor") for c in calls] == [None, "c2", "c2", None]
    assert calls[-1].get("since_id") == "4" and "since_id" not in calls[0]

    mentions, raw = split(await read_topic(kafka_bootstrap, settings.topic(MENTIONS_RAW.name), expect=6))
    assert set(mentions) == {f"forum:{i}" for i in range(1, 6)}
    assert all(utc_json(m) == "2026-03-02T07:00:00Z" for m in mentions.values())
    three = mentions["forum:3"]
    assert three.url == "https://forum.example/p/3" and three.author.handle == "user3" and three.metrics.likes == 3
    assert [json.loads(r) for r in raw] == [{"body": "no id"}]


# --- Webhook receiver ------------------------------------------------------------------------------
async def test_webhook_signature_token_ndjson_and_raw_handover(kafka_bootstrap: str, settings: Settings) -> None:
    secret = b"webhook-test-secret"
    receiver = WebhookReceiver(secret=secret, token="tok-123", port=0, max_bytes=4096, sources=["reviews"])
    good = [
        {
            "id": "r1",
            "text": "Acme blender broke",
            "created_at": "2026-03-02T09:00:00+02:00",
            "url": "https://r.example/1",
        },
        {
            "id": "r2",
            "text": "Love it",
            "created_at": "2026-03-02T07:00:00",
            "author": {"handle": "ann", "followers": 10},
            "metrics": {"likes": 2},
            "lang": "en",
        },
        {"id": "r-bad", "text": "no timestamp"},
    ]
    body = json.dumps(good).encode()
    auth_errors = counter("crisiswatch_connector_errors_total", connector="webhook", reason="auth")
    async with sink_for(settings, kafka_bootstrap) as sink, running(receiver, sink):
        await wait_for(lambda: receiver.bound_port is not None)
        base = f"http://127.0.0.1:{receiver.bound_port}/webhooks"
        async with httpx.AsyncClient() as http:
            evil = json.dumps([{"id": "evil", "text": "x", "created_at": "2026-03-02T07:00:00Z"}]).encode()
            bad_sig = await http.post(f"{base}/reviews", content=evil, headers={SIGNATURE_HEADER: sign(b"wrong", evil)})
            no_auth = await http.post(f"{base}/reviews", content=evil)
            bad_token = await http.post(f"{base}/reviews", content=evil, headers={"Authorization": "Bearer nope"})
            assert (bad_sig.status_code, no_auth.status_code, bad_token.status_code) == (401, 401, 401)

            accepted = await http.post(f"{base}/reviews", content=body, headers={SIGNATURE_HEADER: sign(secret, body)})
            assert accepted.status_code == 202 and accepted.json() == {"accepted": 2, "rejected": 1}

            ndjson = b'{"id": "r3", "text": "meh", "created_at": 1772434800}\nnot json\n'
            by_token = await http.post(
                f"{base}/reviews",
                content=ndjson,
                headers={"Authorization": "Bearer tok-123", "Content-Type": "application/x-ndjson"},
            )
            assert by_token.status_code == 202 and by_token.json() == {"accepted": 1, "rejected": 1}

            big = b"[" + b" " * 5000 + b"]"
            too_big = await http.post(f"{base}/reviews", content=big, headers={SIGNATURE_HEADER: sign(secret, big)})
            unknown = await http.post(f"{base}/other", content=body, headers={SIGNATURE_HEADER: sign(secret, body)})
            assert (too_big.status_code, unknown.status_code) == (413, 404)
            assert (await http.get(f"http://127.0.0.1:{receiver.bound_port}/healthz")).status_code == 200

    assert counter("crisiswatch_connector_errors_total", connector="webhook", reason="auth") - auth_errors == 3
    mentions, raw = split(await read_topic(kafka_bootstrap, settings.topic(MENTIONS_RAW.name), expect=5))
    assert set(mentions) == {"reviews:r1", "reviews:r2", "reviews:r3"}  # nothing from the unauthenticated posts
    assert utc_json(mentions["reviews:r1"]) == "2026-03-02T07:00:00Z"
    assert utc_json(mentions["reviews:r2"]) == "2026-03-02T07:00:00Z"
    r2 = mentions["reviews:r2"]
    assert r2.source == "reviews" and r2.author.followers == 10 and r2.metrics.likes == 2 and r2.lang == "en"
    assert sorted(raw) == sorted([json.dumps(good[2]).encode(), b"not json"])


def test_webhook_needs_a_secret_or_token() -> None:
    with pytest.raises(ValueError, match="secret or a bearer token"):
        WebhookReceiver()

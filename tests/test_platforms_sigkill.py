"""Every platform resumes from its Kafka checkpoint after a SIGKILL of ``crisiswatch connect --sources``.

One scenario, parametrised over Mastodon, X, Reddit and YouTube (Bluesky and Hacker News have their own
kill tests, with checks of their cursor and filter): a real subprocess runs one entry of a sources file
against the platform's local test server (the servers of test_platforms_streaming / _polling) and the
real broker, then

1. posts A are handed over and a checkpoint record covering the last of them is in ``connectors.checkpoints``;
2. posts B are handed over (maybe after the last checkpoint);
3. SIGKILL; posts C appear while nothing runs;
4. a new process starts from the checkpoint in Kafka; C is handed over, then post D;
5. SIGINT (exit 0), and ``mentions.raw`` is read to its end.

Nothing is missing (A-D all arrive; a new process that ignored the checkpoint would miss C on the streams,
which only catch up from a saved id, and repeat A on the polled feeds, which read every page without one),
and nothing repeats beyond the documented bound: only B, handed over after the last checkpoint, may
arrive twice (the pipeline drops the repeat by id).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from kill_harness import TopicWatch, connect_env, kill, start_connect, stop_cleanly
from test_platforms_polling import API_KEY as YOUTUBE_KEY
from test_platforms_polling import CLIENT_ID, CLIENT_SECRET, OWNED_CHANNEL, REDDIT_UA, RedditServer, YouTubeServer
from test_platforms_polling import fixture as polling_fixture
from test_platforms_streaming import MastodonServer, XServer, serve, sources_file

from crisiswatch.contracts.topics import CONNECTOR_CHECKPOINTS, MENTIONS_RAW
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings

EVERY = "checkpoint_every: 0.001s"  # streams: a checkpoint after every post (the default is 5s)
POLL = "interval: 0.1s\n    backfill: null"  # polled feeds: a cycle (and its checkpoint) every 0.1 s


@dataclass
class Case:
    """One platform: its server, its sources entry, and how a post appears on it."""

    name: str
    kind: str
    app: Callable[[], web.Application]
    entry: Callable[[TestServer], str]
    publish: Callable[[int], tuple[str, str]]  # post n -> (mention id, the platform's id of it)
    env: dict[str, str] = field(default_factory=dict)
    live: Callable[[], int] | None = None  # streams: connections whose later posts are streamed


def mastodon() -> Case:
    server = MastodonServer()

    def publish(n: int) -> tuple[str, str]:
        status = server.post(server.status(n, f"acme problem {n}"))
        return f"mastodon:127.0.0.1:{status['id']}", status["id"]

    def entry(http: TestServer) -> str:
        base = str(http.make_url("")).rstrip("/")
        return f"  - {{name: kill-mastodon, kind: mastodon, base_url: '{base}', tag: acme, {EVERY}}}\n"

    return Case("kill-mastodon", "mastodon", server.app, entry, publish, live=lambda: server.live)


def x() -> Case:
    server = XServer()

    def publish(n: int) -> tuple[str, str]:
        tweet = server.post(n, f"acme problem {n}")
        return f"x:{tweet['id']}", tweet["id"]

    def entry(http: TestServer) -> str:
        base = str(http.make_url("")).rstrip("/")
        return f"  - {{name: kill-x, kind: x, api_url: '{base}', token_env: X_TEST_BEARER, {EVERY}}}\n"

    return Case("kill-x", "x", server.app, entry, publish, {"X_TEST_BEARER": "x-bearer"}, lambda: server.live)


def reddit() -> Case:
    server = RedditServer()
    server.listings["/search"] = []
    template = polling_fixture("reddit_search_new.json")["data"]["children"][0]

    def publish(n: int) -> tuple[str, str]:
        child = copy.deepcopy(template)
        data = child["data"]
        data.update(id=f"kill{n}", name=f"t3_kill{n}", title=f"acme problem {n}", created_utc=1_796_400_000 + 60 * n)
        data["created"] = data["created_utc"]
        data["permalink"] = f"/r/acme/comments/kill{n}/acme_problem_{n}/"
        server.add("/search", [child])
        return f"reddit:t3_kill{n}", f"t3_kill{n}"

    def entry(http: TestServer) -> str:
        base = str(http.make_url("")).rstrip("/")
        return f"""  - name: kill-reddit
    kind: reddit
    query: acme
    client_id_env: REDDIT_TEST_CLIENT_ID
    client_secret_env: REDDIT_TEST_CLIENT_SECRET
    user_agent: "{REDDIT_UA}"
    page_limit: 2
    {POLL}
    token_url: {base}/api/v1/access_token
    api_url: {base}
"""

    env = {"REDDIT_TEST_CLIENT_ID": CLIENT_ID, "REDDIT_TEST_CLIENT_SECRET": CLIENT_SECRET}
    return Case("kill-reddit", "reddit", server.app, entry, publish, env)


def youtube() -> Case:
    server = YouTubeServer()
    key = f"channel:{OWNED_CHANNEL}"
    server.threads = {key: []}
    template = polling_fixture("youtube_owned_channel_threads.json")["items"][0]  # no replies

    def publish(n: int) -> tuple[str, str]:
        thread: dict[str, Any] = copy.deepcopy(template)
        thread_id = f"UgKillThread{n}AaABAg"
        comment = thread["snippet"]["topLevelComment"]
        thread["id"] = comment["id"] = thread_id
        when = f"2026-12-04T10:{n:02d}:00Z"
        comment["snippet"].update(textOriginal=f"acme problem {n}", publishedAt=when, updatedAt=when)
        server.add(key, [thread])
        return f"youtube:{thread_id}", thread_id

    def entry(http: TestServer) -> str:
        return f"""  - name: kill-youtube
    kind: youtube
    api_key_env: YOUTUBE_TEST_API_KEY
    owned: {{acme: {{channels: [{OWNED_CHANNEL}]}}}}
    page_size: 2
    {POLL}
    base_url: {http.make_url("/youtube/v3")}
"""

    return Case("kill-youtube", "youtube", server.app, entry, publish, {"YOUTUBE_TEST_API_KEY": YOUTUBE_KEY})


async def streaming(case: Case, connections: int, timeout: float = 60.0) -> None:
    """On a stream, wait until its ``connections``-th connection is live (a post before that is not streamed
    to it; a first connection has no checkpoint to catch up from)."""
    deadline = time.monotonic() + timeout
    while case.live is not None and case.live() < connections:
        assert time.monotonic() < deadline, f"{case.name}: no live stream connection {connections}"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("make", [mastodon, x, reddit, youtube], ids=lambda make: make.__name__)
async def test_killed_with_sigkill_resumes_from_the_kafka_checkpoint(
    make: Callable[[], Case], settings: Settings, tmp_path: Path
) -> None:
    case = make()
    assert settings.kafka.bootstrap_servers
    await ensure_topics(settings.kafka.bootstrap_servers, settings)
    env = connect_env(settings, **case.env)
    mentions_topic, checkpoints_topic = settings.topic(MENTIONS_RAW.name), settings.topic(CONNECTOR_CHECKPOINTS.name)
    checkpoint_key = f"connector:{case.kind}:{case.name}".encode()
    bootstrap = settings.kafka.bootstrap_servers

    def arrived(ids: list[str]) -> Callable[[list[Any]], bool]:
        return lambda records: set(ids) <= {r.key.decode() for r in records if r.key}

    async with serve(case.app()) as http, TopicWatch(bootstrap, mentions_topic) as raw:
        path = sources_file(tmp_path, case.entry(http))
        first = await start_connect(path, case.name, env)
        try:
            await streaming(case, 1)
            a: list[str] = []
            for n in (1, 2, 3):  # one at a time: each is handed over, and checkpointed, on its own
                mention_id, last_platform_id = case.publish(n)
                a.append(mention_id)
                await raw.until(arrived(a))
            async with TopicWatch(bootstrap, checkpoints_topic) as checkpoints:

                def covers_a(records: list[Any]) -> bool:
                    mine = [r.value.decode() for r in records if r.key == checkpoint_key]
                    return bool(mine) and last_platform_id in mine[-1]

                await checkpoints.until(covers_a)  # acknowledged first: A is safe in the broker
            b = [case.publish(n)[0] for n in (4, 5)]
            await raw.until(arrived(b))
        finally:
            await kill(first)
        c = [case.publish(n)[0] for n in (6, 7)]  # while nothing runs
        second = await start_connect(path, case.name, env)
        try:
            await raw.until(arrived(c))
            await streaming(case, 2)
            d = [case.publish(8)[0]]
            await raw.until(arrived(d))
        finally:
            await stop_cleanly(second, path, case.name)
        await raw.until_end()  # everything both processes wrote, a late repeat included

    got = raw.keys()
    assert set(got) == set(a + b + c + d), "nothing missing, nothing else"
    for mention_id in a + c + d:  # checkpointed before the kill, or handed over by the new process only
        assert got.count(mention_id) == 1, f"{mention_id} arrived {got.count(mention_id)} times"
    for mention_id in b:  # handed over after the last checkpoint the killed process wrote: at most again
        assert got.count(mention_id) in (1, 2), f"{mention_id} arrived {got.count(mention_id)} times"

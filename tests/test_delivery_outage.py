"""A broker outage while a polling connector and the webhook run: nothing accepted is lost.

The embedded broker is stopped (for ``CRISISWATCH_TEST_OUTAGE_SECONDS``, default 60 s as the issue asks: longer than the
sink's spill delay and the producer's request timeout, so that both paths run) and started again on
the same port. It is memory-only, so it comes back EMPTY: what the old broker held is read before it
stops, and the sink must re-create the topics itself before it replays its spool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from crisiswatch.broker import EmbeddedBroker, free_port
from crisiswatch.connectors.base import Backoff, StateStore
from crisiswatch.connectors.checkpoints import STAGE
from crisiswatch.connectors.mapping import FieldMapping
from crisiswatch.connectors.poll import JsonApiPoller
from crisiswatch.connectors.sink import MentionSink, SinkOptions
from crisiswatch.connectors.webhook import WebhookReceiver
from crisiswatch.contracts.topics import CONNECTOR_CHECKPOINTS, MENTIONS_RAW
from crisiswatch.follow import read_states
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings
from tests.conftest import read_all

OUTAGE_SECONDS = float(os.environ.get("CRISISWATCH_TEST_OUTAGE_SECONDS", "60"))
TOKEN = "outage-test-token"
MAPPING = FieldMapping.from_dict(
    {
        "source": "forum",
        "items": "data",
        "fields": {"id": "id", "text": "body", "created_at": "posted_at"},
        "pagination": {"since_param": "since_id"},
    }
)


async def until(condition: Callable[[], bool], timeout: float, what: str | Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        await asyncio.sleep(0.05)


def checkpoints_counted() -> float:
    """``crisiswatch_connector_checkpoints_total{store="kafka"}``: checkpoint records the broker acknowledged."""
    return REGISTRY.get_sample_value("crisiswatch_connector_checkpoints_total", {"store": "kafka"}) or 0.0


def sink_status(sink: MentionSink) -> str:
    spooled = len(sink.spool) if sink.spool is not None else 0
    return f"sent {sink.sent}, acked {sink.acked}, secured {sink.secured_count}, spool {spooled}, down {sink.down}"


class Forum:
    """A JSON search API whose posts the test adds; ``since_id`` answers only newer ones."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []

    def add(self, count: int) -> None:
        now = datetime.now(UTC).isoformat()
        start = len(self.posts) + 1
        self.posts.extend({"id": i, "body": f"post {i}", "posted_at": now} for i in range(start, start + count))

    async def search(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since_id", "0"))
        return web.json_response({"data": [p for p in self.posts if p["id"] > since][:200]})


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class Poster:
    """Posts batches of 10 mentions to a webhook, remembering which ids were accepted (202)."""

    def __init__(self, url: str, prefix: str):
        self.url = url
        self.prefix = prefix
        self.accepted: set[str] = set()
        self.statuses: list[tuple[int, str | None]] = []
        self.sent = 0

    async def post_once(self, session: aiohttp.ClientSession) -> int:
        now = datetime.now(UTC).isoformat()
        ids = [f"{self.prefix}{self.sent + i}" for i in range(10)]
        self.sent += 10
        body = [{"id": i, "text": f"mention {i}", "created_at": now} for i in ids]
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with session.post(self.url, json=body, headers=headers) as response:
            self.statuses.append((response.status, response.headers.get("Retry-After")))
            if response.status == 202:
                self.accepted.update(f"hooks:{i}" for i in ids)
            return response.status


@pytest.mark.asyncio
async def test_nothing_accepted_is_lost_when_the_broker_stops_and_comes_back_empty(tmp_path: Path) -> None:
    port = free_port()
    broker = EmbeddedBroker(port=port).start()
    bootstrap = broker.bootstrap_servers
    settings = Settings(bootstrap_servers=bootstrap, topic_prefix="outage.", partitions=2)
    topic = settings.topic(MENTIONS_RAW.name)
    fast = {"spill_after_seconds": 1.0, "request_timeout_ms": 3000, "retry_max_seconds": 0.5}
    forum = Forum()
    forum_app = web.Application()
    forum_app.router.add_get("/search", forum.search)
    try:
        await ensure_topics(bootstrap, settings)
        sink = MentionSink(settings, bootstrap, SinkOptions(spool_dir=tmp_path / "spool", **fast), checkpoints="kafka")
        no_spool = MentionSink(settings, bootstrap, SinkOptions(**fast))
        async with sink, no_spool, serve(forum_app) as forum_url:
            stop = asyncio.Event()
            state = StateStore.for_connector(None, "poll", "outage-forum")
            assert state.backend is sink.checkpoints
            poller = JsonApiPoller(
                f"{forum_url}/search", MAPPING, interval=0.1, state=state, backoff=Backoff(0.05, 0.2)
            )
            receiver = WebhookReceiver(token=TOKEN, port=0, handover_timeout=15.0, retry_after=7)
            refusing = WebhookReceiver(token=TOKEN, port=0, handover_timeout=1.0, retry_after=7)
            tasks = [
                asyncio.create_task(poller.run(sink, stop)),
                asyncio.create_task(receiver.run(sink, stop)),
                asyncio.create_task(refusing.run(no_spool, stop)),
            ]
            await until(lambda: receiver.bound_port is not None and refusing.bound_port is not None, 10, "webhooks")
            poster = Poster(f"http://127.0.0.1:{receiver.bound_port}/webhooks/hooks", "w")
            async with aiohttp.ClientSession() as session:
                # before: the broker is up
                for _ in range(5):
                    forum.add(20)
                    assert await poster.post_once(session) == 202
                await until(lambda: state.data.get("since") == len(forum.posts), 30, "the poller to catch up")
                await sink.settled()
                before = await read_all(bootstrap, topic, timeout=1.5)
                assert len(before) >= 150

                acked_before = len(forum.posts)  # every post so far is acknowledged (settled above)
                assert await state.saved(30)

                # during: the broker is gone
                broker.stop()
                stopped = time.monotonic()
                forum.add(20)  # handed over while the broker is gone: spooled, never acknowledged
                assert await poster.post_once(session) == 202
                await until(lambda: sink.down, 30, lambda: f"the sink to notice ({sink_status(sink)})")
                written_at_down = sink.checkpoints.saved  # a write in flight at the stop has failed or landed
                counted_at_down = checkpoints_counted()
                during_posts = 0
                while time.monotonic() - stopped < OUTAGE_SECONDS or during_posts < 3:
                    forum.add(20)
                    assert await poster.post_once(session) == 202  # secured in the spool
                    during_posts += 1
                    await until(lambda: state.data.get("since") == len(forum.posts), 30, "the poller (outage)")
                assert sink.down and sink.spool is not None and len(sink.spool) > 0
                refused_url = f"http://127.0.0.1:{refusing.bound_port}/webhooks/hooks"
                refused = Poster(refused_url, "refused")
                assert await refused.post_once(session) == 503  # no spool: cannot secure them
                assert refused.statuses[-1] == (503, "7")
                written = sink.checkpoints.states.get(state.key or "") or {}
                # the poller's own position ran ahead into the spool, the checkpoint did not follow it:
                assert state.data.get("since") == len(forum.posts) > acked_before
                assert written.get("since", 0) <= acked_before, f"checkpoint past unacknowledged records: {written}"
                assert sink.checkpoints.saved == written_at_down, "no checkpoint written while the broker was down"
                assert checkpoints_counted() == counted_at_down

                # after: the broker is back, EMPTY; the sink re-creates the topics and sends the spool
                broker = EmbeddedBroker(port=port).start()
                for _ in range(5):
                    forum.add(20)
                    assert await poster.post_once(session) == 202
                await until(
                    lambda: state.data.get("since") == len(forum.posts),
                    60,
                    lambda: f"the poller to catch up ({sink_status(sink)}, since {state.data.get('since')})",
                )
                await asyncio.wait_for(sink.settled(), 60)
                assert await state.saved(30)
            stop.set()
            await asyncio.gather(*tasks)
        after = await read_all(bootstrap, topic, timeout=1.5)
        written_after = await read_all(bootstrap, settings.topic(CONNECTOR_CHECKPOINTS.name), timeout=1.0)
        checkpoints = await read_states(bootstrap, settings.topic(CONNECTOR_CHECKPOINTS.name), STAGE, [0])
    finally:
        broker.stop()

    keys = [r.key.decode() for r in before + after]
    expected = {f"forum:{p['id']}" for p in forum.posts} | poster.accepted
    missing = expected - set(keys)
    assert not missing, f"{len(missing)} accepted mentions never arrived, e.g. {sorted(missing)[:5]}"
    assert set(keys) <= expected | {f"hooks:refused{i}" for i in range(10)}
    assert len(keys) - len(set(keys)) <= 0.1 * len(expected), "repeats stay a small minority"
    assert sink.outages >= 1 and sink.expired == 0 and sink.lost == 0
    # every checkpoint the returned broker holds was written after the records it covers were in mentions.raw
    # (each record's timestamp is taken when it is sent, before its acknowledgement; saved_at after it)
    first_sent: dict[str, int] = {}
    for record in before + after:
        first_sent[record.key.decode()] = min(record.timestamp, first_sent.get(record.key.decode(), record.timestamp))
    forum_records = [r for r in written_after if r.key == b"connector:poll:outage-forum"]
    assert forum_records, "checkpoints were written once the broker was back"
    for record in forum_records:
        document = json.loads(record.value)
        written_ms = round(document["saved_at"] * 1000) + 1
        covered = [f"forum:{i}" for i in range(1, document["state"]["since"] + 1)]
        early = [key for key in covered if first_sent[key] > written_ms]
        since = document["state"]["since"]
        assert not early, f"checkpoint since={since} written before {len(early)} of its records were sent: {early[:3]}"
    saved = checkpoints[0]["poll:outage-forum"]["state"]
    assert saved["since"] == len(forum.posts), "the checkpoint moved on once the broker acknowledged"

"""Delivery to mentions.raw: the spool format, spooled records across a restart, checkpoints in the
compacted topic read by a new process, replay resume (after a kill and after a stop), unsorted replay."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crisiswatch.connectors.base import StateStore
from crisiswatch.connectors.checkpoints import STAGE
from crisiswatch.connectors.replay import ReplayConnector, ReplayItem, ReplayReport, reordered, replay
from crisiswatch.connectors.sink import MentionSink, SinkOptions
from crisiswatch.connectors.spool import Spool, encode_record
from crisiswatch.contracts.topics import CONNECTOR_CHECKPOINTS, MENTIONS_RAW
from crisiswatch.follow import read_states
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings
from tests.conftest import read_all

CHILD = Path(__file__).with_name("delivery_child.py")
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def until(condition: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def mention(i: int, at: datetime) -> dict[str, Any]:
    return {"id": f"r:{i}", "source": "replay", "text": f"mention {i}", "created_at": at.isoformat()}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def child_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "",
        "CRISISWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "CRISISWATCH_PARTITIONS": str(settings.kafka.partitions),
    }


# --- the spool ---------------------------------------------------------------------------------------
def test_spool_keeps_order_and_head_across_reopen_and_cuts_a_torn_tail(tmp_path: Path) -> None:
    now = time.time()
    spool = Spool(tmp_path, max_bytes=1 << 20, max_age=60)
    spool.append([(b"a", b"1", now), (None, b"raw \xff bytes", now)])
    spool.append([(b"c", b"3", now)])
    records, end = spool.read(None, 2, 1 << 20)
    assert records == [(b"a", b"1", now), (None, b"raw \xff bytes", now)]
    spool.release(end, 2)
    segment = next(tmp_path.glob("seg-*.spool"))
    with segment.open("ab") as handle:  # a crash in the middle of a write
        handle.write(encode_record(b"d", b"4", now)[:-2])
    again = Spool(tmp_path, max_bytes=1 << 20, max_age=60)
    assert len(again) == 1
    assert again.read(None, 10, 1 << 20)[0] == [(b"c", b"3", now)]
    again.append([(b"e", b"5", now)])  # appends continue after the cut
    records, end = again.read(None, 10, 1 << 20)
    assert [r[0] for r in records] == [b"c", b"e"]
    again.release(end, 2)
    assert len(again) == 0 and not list(tmp_path.glob("seg-*.spool"))
    full = Spool(tmp_path / "small", max_bytes=1 << 20, max_age=60)
    assert not full.has_room((1 << 20) + 1)


async def test_records_left_in_the_spool_go_first_and_too_old_ones_are_reported(
    settings: Settings, kafka_bootstrap: str, tmp_path: Path
) -> None:
    await ensure_topics(kafka_bootstrap, settings)
    now = time.time()
    left = Spool(tmp_path / "spool", max_bytes=1 << 20, max_age=3600)
    left.append([(b"old", b'{"id": "old"}', now - 7200), (b"kept:1", b'{"id": "kept:1"}', now - 10)])
    left.append([(b"kept:2", b'{"id": "kept:2"}', now - 5)])
    options = SinkOptions(spool_dir=tmp_path / "spool", spool_max_age_seconds=3600)
    async with MentionSink(settings, kafka_bootstrap, options) as sink:
        await sink.send_raw(b'{"id": "new"}', b"new")
        await asyncio.wait_for(sink.settled(), 30)
        assert sink.expired == 1
    records = await read_all(kafka_bootstrap, settings.topic(MENTIONS_RAW.name), timeout=1.0)
    assert sorted(r.key for r in records) == [b"kept:1", b"kept:2", b"new"]
    assert len(Spool(tmp_path / "spool", max_bytes=1 << 20, max_age=3600)) == 0


# --- checkpoints ---------------------------------------------------------------------------------------
async def test_a_new_process_resumes_from_the_checkpoint_topic(
    settings: Settings, kafka_bootstrap: str, tmp_path: Path
) -> None:
    await ensure_topics(kafka_bootstrap, settings)
    async with MentionSink(settings, kafka_bootstrap, checkpoints="kafka") as sink:
        state = StateStore.for_connector(None, "websocket", "jetstream")
        assert state.key == "websocket:jetstream" and state.persistent and state.path is None
        for i in range(50):
            await sink.send_raw(json.dumps(mention(i, START)).encode(), f"r:{i}".encode())
        state.data["cursor"] = 1_700_000_000_000_049
        state.save()  # right after handing over: written once the 50 are acknowledged
        state.data["cursor"] = "not saved"
        assert await state.saved(30)
        url_state = StateStore.for_connector(None, "poll", "https://api.example/search?key=SECRET")
        assert "SECRET" not in (url_state.key or "")
    checkpoints = await read_states(kafka_bootstrap, settings.topic(CONNECTOR_CHECKPOINTS.name), STAGE, [0])
    assert checkpoints[0]["websocket:jetstream"]["state"] == {"cursor": 1_700_000_000_000_049}

    process = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), "checkpoint", "websocket", "jetstream",
        env=child_env(settings), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    assert json.loads(out.decode().strip().splitlines()[-1]) == {"cursor": 1_700_000_000_000_049}


# --- replay ---------------------------------------------------------------------------------------------
async def test_replay_resumes_after_a_kill_without_gaps(
    settings: Settings, kafka_bootstrap: str, tmp_path: Path
) -> None:
    await ensure_topics(kafka_bootstrap, settings)
    total = 1500
    path = write_jsonl(tmp_path / "m.jsonl", [mention(i, START + timedelta(milliseconds=10 * i)) for i in range(total)])
    topic = settings.topic(CONNECTOR_CHECKPOINTS.name)

    async def checkpoint_done() -> int:
        states = await read_states(kafka_bootstrap, topic, STAGE, [0])
        return int(states[0].get("replay:killed", {}).get("state", {}).get("done", 0))

    first = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), "replay", str(path), "killed", "1",  # 100 records/s
        env=child_env(settings), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await until(lambda: _at_least(checkpoint_done, 300), 60, "a checkpoint past 300 records")
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    killed_at = await checkpoint_done()
    assert 300 <= killed_at < total

    second = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), "replay", str(path), "killed", "0",
        env=child_env(settings), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(second.communicate(), 60)
    assert second.returncode == 0 and out.decode().strip() == f"sent {total - killed_at}"
    assert await checkpoint_done() == total

    keys = [r.key.decode() for r in await read_all(kafka_bootstrap, settings.topic(MENTIONS_RAW.name), timeout=1.0)]
    assert set(keys) == {f"r:{i}" for i in range(total)}, "no gap"
    assert len(keys) - total <= 200, "only what was sent after the last checkpoint is sent again"


async def _at_least(read: Callable[[], Any], value: int) -> bool:
    return await read() >= value


async def test_a_stopped_replay_resumes_exactly_where_it_stopped(
    settings: Settings, kafka_bootstrap: str, tmp_path: Path
) -> None:
    await ensure_topics(kafka_bootstrap, settings)
    total = 600
    path = write_jsonl(tmp_path / "m.jsonl", [mention(i, START + timedelta(milliseconds=10 * i)) for i in range(total)])
    async with MentionSink(settings, kafka_bootstrap, checkpoints="kafka") as sink:
        connector = ReplayConnector(path, speed=1.0, state=StateStore.for_connector(None, "replay", "stopped"))
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        deadline = time.monotonic() + 60
        while sink.acked < 150:
            assert time.monotonic() < deadline, f"only {sink.acked} of {total} acknowledged in 60 s"
            await asyncio.sleep(0.05)
        stop.set()
        await task
    stopped_after = connector.report.sent
    assert 150 <= stopped_after < total
    async with MentionSink(settings, kafka_bootstrap, checkpoints="kafka") as sink:
        state = StateStore.for_connector(None, "replay", "stopped")
        assert state.data["done"] == stopped_after
        report = ReplayReport()
        assert await replay(path, sink, checkpoint=state, report=report) == total - stopped_after
        assert report.skipped == stopped_after
    keys = [r.key.decode() for r in await read_all(kafka_bootstrap, settings.topic(MENTIONS_RAW.name), timeout=1.0)]
    assert sorted(keys) == sorted(f"r:{i}" for i in range(total)), "every record exactly once"


async def test_an_unsorted_replay_file_is_sent_oldest_first_with_an_account(
    settings: Settings, kafka_bootstrap: str, tmp_path: Path, caplog: Any
) -> None:
    await ensure_topics(kafka_bootstrap, settings)
    rows = [mention(i, START + timedelta(seconds=i)) for i in range(400)]
    rng = random.Random(7)
    for block in range(0, 400, 40):  # shuffled within blocks of 40: at most 39 places out of order
        part = rows[block : block + 40]
        rng.shuffle(part)
        rows[block : block + 40] = part
    path = write_jsonl(tmp_path / "unsorted.jsonl", rows)
    report = ReplayReport()
    async with MentionSink(settings, kafka_bootstrap) as sink:
        assert await replay(path, sink, reorder_window=100, report=report) == 400
    assert report.out_of_order > 100 and report.late == 0 and report.max_disorder_seconds <= 39
    assert "were out of order, by up to" in caplog.text and "all were sent in order" in caplog.text
    records = await read_all(kafka_bootstrap, settings.topic(MENTIONS_RAW.name), timeout=1.0)
    assert len(records) == 400
    for partition in {r.partition for r in records}:
        times = [json.loads(r.value)["created_at"] for r in records if r.partition == partition]
        assert times == sorted(times), "each partition receives the mentions oldest first"


def test_a_record_further_out_of_place_than_the_window_is_sent_late_and_counted() -> None:
    def item(i: int, t: float) -> ReplayItem:
        return ReplayItem(str(i).encode(), str(i).encode(), t)

    items = [item(i, float(i)) for i in range(1, 20)] + [item(0, 0.0)] + [ReplayItem(b"junk", None, None)]
    report = ReplayReport()
    out = [x.value for x in reordered(items, 5, report)]
    assert out[:14] == [str(i).encode() for i in range(1, 15)]
    assert out.index(b"0") == 14 and out[-1] == b"junk"
    assert report.late == 1 and report.out_of_order == 1 and report.max_late_seconds == 14.0
    assert "sent late" in report.message(Path("x.jsonl"))
    whole = ReplayReport()
    assert [x.value for x in reordered(items, None, whole)][:2] == [b"0", b"1"] and whole.late == 0
    in_order = ReplayReport()
    assert [x.value for x in reordered(items[:19], 5, in_order)] == [x.value for x in items[:19]]
    assert in_order.message(Path("x.jsonl")) == ""


async def test_a_websocket_cursor_is_checkpointed_and_sent_on_the_next_start(
    settings: Settings, kafka_bootstrap: str
) -> None:
    from aiohttp import WSMsgType, web

    from crisiswatch.connectors.mapping import FieldMapping
    from crisiswatch.connectors.websocket import WebSocketConnector

    await ensure_topics(kafka_bootstrap, settings)
    cursors: list[str | None] = []

    async def stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        cursors.append(request.query.get("cursor"))
        start = int(request.query.get("cursor", "1000")) + 1
        for t in range(start, start + 5):
            await ws.send_json({"time_us": t, "post": {"id": f"p{t}", "text": "hi", "at": START.isoformat()}})
        async for message in ws:  # keep the connection open until the client goes
            if message.type == WSMsgType.CLOSE:
                break
        return ws

    app = web.Application()
    app.router.add_get("/subscribe", stream)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"ws://127.0.0.1:{runner.addresses[0][1]}/subscribe?wantedCollections=app.bsky.feed.post"
    mapping = FieldMapping.from_dict(
        {
            "source": "jet",
            "fields": {"id": "post.id", "text": "post.text", "created_at": "post.at"},
            "cursor": {"path": "time_us", "param": "cursor"},
        }
    )
    try:
        for _run in range(2):
            async with MentionSink(settings, kafka_bootstrap, checkpoints="kafka") as sink:
                state = StateStore.for_connector(None, "websocket", "jet")
                connector = WebSocketConnector(url, mapping, state=state)
                stop = asyncio.Event()
                task = asyncio.create_task(connector.run(sink, stop))
                while connector.cursor is None or connector.cursor < (1005 if _run == 0 else 1010):
                    await asyncio.sleep(0.05)
                stop.set()
                await task
    finally:
        await runner.cleanup()
    assert cursors == [None, "1005"]
    keys = {r.key for r in await read_all(kafka_bootstrap, settings.topic(MENTIONS_RAW.name), timeout=1.0)}
    assert keys == {f"jet:p{t}".encode() for t in range(1001, 1011)}


async def test_a_sink_without_spool_room_closing_in_an_outage_reports_what_it_could_not_hand_over(
    tmp_path: Path, caplog: Any
) -> None:
    from crisiswatch.broker import EmbeddedBroker

    broker = EmbeddedBroker().start()
    try:
        settings = Settings(bootstrap_servers=broker.bootstrap_servers, topic_prefix="lost.", partitions=1)
        await ensure_topics(broker.bootstrap_servers, settings)
        options = SinkOptions(request_timeout_ms=2000, close_timeout_seconds=1.0)
        sink = MentionSink(settings, broker.bootstrap_servers, options)
        await sink.start()
        await sink.send_raw(b'{"id": "a"}', b"a")
        await asyncio.wait_for(sink.settled(), 30)
        broker.stop()
        for i in range(5):
            await sink.send_raw(b"{}", f"b{i}".encode())
        sink.release_waiters()  # what run_connectors does when connectors do not stop in time
        await sink.flush()  # returns: nothing waits forever
        await sink.close()
    finally:
        broker.stop()
    assert sink.lost == 5
    assert "5 records NOT handed over" in caplog.text


def test_spool_segments_roll_and_are_deleted_once_delivered(tmp_path: Path) -> None:
    now = time.time()
    spool = Spool(tmp_path, max_bytes=1 << 20, max_age=60, segment_bytes=200)
    for i in range(10):
        spool.append([(f"k{i}".encode(), b"x" * 50, now)])
    assert len(list(tmp_path.glob("seg-*.spool"))) > 3
    seen: list[bytes | None] = []
    while len(spool):
        records, end = spool.read(None, 3, 1 << 20)
        seen += [r[0] for r in records]
        spool.release(end, len(records))
        reopened = Spool(tmp_path, max_bytes=1 << 20, max_age=60, segment_bytes=200)
        assert len(reopened) == len(spool), "the head survives a restart"
    assert seen == [f"k{i}".encode() for i in range(10)]
    assert not list(tmp_path.glob("seg-*.spool"))


async def test_a_full_spool_blocks_sends_until_the_broker_is_back_then_everything_arrives(
    tmp_path: Path, caplog: Any
) -> None:
    from prometheus_client import REGISTRY

    from crisiswatch.broker import EmbeddedBroker, free_port

    port = free_port()
    broker = EmbeddedBroker(port=port).start()
    try:
        settings = Settings(bootstrap_servers=broker.bootstrap_servers, topic_prefix="full.", partitions=2)
        await ensure_topics(broker.bootstrap_servers, settings)
        options = SinkOptions(
            spool_dir=tmp_path / "spool", spool_max_bytes=4096, spill_after_seconds=0.5, request_timeout_ms=2000
        )
        async with MentionSink(settings, broker.bootstrap_servers, options) as sink:
            await sink.send_raw(b'{"id": "up"}', b"up")
            await asyncio.wait_for(sink.settled(), 30)
            broker.stop()
            keys = ["up"]
            while sink.has_room():
                keys.append(f"k{len(keys)}")
                await sink.send_raw(json.dumps({"id": keys[-1], "pad": "x" * 60}).encode(), keys[-1].encode())
                await asyncio.wait_for(sink.flush(), 30)  # secured: in the spool
            assert sink.spool is not None and len(sink.spool) > 10
            blocked = asyncio.create_task(sink.send_raw(b'{"id": "last"}', b"last"))
            done, _ = await asyncio.wait({blocked}, timeout=1.0)
            assert not done, "a send blocks while the spool is full (backpressure)"
            assert REGISTRY.get_sample_value("crisiswatch_connector_spool_full") == 1
            assert "is full" in caplog.text
            broker = EmbeddedBroker(port=port).start()  # back, empty
            await asyncio.wait_for(blocked, 60)
            await asyncio.wait_for(sink.settled(), 60)
            assert REGISTRY.get_sample_value("crisiswatch_connector_spool_full") == 0
        records = await read_all(broker.bootstrap_servers, settings.topic(MENTIONS_RAW.name), timeout=1.0)
    finally:
        broker.stop()
    assert {r.key.decode() for r in records} == set(keys[1:]) | {"last"}

"""Poison records on the real broker: none of them crashes or stalls a stage, each one lands in the DLQ with
its reason, and the good records around it flow (issue 9, findings 1 and 2).

The worker runs as a separate process (``crisiswatch worker``), as in production; the window stage's
far-future check runs the stage in this process, on its own topics.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from conftest import read_all

from crisiswatch import demo
from crisiswatch.broker import free_port
from crisiswatch.connectors.sink import MentionSink
from crisiswatch.contracts.records import DeadLetter, EnrichedMention, Signal
from crisiswatch.contracts.topics import MENTIONS_DLQ, MENTIONS_ENRICHED, SIGNALS
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.kafka import ensure_topics
from crisiswatch.runner import drained, run_pipeline, start_worker, stop_process
from crisiswatch.settings import Settings
from crisiswatch.stream.dead_letters import RejectedRecord, dead_letter, decode_mention
from crisiswatch.stream.window_stage import WindowStage

MAX_RECORD_BYTES = 256 * 1024  # the default of CRISISWATCH_MAX_RECORD_BYTES


def _good(i: int, created: datetime) -> dict[str, Any]:
    return {"id": f"good:{i}", "source": "forum", "text": f"Acme review number {i}", "created_at": created.isoformat()}


def poison_of_every_kind(now: datetime) -> dict[str, tuple[bytes, str]]:
    """name -> (raw value, the reason it must be dead-lettered for)."""
    base = {"id": "p", "source": "forum", "text": "acme is down", "created_at": (now - timedelta(hours=1)).isoformat()}

    def rec(**fields: Any) -> bytes:
        return json.dumps({**base, **fields}).encode()

    good = rec()
    nested = b'{"id": "p", "source": "x", "text": "t", "created_at": "2026-03-02T07:00:00Z", "x": '
    return {
        "empty": (b"", "empty"),
        "oversized_record": (rec(text="a" * 600_000), "oversized"),  # and its dead letter must be truncated
        "invalid_utf8": (good[:-1] + b', "x": "\xc3\x28"}', "invalid_utf8"),
        "unparseable_json": (b'{"id": "p", "text": "no closing brace"', "invalid_json"),
        "byte_order_mark": (b"\xef\xbb\xbf" + good, "invalid_json"),
        "raw_null_byte": (good.replace(b"acme is down", b"acme\x00down"), "invalid_json"),
        "lone_surrogate": (good.replace(b"acme is down", b"acme \\ud800 down"), "invalid_json"),
        "deeply_nested": (nested + b"[" * 20_000 + b"]" * 20_000 + b"}", "invalid_json"),
        "number_too_long": (good[:-1] + b', "metrics": {"reach": ' + b"7" * 5000 + b"}}", "invalid_json"),
        "not_an_object": (b"[1, 2, 3]", "invalid_record"),
        "json_null": (b"null", "invalid_record"),
        "wrong_types": (rec(text=5, source=["forum"]), "invalid_record"),
        "missing_fields": (b'{"id": "p"}', "invalid_record"),
        "empty_id": (rec(id=""), "invalid_record"),
        "too_long_id": (rec(id="x" * 600), "invalid_record"),
        "too_long_text": (rec(text="acme " * 12_000), "invalid_record"),
        "escaped_nul": (rec(text="acme\u0000down"), "invalid_record"),
        "huge_reach": (rec(metrics={"reach": 10**400}), "invalid_record"),
        "reach_past_int64": (rec(metrics={"reach": 2**63}), "invalid_record"),
        "huge_followers": (rec(author={"followers": 10**30}), "invalid_record"),
        "negative_count": (rec(metrics={"likes": -1}), "invalid_record"),
        "float_overflow": (good[:-1] + b', "metrics": {"shares": 1e400}}', "invalid_record"),
        "nan_literal": (rec(metrics={"likes": float("nan")}), "invalid_record"),
        "infinity_literal": (rec(metrics={"shares": float("inf")}), "invalid_record"),
        "year_one_east_of_utc": (rec(created_at="0001-01-01T00:00:00+14:00"), "bad_timestamp"),
        "year_9999_west_of_utc": (rec(created_at="9999-12-31T23:59:59-14:00"), "bad_timestamp"),
        "naive_timestamp": (rec(created_at="2026-03-02T10:00:00"), "bad_timestamp"),
        "not_a_timestamp": (rec(created_at="tuesday"), "bad_timestamp"),
        "bad_fetched_at": (rec(fetched_at="0001-01-01T00:00:00+14:00"), "bad_timestamp"),
        "far_future": (rec(created_at=(now + timedelta(days=3650)).isoformat()), "future_timestamp"),
        "minutes_ahead": (rec(created_at=(now + timedelta(minutes=30)).isoformat()), "future_timestamp"),
        "decades_old": (rec(created_at="1971-01-01T00:00:00Z"), "stale_timestamp"),
    }


POISON_NAMES = sorted(poison_of_every_kind(datetime(2026, 3, 2, tzinfo=UTC)))


@pytest.mark.parametrize("name", POISON_NAMES)
def test_each_kind_of_poison_is_rejected_with_its_reason_and_dead_letters_under_the_limit(name: str) -> None:
    now = utcnow()
    value, reason = poison_of_every_kind(now)[name]
    with pytest.raises(RejectedRecord) as info:  # RejectedRecord and nothing else: no crash
        decode_mention(value, MAX_RECORD_BYTES, now)
    assert info.value.reason == reason, info.value.detail
    letter = dead_letter(reason=reason, detail=info.value.detail, stage="enrich", topic="mentions.raw", partition=0,
                         offset=9, value=value, key=name.encode(), max_bytes=512 * 1024)  # fmt: skip
    assert len(letter) <= 512 * 1024
    record = DeadLetter.model_validate_json(letter)
    assert record.reason == reason and record.original_size == len(value)
    kept = base64.b64decode(record.original_b64)
    assert kept == value[: len(kept)] and (record.truncated or kept == value)


# --- on the real broker, with a worker process ----------------------------------------------------------
@pytest.fixture
def worker_env(settings: Settings, tmp_path: Path) -> Iterator[dict[str, str]]:
    brands = tmp_path / "brands.yaml"
    brands.write_text(demo.BRANDS_YAML, encoding="utf-8")
    yield {
        "CRISISWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "CRISISWATCH_APP_ID": settings.kafka.app_id,
        "CRISISWATCH_PARTITIONS": str(settings.kafka.partitions),
        "CRISISWATCH_BRANDS_FILE": str(brands),
        "CRISISWATCH_IDLE_FLUSH_SECONDS": "2",
        "CRISISWATCH_WEB_PORT": str(free_port()),
    }


async def dead_letters(settings: Settings) -> list[DeadLetter]:
    assert settings.kafka.bootstrap_servers
    records = await read_all(settings.kafka.bootstrap_servers, settings.topic(MENTIONS_DLQ.name), 0.5)
    return [DeadLetter.model_validate_json(r.value) for r in records]


async def enriched_ids(settings: Settings) -> set[str]:
    assert settings.kafka.bootstrap_servers
    records = await read_all(settings.kafka.bootstrap_servers, settings.topic(MENTIONS_ENRICHED.name), 0.5)
    return {EnrichedMention.model_validate_json(r.value).id for r in records}


async def run_worker_until(settings: Settings, env: dict[str, str], log: Path, done: Any, timeout: float) -> None:
    """Run a worker until ``await done()`` and every stage has committed its input; the worker must not exit."""
    assert settings.kafka.bootstrap_servers
    worker = start_worker(settings, settings.kafka.bootstrap_servers, env, log)
    try:
        deadline = time.monotonic() + timeout
        while not (await done() and await drained(settings, settings.kafka.bootstrap_servers)):
            assert worker.poll() is None, f"the worker exited ({worker.returncode}):\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"timed out:\n{log.read_text()[-3000:]}"
            await asyncio.sleep(0.5)
        assert worker.poll() is None, "the worker must survive poison records"
    finally:
        stop_process(worker)


async def test_finding_1_a_timestamp_that_overflows_utc_does_not_stop_the_pipeline(
    settings: Settings, worker_env: dict[str, str], tmp_path: Path
) -> None:
    """``0001-01-01T00:00:00+14:00`` raised OverflowError in the UTC conversion: the enrich stage crashed on
    every restart and none of the 40 mentions around it was processed."""
    assert settings.kafka.bootstrap_servers
    await ensure_topics(settings.kafka.bootstrap_servers, settings)
    start = utcnow() - timedelta(minutes=30)
    poison = json.dumps(
        {"id": "poison:1", "source": "forum", "text": "Acme", "created_at": "0001-01-01T00:00:00+14:00"}
    ).encode()
    async with MentionSink(settings, settings.kafka.bootstrap_servers) as sink:
        for i in range(40):
            await sink.send_raw(json.dumps(_good(i, start + timedelta(seconds=i))).encode(), f"good:{i}".encode())
            if i == 19:
                await sink.send_raw(poison, b"poison:1")
    want = {f"good:{i}" for i in range(40)}

    async def done() -> bool:
        return await enriched_ids(settings) >= want and bool(await dead_letters(settings))

    await run_worker_until(settings, worker_env, tmp_path / "worker.log", done, 120)
    assert await enriched_ids(settings) == want
    [letter] = await dead_letters(settings)
    assert (letter.reason, letter.stage) == ("bad_timestamp", "enrich")
    assert base64.b64decode(letter.original_b64) == poison and "UTC" in letter.error


async def test_poison_of_every_kind_lands_in_the_dlq_while_the_good_records_flow(
    settings: Settings, worker_env: dict[str, str], tmp_path: Path
) -> None:
    assert settings.kafka.bootstrap_servers
    await ensure_topics(settings.kafka.bootstrap_servers, settings)
    now = utcnow()
    poison = poison_of_every_kind(now)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await producer.start()
    try:  # a signal nobody can read: the risk stage dead-letters it and goes on
        await producer.send_and_wait(settings.topic(SIGNALS.name), b'{"brand": 5, "mentions": "many"}', key=b"acme")
    finally:
        await producer.stop()
    start = now - timedelta(minutes=30)
    good = 3 * len(poison)
    async with MentionSink(settings, settings.kafka.bootstrap_servers) as sink:
        names = iter(poison)
        for i in range(good):
            await sink.send_raw(json.dumps(_good(i, start + timedelta(seconds=i))).encode(), f"good:{i}".encode())
            if i % 3 == 1:
                name = next(names)
                await sink.send_raw(poison[name][0], f"poison:{name}".encode())
    want = {f"good:{i}" for i in range(good)}

    async def done() -> bool:
        return await enriched_ids(settings) >= want and len(await dead_letters(settings)) >= len(poison) + 1

    await run_worker_until(settings, worker_env, tmp_path / "worker.log", done, 180)
    assert await enriched_ids(settings) == want
    letters = await dead_letters(settings)
    signal_letters = [d for d in letters if d.stage == "risk"]
    assert [(d.reason, d.topic) for d in signal_letters] == [("invalid_signal", settings.topic(SIGNALS.name))]
    by_name = {base64.b64decode(d.original_key_b64 or "").decode().removeprefix("poison:"): d for d in letters
               if d.stage == "enrich"}  # fmt: skip
    assert len(by_name) == len(letters) - 1 == len(poison), "one dead letter per poison record"
    assert {name: d.reason for name, d in by_name.items()} == {name: reason for name, (_, reason) in poison.items()}
    big = by_name["oversized_record"]
    assert big.truncated and big.original_size == len(poison["oversized_record"][0])
    assert len(big.model_dump_json()) <= 512 * 1024


# --- finding 2: numbers too large for a float ----------------------------------------------------------
async def test_finding_2_crafted_huge_reach_does_not_switch_detection_off(
    kafka_bootstrap: str, settings: Settings, worker_env: dict[str, str], tmp_path: Path
) -> None:
    """45 mentions with a reach of 10^400 inside the demo crisis made the risk stage raise OverflowError for
    every window holding one: 0 alerts. Now they are dead-lettered and the crisis alerts."""
    data, _ = demo.write_demo(tmp_path)
    crisis_brand, crisis_start, crisis_length = demo.CRISIS
    lines = data.read_bytes().splitlines()
    out: list[bytes] = []
    crafted = 0
    for line in lines:
        out.append(line)
        if line in demo.POISON:
            continue
        item = json.loads(line)
        at = datetime.fromisoformat(item["created_at"].replace("Z", "+00:00"))
        in_crisis = crisis_start <= at < crisis_start + crisis_length
        if crafted < 45 and in_crisis and crisis_brand in item["text"].lower():
            crafted += 1
            item = {**item, "id": f"crafted:{crafted}", "metrics": {"reach": 10**400, "shares": 10**400}}
            out.append(json.dumps(item).encode())
    assert crafted == 45
    data.write_bytes(b"\n".join(out) + b"\n")
    report = await run_pipeline(
        settings, kafka_bootstrap, data, speed=0, until_idle=True, emit=lambda _: None,
        env_extra=worker_env, log_path=tmp_path / "worker.log", idle_timeout=150,
    )  # fmt: skip
    critical = [a for a in report.alerts if a["brand"] == crisis_brand and a["severity"] == "critical"]
    assert critical, f"no critical alert for the crisis: {report.alerts}"
    first = datetime.fromisoformat(critical[0]["event_time"].replace("Z", "+00:00"))
    assert first - crisis_start <= timedelta(minutes=15), f"crisis detected late: {first}"
    letters = await dead_letters(settings)
    crafted_letters = [d for d in letters if b"crafted:" in base64.b64decode(d.original_b64)]
    assert len(crafted_letters) == 45 and {d.reason for d in crafted_letters} == {"invalid_record"}
    assert len(letters) == 45 + len(demo.POISON)


# --- the window stage: a far-future event time is a poison too ------------------------------------------
async def test_a_far_future_enriched_mention_does_not_make_every_later_mention_too_late(settings: Settings) -> None:
    """A ``mentions.enriched`` record dated 2099 would drag the watermark to 2099: every later mention too late,
    no window ever counted again. The window stage dead-letters it (``future_timestamp``) instead."""
    s = settings.model_copy(update={"partitions": 1, "allowed_lateness_seconds": 0, "idle_flush_seconds": 60})
    assert s.kafka.bootstrap_servers
    await ensure_topics(s.kafka.bootstrap_servers, s)
    start = (utcnow() - timedelta(hours=2)).replace(second=0, microsecond=0)

    def enriched(i: str, at: datetime) -> bytes:
        return json.dumps({
            "id": i, "source": "forum", "text": f"acme {i}", "lang": "en", "sentiment": "neutral",
            "created_at": at.isoformat(), "brand": "acme", "reach_estimate": 1,
        }).encode()  # fmt: skip

    headers = [("raw-partition", b"0")]
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers)
    await producer.start()
    try:
        topic = s.topic(MENTIONS_ENRICHED.name)
        future = enriched("future", datetime(2099, 1, 1, tzinfo=UTC))
        await producer.send_and_wait(topic, future, key=b"acme", headers=headers)
        for i in range(30):  # five minutes of acme, two hours ago: the first four windows close by watermark
            at = start + timedelta(seconds=i * 10)
            await producer.send_and_wait(topic, enriched(f"m:{i}", at), key=b"acme", headers=headers)
    finally:
        await producer.stop()
    stage = WindowStage(s, s.kafka.bootstrap_servers)
    await stage.start()
    try:
        deadline = time.monotonic() + 30
        while stage.records_processed < 31:
            assert time.monotonic() < deadline, "the window stage did not read its input"
            await asyncio.sleep(0.25)
        await stage.flush()
    finally:
        await stage.stop()
    records = await read_all(s.kafka.bootstrap_servers, s.topic(SIGNALS.name))
    signals = [Signal.model_validate_json(r.value) for r in records]
    counted = sum(x.mentions for x in signals if x.brand == "acme")
    assert counted == 24, f"the first four windows hold 24 mentions; counted {counted}"
    [letter] = await dead_letters(s)
    assert (letter.reason, letter.stage) == ("future_timestamp", "window")
    assert base64.b64decode(letter.original_b64) == future

"""The window stage on the real broker: silence is only silence when nothing is still on its way."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from crisiswatch.contracts.records import Signal
from crisiswatch.contracts.topics import MENTIONS_ENRICHED, MENTIONS_RAW, SIGNALS
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings
from crisiswatch.stream.window_stage import WindowStage


async def signals_of(settings: Settings, brand: str) -> list[Signal]:
    consumer = AIOKafkaConsumer(
        settings.topic(SIGNALS.name), bootstrap_servers=settings.kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=500)
        found = [Signal.model_validate_json(r.value) for part in batches.values() for r in part]
        return [s for s in found if s.brand == brand and s.mentions]
    finally:
        await consumer.stop()


async def until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.25)


async def test_idle_flush_waits_while_the_enrich_stage_has_a_backlog(settings: Settings) -> None:
    s = settings.model_copy(update={"idle_flush_seconds": 0.5, "allowed_lateness_seconds": 0})
    await ensure_topics(s.kafka.bootstrap_servers, s)
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers)
    await producer.start()
    try:
        for i in range(12):  # what the enrich stage wrote: one window of acme, two hours ago
            mention = {
                "id": f"t:{i}", "source": "forum", "text": f"acme {i}", "lang": "en", "sentiment": "neutral",
                "created_at": (start + timedelta(seconds=i * 4)).isoformat(), "brand": "acme", "reach_estimate": 1,
            }  # fmt: skip
            await producer.send_and_wait(s.topic(MENTIONS_ENRICHED.name), json.dumps(mention).encode(), key=b"acme")
        for i in range(3):  # and what it has not handled yet: a backlog in mentions.raw
            await producer.send_and_wait(s.topic(MENTIONS_RAW.name), b"{}", key=f"later:{i}".encode())
    finally:
        await producer.stop()

    stage = WindowStage(s, s.kafka.bootstrap_servers)
    await stage.start()
    try:
        await until(lambda: asyncio.sleep(0, stage.records_processed >= 12), 30, "the window stage to read")
        await asyncio.sleep(3.0)  # six idle periods: without the backlog, the window would have closed
        assert await signals_of(s, "acme") == [], "a window closed while mentions were still on their way"
        # Going idle checkpointed the open window, and only that checkpoint committed the input.
        assert stage.checkpointed == stage.applied and stage.applied
        enriched = [TopicPartition(s.topic(MENTIONS_ENRICHED.name), p) for p in range(s.kafka.partitions)]
        committed = {tp: await stage.consumer.committed(tp) for tp in enriched}  # type: ignore[union-attr]
        assert {tp.partition: offset - 1 for tp, offset in committed.items() if offset} == stage.checkpointed

        # The enrich stage catches up: its group commits the end of mentions.raw.
        enrich = AIOKafkaConsumer(bootstrap_servers=s.kafka.bootstrap_servers, group_id=f"{s.kafka.app_id}-enrich")
        await enrich.start()
        try:
            raw = [TopicPartition(s.topic(MENTIONS_RAW.name), p) for p in range(s.kafka.partitions)]
            enrich.assign(raw)
            ends = await enrich.end_offsets(raw)
            await enrich.commit({tp: ends[tp] for tp in raw})
        finally:
            await enrich.stop()

        async def closed() -> bool:
            return bool(await signals_of(s, "acme"))

        await until(closed, 15, "the idle window to close")
        (signal,) = await signals_of(s, "acme")
        assert signal.window_start == start and signal.mentions == 12
    finally:
        await stage.stop()

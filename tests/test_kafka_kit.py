"""The Kafka kit (issue 11, move 3): client factories, `read_to_end` and `TopicFollower` on a real broker."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

import pytest
from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient

from crisiswatch.contracts.topics import ALERTS, ALERTS_ACK, MENTIONS_DLQ
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.follow import TopicFollower, read_to_end, topic_partitions
from crisiswatch.kafka import PRODUCER_DEFAULTS, ensure_topics, new_admin, new_consumer, new_producer
from crisiswatch.settings import Settings


async def write(settings: Settings, topic: str, values: list[tuple[int, bytes]]) -> None:
    """Write ``(partition, value)`` records, in order."""
    producer = new_producer(settings=settings, linger_ms=0)
    await producer.start()
    try:
        for partition, value in values:
            await producer.send_and_wait(topic, value, key=value, partition=partition)
    finally:
        await producer.stop()


async def test_factories_apply_defaults_then_the_overrides_of_the_site() -> None:
    """(Read back from aiokafka's attributes: the factories are the only place that builds clients.)"""
    settings = Settings(bootstrap_servers="broker:9092")
    producer = new_producer(settings=settings, linger_ms=0, client_id="crisiswatch-x")
    assert producer.client._client_id == "crisiswatch-x" and producer.client._bootstrap_servers == "broker:9092"
    assert PRODUCER_DEFAULTS["acks"] == "all" and PRODUCER_DEFAULTS["enable_idempotence"] is False
    consumer = new_consumer("a", bootstrap_servers="other:9092", settings=settings, group_id="g")
    assert consumer._enable_auto_commit is False and consumer._group_id == "g"
    assert consumer._client._bootstrap_servers == "other:9092"
    admin = new_admin(settings=settings, request_timeout_ms=1234)
    assert admin._client._request_timeout_ms == 1234


async def test_read_to_end_reads_what_was_there_and_returns(settings: Settings) -> None:
    await ensure_topics(settings.kafka.bootstrap_servers or "", settings)
    topic = settings.topic(MENTIONS_DLQ.name)  # settings.kafka.partitions (2) partitions
    await write(settings, topic, [(0, b"a0"), (1, b"b0"), (0, b"a1"), (1, b"b1"), (0, b"a2")])
    seen: list[ConsumerRecord] = []
    ends = await read_to_end(settings, topic, seen.append, timeout=30)
    assert sorted(r.value for r in seen) == [b"a0", b"a1", b"a2", b"b0", b"b1"]
    assert sorted(ends.values()) == [2, 3]

    last: list[bytes] = []
    await read_to_end(settings, topic, lambda r: last.append(r.value), partitions=[0], tail=2, timeout=30)
    assert last == [b"a1", b"a2"]

    since: list[bytes] = []
    await read_to_end(settings, topic, lambda r: since.append(r.value), since=utcnow() - timedelta(hours=1))
    assert sorted(since) == [b"a0", b"a1", b"a2", b"b0", b"b1"]


async def test_read_to_end_of_a_missing_topic_reads_nothing_and_creates_nothing(settings: Settings) -> None:
    topic = settings.topic("no.such.topic")
    assert await read_to_end(settings, topic, lambda r: None, timeout=30) == {}
    admin = new_admin(settings=settings)
    await admin.start()
    try:
        assert await topic_partitions(admin, topic) == []
        assert topic not in await admin.list_topics()
    finally:
        await admin.close()


async def test_a_follower_of_two_topics_sees_history_then_live_records(settings: Settings) -> None:
    await ensure_topics(settings.kafka.bootstrap_servers or "", settings)
    alerts, acks = settings.topic(ALERTS.name), settings.topic(ALERTS_ACK.name)
    await write(settings, alerts, [(0, b"old-alert")])
    await write(settings, acks, [(0, b"old-ack")])
    seen: list[tuple[str, bytes, bool]] = []
    follower = TopicFollower(
        settings.kafka.bootstrap_servers,
        (alerts, acks),
        lambda r, live: seen.append((r.topic, r.value, live)),
        name="kit-test",
        settings=settings,
        component="test",
    )
    await follower.start()
    try:
        assert await follower.wait_caught_up(30)
        assert set(seen) == {(acks, b"old-ack", False), (alerts, b"old-alert", False)}
        assert follower.caught_up_event.is_set() and follower.view_age() is not None
        await write(settings, alerts, [(0, b"new-alert")])
        deadline = time.monotonic() + 30
        while (alerts, b"new-alert", True) not in seen and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert (alerts, b"new-alert", True) in seen
    finally:
        await follower.stop()


async def test_a_follower_can_start_from_the_last_records(settings: Settings) -> None:
    await ensure_topics(settings.kafka.bootstrap_servers or "", settings)
    topic = settings.topic(ALERTS.name)
    await write(settings, topic, [(0, b"1"), (0, b"2"), (0, b"3"), (1, b"x")])
    seen: list[bytes] = []
    follower = TopicFollower(
        settings.kafka.bootstrap_servers,
        topic,
        lambda r, live: seen.append(r.value),
        settings=settings,
        tail=lambda tp: 1,
    )
    await follower.start()
    try:
        assert await follower.wait_caught_up(30)
        assert sorted(seen) == [b"3", b"x"]
    finally:
        await follower.stop()


async def test_a_follower_cancelled_while_its_admin_client_closes_stops(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiokafka's clients await their own tasks under ``suppress(CancelledError)`` when they close, which also
    swallows a cancellation of the task closing them (the page test hung on it): the follower still stops."""
    await ensure_topics(settings.kafka.bootstrap_servers or "", settings)
    closing = asyncio.Event()
    close = AIOKafkaAdminClient.close

    async def slow_close(self: AIOKafkaAdminClient) -> None:  # aiokafka's own pattern, made slow enough to hit
        closing.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.5)
        await close(self)

    monkeypatch.setattr(AIOKafkaAdminClient, "close", slow_close)
    follower = TopicFollower(
        settings.kafka.bootstrap_servers, settings.topic(ALERTS.name), lambda r, live: None, settings=settings
    )
    await follower.start()
    await asyncio.wait_for(closing.wait(), 30)
    stopping = asyncio.ensure_future(follower.stop())
    done, _ = await asyncio.wait({stopping}, timeout=20)  # (a cancelled wait_for would hide a swallowed stop)
    assert stopping in done, "the follower went on reading after it was cancelled"

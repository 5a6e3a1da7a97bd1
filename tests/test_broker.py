"""The embedded broker launcher against real Kafka clients."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from crisiswatch.broker import EmbeddedBroker
from crisiswatch.contracts.topics import ALL_TOPICS
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings


async def test_produce_and_consume_round_trip(kafka_bootstrap: str, settings: Settings) -> None:
    created = await ensure_topics(kafka_bootstrap, settings)
    assert set(created) == {settings.topic(spec.name) for spec in ALL_TOPICS}
    assert await ensure_topics(kafka_bootstrap, settings) == []  # idempotent

    topic = settings.topic("mentions.raw")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=5000)
        values = [m.value for msgs in batches.values() for m in msgs]
    finally:
        await consumer.stop()
    assert values == [b"hello"]


def test_embedded_broker_starts_and_stops() -> None:
    broker = EmbeddedBroker()
    with broker:
        assert broker.running
        host, port = broker.bootstrap_servers.split(":")
        assert host == "127.0.0.1" and int(port) > 0
    assert not broker.running

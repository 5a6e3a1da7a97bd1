"""Helpers for testing code that uses the control plane (crisiswatch's tests and publishing services').

Nothing here is used in production paths.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from crisiswatch.control.follower import topic_partitions
from crisiswatch.control.keys import KeyPair, key_pair_text
from crisiswatch.kafka import client_options
from crisiswatch.settings import Settings


def fixed_key_pair(kid: str, label: str = "") -> KeyPair:
    """A deterministic Ed25519 key pair for tests (derived from ``kid`` and ``label``; never for production)."""
    seed = hashlib.sha256(f"crisiswatch test key {kid} {label}".encode()).digest()
    return key_pair_text(kid, Ed25519PrivateKey.from_private_bytes(seed))


TEST_PAIR = fixed_key_pair("test1")
TEST_KEYS = TEST_PAIR.private
"""``CRISISWATCH_CONTROL_KEYS`` of test writers (an Ed25519 private key)."""
TEST_PUBLIC_KEYS = TEST_PAIR.public
"""``CRISISWATCH_CONTROL_PUBLIC_KEYS`` of test gates."""


def with_test_keys(settings: Settings, keys: str = TEST_KEYS, **overrides: object) -> Settings:
    """A copy of ``settings`` with control keys (a writer's private key, by default) and any other overrides."""
    return settings.model_copy(update={"control_keys": SecretStr(keys), **overrides})


def with_public_keys(settings: Settings, public: str = TEST_PUBLIC_KEYS, **overrides: object) -> Settings:
    """A copy of ``settings`` that holds only public keys (what a publishing service's gate gets)."""
    return settings.model_copy(update={"control_keys": None, "control_public_keys": public, **overrides})


async def wait_for(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it is truthy; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return bool(predicate())


async def read_records(
    bootstrap_servers: str, topic: str, timeout: float = 5.0, *, settings: Settings | None = None
) -> list[ConsumerRecord]:
    """Every record of ``topic`` from the beginning to the current end (partition by partition)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False, **client_options(settings)
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in tps]
            if all(position >= ends[tp] for position, tp in zip(positions, tps, strict=True)):
                break
            batch = await consumer.getmany(timeout_ms=200)
            for tp in tps:
                records.extend(batch.get(tp, ()))
        return records
    finally:
        await consumer.stop()


async def produce(
    bootstrap_servers: str, topic: str, key: bytes | None, value: bytes | None, *, settings: Settings | None = None
) -> None:
    """Write one raw record (e.g. a forged control message) to ``topic``."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, enable_idempotence=False, acks="all", **client_options(settings)
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()

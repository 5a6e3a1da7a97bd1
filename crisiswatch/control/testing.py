"""Helpers for testing code that uses the control plane (crisiswatch's tests and publishing services').

Nothing here is used in production paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable

from aiokafka import ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from crisiswatch.control.keys import KeyPair, key_pair_text
from crisiswatch.follow import read_to_end
from crisiswatch.kafka import new_producer
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
    """Every record of ``topic`` from the beginning to the current end (partition by partition).

    After ``timeout`` seconds, the records read so far.
    """
    by_partition: dict[int, list[ConsumerRecord]] = {}

    def keep(record: ConsumerRecord) -> None:
        by_partition.setdefault(record.partition, []).append(record)

    with contextlib.suppress(TimeoutError):
        await read_to_end(settings, topic, keep, bootstrap_servers=bootstrap_servers, timeout=timeout, poll_ms=200)
    return [record for partition in sorted(by_partition) for record in by_partition[partition]]


async def produce(
    bootstrap_servers: str, topic: str, key: bytes | None, value: bytes | None, *, settings: Settings | None = None
) -> None:
    """Write one raw record (e.g. a forged control message) to ``topic``."""
    producer = new_producer(bootstrap_servers, settings=settings, linger_ms=0)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()

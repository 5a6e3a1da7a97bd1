"""Shared fixtures: one real Kafka-protocol broker for the whole session.

The broker comes from the same launcher the product uses (`crisiswatch.broker.broker_for`): the
embedded Tansu broker, or the cluster named by ``KAFKA_BOOTSTRAP_SERVERS`` when that is set. Each test
gets its own topic prefix and application id so that tests never see each other's records.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from crisiswatch import demo
from crisiswatch.broker import broker_for, free_port
from crisiswatch.control.keys import generate_key_pair
from crisiswatch.settings import Settings

SHARED_DATA = Path(os.environ.get("CRISISWATCH_SHARED_DATA", Path(__file__).resolve().parents[1] / "../shared/data"))


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real broker, started once per test session."""
    with broker_for(Settings()) as servers:
        yield servers


@pytest.fixture
def settings(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    """Settings bound to the session broker, with topics and group ids private to this test."""
    tag = uuid.uuid4().hex[:8]
    return Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{tag}.",
        app_id=f"crisiswatch-test-{tag}",
        partitions=2,
    )


def worker_env(settings: Settings, brands: Path) -> dict[str, str]:
    """The environment of a ``crisiswatch worker`` process bound to ``settings`` (also set in this process)."""
    env = {
        "CRISISWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "CRISISWATCH_APP_ID": settings.kafka.app_id,
        "CRISISWATCH_PARTITIONS": str(settings.kafka.partitions),
        "CRISISWATCH_BRANDS_FILE": str(brands),
        "CRISISWATCH_IDLE_FLUSH_SECONDS": "2",
        "CRISISWATCH_WEB_PORT": str(free_port()),
        "CRISISWATCH_CONTROL_KEYS": generate_key_pair("test").private,  # Ed25519: the worker signs
    }
    os.environ.update(env)  # the watcher in this process verifies signatures with the same key
    return env


@pytest.fixture
def pipeline_settings(settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, dict[str, str], Path]]:
    """Settings, worker environment and demo mention file for a test that runs the worker process."""
    data, brands = demo.write_demo(tmp_path)
    saved = dict(os.environ)  # before worker_env sets its variables here too
    env = worker_env(settings, brands)
    try:
        yield Settings(bootstrap_servers=settings.kafka.bootstrap_servers), env, data
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder; tests that need it are skipped with a clear message when absent."""
    path = SHARED_DATA.resolve()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set CRISISWATCH_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def example_publisher() -> ModuleType:
    """``examples/publisher.py`` (the publishing service that embeds the gate), imported as a module."""
    path = Path(__file__).resolve().parents[1] / "examples" / "publisher.py"
    spec = importlib.util.spec_from_file_location("example_publisher", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def read_all(bootstrap: str, topic: str, timeout: float = 3.0) -> list[Any]:
    """Every record of ``topic`` from the beginning, until nothing more comes for ``timeout`` seconds."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_bytes=16 << 20,
        max_partition_fetch_bytes=8 << 20,
    )  # fmt: skip
    await consumer.start()
    out = []
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=int(timeout * 1000), max_records=10_000)
            if not batches:
                return out
            out.extend(r for records in batches.values() for r in records)
    finally:
        await consumer.stop()

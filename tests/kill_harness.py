"""The SIGKILL harness of the platform tests: a real ``crisiswatch connect --sources`` subprocess, killed
mid-stream and started again, and a topic reader to wait on what it handed over.

Shared by tests/test_platforms_sigkill.py (every platform), test_platforms_streaming.py (Bluesky's cursor)
and test_platforms_polling.py (Hacker News' numeric filter).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from crisiswatch.settings import Settings


class TopicWatch:
    """A consumer that keeps reading one topic from the start (to wait on what a subprocess hands over)."""

    def __init__(self, bootstrap: str, topic: str):
        self.topic = topic
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
        self.records: list[ConsumerRecord] = []
        self.bootstrap = bootstrap

    async def __aenter__(self) -> TopicWatch:
        await self.consumer.start()
        partitions = self.consumer.partitions_for_topic(self.topic)
        if not partitions:
            await self.consumer.topics()  # fresh metadata
            partitions = self.consumer.partitions_for_topic(self.topic) or set()
        assert partitions, f"topic {self.topic} does not exist"
        self.partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.consumer.assign(self.partitions)
        await self.consumer.seek_to_beginning(*self.partitions)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def _read(self) -> None:
        batches = await self.consumer.getmany(timeout_ms=200)
        self.records.extend(r for records in batches.values() for r in records)

    async def until(self, condition: Callable[[list[ConsumerRecord]], bool], timeout: float = 60.0) -> None:
        """Read until ``condition(records so far)`` holds."""
        deadline = time.monotonic() + timeout
        while not condition(self.records):
            assert time.monotonic() < deadline, "timed out waiting for records"
            await self._read()

    async def until_end(self, timeout: float = 60.0) -> None:
        """Read everything the topic holds now: up to the end offsets of every partition, taken when called.
        Called after every writer has exited, a late duplicate is in ``records`` when this returns."""
        end = await self.consumer.end_offsets(self.partitions)
        deadline = time.monotonic() + timeout
        while any([await self.consumer.position(tp) < end[tp] for tp in self.partitions]):
            assert time.monotonic() < deadline, f"timed out reading {self.topic} to its end {end}"
            await self._read()

    def keys(self) -> list[str]:
        """The record keys (mention ids) in the order read, repeats included."""
        return [r.key.decode() for r in self.records if r.key]


def connect_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a ``crisiswatch connect`` subprocess on the test broker: fast generic backoff,
    checkpoints in Kafka only."""
    assert settings.kafka.bootstrap_servers
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "CRISISWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "CRISISWATCH_PARTITIONS": str(settings.kafka.partitions),
        "CRISISWATCH_CONNECTOR_BACKOFF_INITIAL_SECONDS": "0.05",
        "CRISISWATCH_CONNECTOR_BACKOFF_MAX_SECONDS": "0.2",
        **extra,
    }
    env.pop("CRISISWATCH_CONNECTOR_STATE_DIR", None)
    return env


async def start_connect(path: Path, only: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """``crisiswatch connect --sources PATH --only NAME`` as a subprocess; its log goes to ``NAME.log`` beside
    the sources file (a file, not a pipe nobody reads while it runs)."""
    with (path.parent / f"{only}.log").open("ab") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crisiswatch.cli", "connect", "--sources", str(path), "--only", only,
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log,
        )  # fmt: skip


async def kill(process: asyncio.subprocess.Process) -> None:
    """SIGKILL: no final checkpoint, no goodbye."""
    process.kill()
    await process.wait()


async def stop_cleanly(process: asyncio.subprocess.Process, path: Path, only: str) -> None:
    """SIGINT, and the process must exit 0 (its last checkpoint written, every send acknowledged)."""
    process.send_signal(signal.SIGINT)
    await asyncio.wait_for(process.wait(), 30)
    log = (path.parent / f"{only}.log").read_text(encoding="utf-8", errors="replace")
    assert process.returncode == 0, log[-4000:]

"""Shared helpers of the connector tests: local aiohttp servers, sinks, running a connector, reading back.

The platform tests (polling, streaming), the live connector tests and the sources-file test serve wire
formats from 127.0.0.1, run connectors into a real :class:`MentionSink` on the embedded broker, and read
``mentions.raw`` / ``connectors.checkpoints`` back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from conftest import read_all

from crisiswatch.connectors.sink import MentionSink
from crisiswatch.contracts.records import Mention
from crisiswatch.contracts.topics import CONNECTOR_CHECKPOINTS
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[TestServer]:
    """Serve ``app`` on 127.0.0.1 (a free port) until the block ends."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def kafka_sink(settings: Settings) -> AsyncIterator[MentionSink]:
    """A sink with checkpoints in the compacted Kafka topic, as ``crisiswatch connect`` runs it: a new sink
    reads them back, like a new process on another machine."""
    assert settings.kafka.bootstrap_servers
    await ensure_topics(settings.kafka.bootstrap_servers, settings)
    async with MentionSink(settings, settings.kafka.bootstrap_servers, checkpoints="kafka") as sink:
        yield sink


async def checkpoint_of(settings: Settings, key: str) -> dict[str, Any]:
    """The newest checkpoint record of ``key`` in ``connectors.checkpoints``."""
    assert settings.kafka.bootstrap_servers
    records = await read_all(settings.kafka.bootstrap_servers, settings.topic(CONNECTOR_CHECKPOINTS.name), timeout=1.0)
    values = [json.loads(r.value) for r in records if r.key == key.encode()]
    assert values, f"no checkpoint {key}"
    return values[-1]["state"]


async def wait_for(condition: Callable[[], bool], timeout: float, what: str | None = None) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}" if what else "timed out waiting"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(connector: Any, sink: MentionSink, timeout: float) -> AsyncIterator[asyncio.Event]:
    """The connector's own run loop until the block ends; then it must stop within ``timeout`` seconds."""
    stop = asyncio.Event()
    task = asyncio.create_task(connector.run(sink, stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout)


async def read_topic(
    bootstrap: str, topic: str, expect: int, timeout: float = 15.0, settle: float = 0.7
) -> list[ConsumerRecord]:
    """Records of ``topic`` from the start: stops at ``expect`` (then waits ``settle`` for extras, such as a
    duplicate) or at ``timeout``."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    out: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout
        while len(out) < expect and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            out.extend(r for records in batches.values() for r in records)
        batches = await consumer.getmany(timeout_ms=int(settle * 1000))
        out.extend(r for records in batches.values() for r in records)
    finally:
        await consumer.stop()
    return out


def split(records: list[Any]) -> tuple[dict[str, Mention], list[bytes]]:
    """Valid mentions by id (asserting each id arrives once, keyed by its id), and the raw values that are
    not mentions."""
    mentions: dict[str, Mention] = {}
    raw: list[bytes] = []
    for record in records:
        try:
            mention = Mention.model_validate_json(record.value)
        except ValueError:
            raw.append(record.value)
            continue
        assert record.key == mention.id.encode(), "mentions are keyed by id"
        assert mention.id not in mentions, f"{mention.id} arrived twice"
        mentions[mention.id] = mention
    return mentions, raw

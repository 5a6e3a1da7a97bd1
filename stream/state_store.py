"""Detector and window state changelogged to the compacted ``crisiswatch.state`` topic.

Faust's windowed tables are reported to stop expiring after rebalances and to lose windows across
restarts, and they cannot be updated from a batch. So the stages keep their per-brand state as plain
JSON documents and write them to one compacted topic, keyed ``<stage>:<name>``, in the same partition
as the input partition the state belongs to. On assignment a stage reads its partitions of that topic
back from the beginning (the latest value per key wins) before it consumes anything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from crisiswatch.kafka import client_options
from crisiswatch.settings import Settings


def state_key(stage: str, name: str) -> bytes:
    return f"{stage}:{name}".encode()


def encode_state(state: dict[str, Any]) -> bytes:
    return json.dumps(state, separators=(",", ":")).encode()


STALE_END_POLLS = 3
"""Empty polls (of 1 s) after which `read_states` asks again where the log ends."""


async def read_states(
    bootstrap_servers: str, topic: str, stage: str, partitions: Iterable[int], *, settings: Settings | None = None
) -> dict[int, dict[str, dict[str, Any]]]:
    """Latest state per key of ``stage`` in the given partitions: ``{partition: {name: state}}``.

    ``settings`` (default: the process-wide settings) gives the Kafka security options.
    """
    wanted = [TopicPartition(topic, p) for p in partitions]
    result: dict[int, dict[str, dict[str, Any]]] = {tp.partition: {} for tp in wanted}
    if not wanted:
        return result
    prefix = f"{stage}:".encode()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, **client_options(settings)
    )
    await consumer.start()
    try:
        consumer.assign(wanted)
        ends = await consumer.end_offsets(wanted)
        await consumer.seek_to_beginning(*wanted)
        remaining = {tp for tp in wanted if ends[tp] > 0}
        quiet = 0
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=10_000)
            quiet = 0 if batches else quiet + 1
            if quiet >= STALE_END_POLLS:  # nothing comes: the end we aim for may be gone (log truncated, re-created)
                fresh = await consumer.end_offsets(list(remaining))
                for tp in list(remaining):
                    ends[tp] = fresh[tp]
                    if await consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
                quiet = 0
            for tp, records in batches.items():
                for record in records:
                    if record.key and record.key.startswith(prefix):
                        name = record.key[len(prefix) :].decode()
                        if record.value is None:
                            result[tp.partition].pop(name, None)
                        else:
                            result[tp.partition][name] = json.loads(record.value)
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return result

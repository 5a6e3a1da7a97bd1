"""How far a consumer group is behind the end of a topic (committed offsets, not positions)."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def committed_lags(
    admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, group: str, topic: str, partitions: int
) -> dict[int, int]:
    """Per partition of ``topic`` (``0..partitions-1``): records that ``group`` has not committed yet."""
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    ends = await consumer.end_offsets(tps)
    committed = await admin.list_consumer_group_offsets(group, partitions=tps)
    lags = {}
    for tp in tps:
        meta = committed.get(tp)
        done = meta.offset if meta is not None and meta.offset >= 0 else 0
        lags[tp.partition] = max(0, ends[tp] - done)
    return lags


async def committed_lag(
    admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, group: str, topic: str, partitions: int
) -> int:
    """Records of ``topic`` (partitions ``0..partitions-1``) that ``group`` has not committed yet."""
    return sum((await committed_lags(admin, consumer, group, topic, partitions)).values())

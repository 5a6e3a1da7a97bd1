"""The enrich stage: ``mentions.raw`` → decode, de-duplicate, enrich → ``mentions.enriched`` (+ DLQ)."""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from crisiswatch.kafka import client_options
from crisiswatch.settings import Settings
from stream import metrics
from stream.batch_stage import BatchStage
from stream.brands_file import load_brands
from stream.dead_letters import RejectedRecord, dead_letter, decode_mention, reason_of
from stream.dedupe import SeenIds
from stream.enrichment import Enricher
from stream.records import Mention, utcnow
from stream.topics import MENTIONS_DLQ, MENTIONS_ENRICHED, MENTIONS_RAW

log = logging.getLogger(__name__)


async def rewarm_seen_ids(
    seen: SeenIds,
    bootstrap_servers: str,
    topic: str,
    partition_count: int,
    per_partition: int,
    *,
    settings: Settings | None = None,
) -> int:
    """Add the ids of the last ``per_partition`` records of each partition of ``topic`` to ``seen``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, **client_options(settings)
    )
    await consumer.start()
    learned = 0
    try:
        partitions = [TopicPartition(topic, p) for p in range(partition_count)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, max(0, ends[tp] - per_partition))
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=10_000)
            for tp, records in batches.items():
                for record in records:
                    for name, value in record.headers:
                        if name == "mention-id":
                            seen.first_time(value.decode())
                            learned += 1
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return learned


class EnrichStage(BatchStage):
    """Decode → de-duplicate by id → enrich in one vectorised pass → route by brand."""

    stage_name = "enrich"
    input_topic = MENTIONS_RAW.name

    async def on_start(self) -> None:
        self.enricher = Enricher(load_brands(self.settings.brands_file), self.settings.language_backend)
        self.seen = SeenIds(self.settings.dedupe_ttl_seconds, self.settings.dedupe_max_ids)
        await super().on_start()

    async def on_assigned(self, partitions: list[TopicPartition]) -> None:
        """Re-learn recently published ids, so records re-processed after a crash are not emitted twice."""
        count = await rewarm_seen_ids(
            self.seen,
            self.bootstrap_servers,
            self.settings.topic(MENTIONS_ENRICHED.name),
            self.settings.partitions,
            self.settings.dedupe_rewarm_records,
            settings=self.settings,
        )
        log.info("enrich stage: re-learned %d recent mention ids", count)

    async def reject(self, record: ConsumerRecord[bytes, bytes], reason: str, detail: str) -> None:
        metrics.DEAD_LETTERS.labels(reason).inc()
        log.warning("dead letter %s@%s/%s: %s: %s", record.topic, record.partition, record.offset, reason, detail)
        value = dead_letter(
            reason=reason,
            detail=detail,
            stage=self.stage_name,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            value=record.value,
            key=record.key,
        )
        await self.send(MENTIONS_DLQ.name, value, key=record.key)

    async def process(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        good: list[Mention] = []
        origins: list[ConsumerRecord[bytes, bytes]] = []
        origin: dict[str, tuple[bytes, bytes]] = {}  # mention id -> (raw timestamp ms, raw partition)
        duplicates = 0
        now = utcnow()
        for record in records:
            try:
                mention = decode_mention(record.value, self.settings.max_record_bytes, now)
            except RejectedRecord as exc:
                await self.reject(record, exc.reason, exc.detail)
                continue
            if not self.seen.first_time(mention.id):
                duplicates += 1
                continue
            good.append(mention)
            origins.append(record)
            origin[mention.id] = (str(record.timestamp).encode(), str(record.partition).encode())
        metrics.DUPLICATES.inc(duplicates)
        if not good:
            return
        try:
            enriched = self.enricher.enrich(good)
        except Exception:  # one poison text must not take the batch down: retry record by record
            log.exception("batch enrichment failed; retrying record by record")
            enriched = []
            for mention, record in zip(good, origins, strict=True):
                try:
                    enriched.extend(self.enricher.enrich([mention]))
                except Exception as exc:
                    await self.reject(record, *reason_of(exc))
        unmatched = 0
        for item in enriched:
            raw_ms, raw_partition = origin[item.id]
            headers = [
                ("mention-id", item.id.encode()),
                ("raw-timestamp-ms", raw_ms),
                ("raw-partition", raw_partition),
            ]
            if not item.brands:
                unmatched += 1
                await self.send(MENTIONS_ENRICHED.name, item.to_json(None), item.id.encode(), headers)
                continue
            for brand in item.brands:
                await self.send(MENTIONS_ENRICHED.name, item.to_json(brand), brand.encode(), headers)
        metrics.UNMATCHED.inc(unmatched)
        metrics.MENTIONS_OUT.inc(len(enriched))

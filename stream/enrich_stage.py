"""The enrich stage: ``mentions.raw`` → decode, de-duplicate, enrich → ``mentions.enriched`` (+ DLQ)."""

from __future__ import annotations

import logging
from datetime import timedelta

from aiokafka import ConsumerRecord, TopicPartition

from crisiswatch.brands_file import load_brands
from crisiswatch.contracts.records import Mention
from crisiswatch.contracts.topics import MENTIONS_ENRICHED, MENTIONS_RAW
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.detectors.seen import SeenIds
from crisiswatch.follow import read_to_end
from crisiswatch.settings import Settings
from crisiswatch.stream import metrics
from crisiswatch.stream.batch_stage import BatchStage
from crisiswatch.stream.dead_letters import DeadLetterLog, RejectedRecord, decode_mention, reason_of
from crisiswatch.stream.enrichment import Enricher, Enrichment

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
    learned = 0

    def learn(record: ConsumerRecord) -> None:
        nonlocal learned
        for name, value in record.headers:
            if name == "mention-id":
                seen.first_time(value.decode())
                learned += 1

    await read_to_end(
        settings,
        topic,
        learn,
        bootstrap_servers=bootstrap_servers,
        partitions=range(partition_count),
        tail=per_partition,
    )
    return learned


class EnrichStage(BatchStage):
    """Decode → de-duplicate by id → enrich in one vectorised pass → route by brand.

    No record stops the stage: one that cannot be decoded, enriched or written out goes to
    ``mentions.dlq`` with its reason, and the rest of its batch moves on.
    """

    stage_name = "enrich"
    input_topic = MENTIONS_RAW.name

    async def on_start(self) -> None:
        self.enricher = Enricher(load_brands(self.settings.worker.brands_file), self.settings.worker.language_backend)
        worker = self.settings.worker
        self.seen = SeenIds(max_ids=worker.dedupe_max_ids, ttl_seconds=worker.dedupe_ttl_seconds)
        self.dead_letters = DeadLetterLog(log, self.settings.worker.dead_letter_log_seconds)
        await super().on_start()

    async def on_assigned(self, partitions: list[TopicPartition]) -> None:
        """Re-learn recently published ids, so records re-processed after a crash are not emitted twice."""
        count = await rewarm_seen_ids(
            self.seen,
            self.bootstrap_servers,
            self.settings.topic(MENTIONS_ENRICHED.name),
            self.settings.kafka.partitions,
            self.settings.worker.dedupe_rewarm_records,
            settings=self.settings,
        )
        log.info("enrich stage: re-learned %d recent mention ids", count)

    async def on_idle(self) -> None:
        self.dead_letters.flush()

    async def process(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        good: list[Mention] = []
        origins: list[ConsumerRecord[bytes, bytes]] = []
        origin: dict[str, tuple[bytes, bytes]] = {}  # mention id -> (raw timestamp ms, raw partition)
        duplicates = 0
        now = utcnow()
        max_age = timedelta(days=self.settings.worker.record_max_age_days)
        max_future = timedelta(seconds=self.settings.worker.record_max_future_seconds)
        for record in records:
            try:
                mention = decode_mention(
                    record.value, self.settings.worker.max_record_bytes, now, max_age=max_age, max_future=max_future
                )
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
        if good:
            await self.emit(good, origins, origin)
        self.dead_letters.flush()

    async def emit(
        self,
        good: list[Mention],
        origins: list[ConsumerRecord[bytes, bytes]],
        origin: dict[str, tuple[bytes, bytes]],
    ) -> None:
        """Enrich the decoded mentions of a batch and queue their ``mentions.enriched`` records."""
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
        record_of = {mention.id: record for mention, record in zip(good, origins, strict=True)}
        unmatched = sent = 0
        for item in enriched:
            try:
                out = self.outputs(item, origin[item.id])
            except Exception as exc:  # a record that cannot be written out is dead-lettered, not fatal
                await self.reject(record_of[item.id], *reason_of(exc))
                continue
            for value, key, headers in out:
                await self.send(MENTIONS_ENRICHED.name, value, key, headers)
            unmatched += not item.brands
            sent += 1
        metrics.UNMATCHED.inc(unmatched)
        metrics.MENTIONS_OUT.inc(sent)

    @staticmethod
    def outputs(item: Enrichment, raw: tuple[bytes, bytes]) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
        """The ``mentions.enriched`` records of one enriched mention: (value, key, headers), one per brand."""
        raw_ms, raw_partition = raw
        headers = [("mention-id", item.id.encode()), ("raw-timestamp-ms", raw_ms), ("raw-partition", raw_partition)]
        if not item.brands:
            return [(item.to_json(None), item.id.encode(), headers)]
        return [(item.to_json(brand), brand.encode(), headers) for brand in item.brands]

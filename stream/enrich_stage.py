"""The enrich stage: ``mentions.raw`` → decode, de-duplicate, enrich → ``mentions.enriched`` (+ DLQ)."""

from __future__ import annotations

import logging

from aiokafka import ConsumerRecord

from stream import metrics
from stream.batch_stage import BatchStage
from stream.brands_file import load_brands
from stream.dead_letters import RejectedRecord, dead_letter, decode_mention, reason_of
from stream.dedupe import SeenIds
from stream.enrichment import Enricher
from stream.records import Mention
from stream.topics import MENTIONS_DLQ, MENTIONS_ENRICHED, MENTIONS_RAW

log = logging.getLogger(__name__)


class EnrichStage(BatchStage):
    """Decode → de-duplicate by id → enrich in one vectorised pass → route by brand."""

    stage_name = "enrich"
    input_topic = MENTIONS_RAW.name

    async def on_start(self) -> None:
        self.enricher = Enricher(load_brands(self.settings.brands_file), self.settings.language_backend)
        self.seen = SeenIds(self.settings.dedupe_ttl_seconds, self.settings.dedupe_max_ids)
        await super().on_start()

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
        duplicates = 0
        for record in records:
            try:
                mention = decode_mention(record.value, self.settings.max_record_bytes)
            except RejectedRecord as exc:
                await self.reject(record, exc.reason, exc.detail)
                continue
            if not self.seen.first_time(mention.id):
                duplicates += 1
                continue
            good.append(mention)
            origins.append(record)
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
            headers = [("mention-id", item.id.encode())]
            if not item.brands:
                unmatched += 1
                await self.send(MENTIONS_ENRICHED.name, item.model_dump_json().encode(), item.id.encode(), headers)
                continue
            for brand in item.brands:
                routed = item if brand == item.brand else item.model_copy(update={"brand": brand})
                await self.send(MENTIONS_ENRICHED.name, routed.model_dump_json().encode(), brand.encode(), headers)
        metrics.UNMATCHED.inc(unmatched)
        metrics.MENTIONS_OUT.inc(len(enriched))

"""The common part of the signed stores (silences, schedules): a compacted topic of signed records keyed by
their id. Reads are verified (unsigned, forged and mis-keyed records are counted and skipped) and the newest
signed version of an id wins; writes are signed by the caller and followed by a signed audit record."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from typing import ClassVar, Generic, Protocol, TypeVar

from aiokafka import AIOKafkaProducer, ConsumerRecord

from crisiswatch.contracts.control import AuditRecord, SignedRecord
from crisiswatch.contracts.topics import PUBLISHING_AUDIT
from crisiswatch.control import metrics
from crisiswatch.control.messages import ControlRejected, Keyring
from crisiswatch.follow import TopicFollower, stop_quietly
from crisiswatch.kafka import new_producer
from crisiswatch.settings import Settings


class _Stored(Protocol):
    id: str
    signed_at: datetime
    removed: bool


RecordT = TypeVar("RecordT", bound=SignedRecord)


class SignedStore(Generic[RecordT]):
    """Signed records by id, read from and written to one compacted topic (a subclass names the record)."""

    record_type: ClassVar[type[SignedRecord]]
    noun: ClassVar[str]
    """What one record is, in messages: "silence", "schedule"."""
    follower_name: ClassVar[str]
    component: ClassVar[str]
    """The component in logs and the rejection metric."""

    def __init__(self, settings: Settings, topic: str, *, keyring: Keyring | None = None):
        if not settings.kafka.bootstrap_servers:
            raise ValueError("no Kafka bootstrap servers: set KAFKA_BOOTSTRAP_SERVERS")
        self.settings = settings
        self.keyring = keyring if keyring is not None else Keyring.from_settings(settings.control)
        self.topic = topic
        self.rejected: Counter[str] = Counter()
        self.changed = asyncio.Event()
        """Set whenever a record is added, replaced or removed."""
        self._records: dict[str, RecordT] = {}
        self._follower = TopicFollower(
            settings.kafka.bootstrap_servers,
            self.topic,
            self._on_record,
            name=self.follower_name,
            settings=settings,
            component=self.component,
        )
        self._producer: AIOKafkaProducer | None = None

    async def stop(self) -> None:
        await self._follower.stop()
        producer, self._producer = self._producer, None
        if producer is not None:
            await stop_quietly(producer.stop, f"{self.noun} store")

    def get(self, record_id: str) -> RecordT | None:
        """The record of ``record_id``, None if unknown or removed."""
        record = self._records.get(record_id)
        return None if record is None or _stored(record).removed else record

    async def _publish(self, record: RecordT) -> None:
        """Store the signed ``record`` (keyed by its id) and take it in at once."""
        if self._producer is None:
            self._producer = new_producer(settings=self.settings, linger_ms=0)
            await self._producer.start()
        await self._producer.send_and_wait(self.topic, value=record.to_bytes(), key=_stored(record).id.encode())
        self._accept(record)

    async def _audit(self, audit: AuditRecord) -> None:
        """Sign ``audit`` and store it on ``publishing.audit``, keyed by its scope (after :meth:`_publish`)."""
        assert self._producer is not None
        await self._producer.send_and_wait(
            self.settings.topic(PUBLISHING_AUDIT.name),
            value=self.keyring.sign(audit).to_bytes(),
            key=audit.scope.encode(),
        )

    def _on_record(self, record: ConsumerRecord, live: bool) -> None:
        try:
            if record.value is None:
                raise ControlRejected("tombstone", f"unsigned deletion of a {self.noun}")
            verified = self.keyring.verify_record(record.value, self.record_type)
            if record.key is None or record.key.decode(errors="replace") != _stored(verified).id:
                raise ControlRejected("key_mismatch", f"record key differs from {self.noun} id")
            self._accept(verified)  # type: ignore[arg-type]
        except ControlRejected as rejected:
            self.rejected[rejected.reason] += 1
            detail = f"{self.noun} record offset {record.offset}: {rejected}"
            metrics.REJECTIONS.rejected(self.component, rejected.reason, detail)

    def _accept(self, record: RecordT) -> None:
        new = _stored(record)
        current = self._records.get(new.id)
        if current is not None and new.signed_at <= _stored(current).signed_at:
            return  # an older version (or our own write read back)
        self._records[new.id] = record
        self.changed.set()


def _stored(record: object) -> _Stored:
    return record  # type: ignore[return-value]

"""Hand-over point of every connector: mentions go to ``mentions.raw``, keyed by mention id."""

from __future__ import annotations

from types import TracebackType

from aiokafka import AIOKafkaProducer

from crisiswatch.settings import Settings
from stream.batch_stage import new_producer
from stream.records import Mention
from stream.topics import MENTIONS_RAW


class MentionSink:
    """Publishes normalised mentions (or, for input the connector could not parse, the raw bytes, so that
    the pipeline dead-letters them with a reason instead of anything being dropped)."""

    def __init__(self, settings: Settings, bootstrap_servers: str):
        self.topic = settings.topic(MENTIONS_RAW.name)
        self.producer: AIOKafkaProducer = new_producer(bootstrap_servers, settings=settings, acks=1, linger_ms=10)
        self.sent = 0

    async def __aenter__(self) -> MentionSink:
        await self.producer.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.producer.flush()
        finally:
            await self.producer.stop()

    async def send(self, mention: Mention) -> None:
        await self.send_raw(mention.model_dump_json(exclude_none=True).encode(), mention.id.encode())

    async def send_raw(self, value: bytes, key: bytes | None = None) -> None:
        await self.producer.send(self.topic, value=value, key=key)
        self.sent += 1

    async def flush(self) -> None:
        await self.producer.flush()

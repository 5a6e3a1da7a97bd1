"""Follow a single-partition (compacted) topic from its beginning, and know how fresh that view is.

`TopicFollower` has its own consumer (no consumer group, nothing committed), reads the partition from
offset 0 and keeps following it. It records the end offset it saw at start: records below it are
*history*, records at or above it are *live*. It confirms it is caught up whenever a fetch response
from the broker shows its position at the high watermark, and remembers when (``caught_up_at``): the
age of that confirmation is the age of the view, which the gate uses to fail closed.

`ControlFeed` is a follower of ``publishing.control`` feeding a `ControlView`, with metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from crisiswatch.control import metrics
from crisiswatch.control.messages import Keyring
from crisiswatch.control.view import ControlView, Ingested
from crisiswatch.kafka import client_options
from crisiswatch.settings import Settings

log = logging.getLogger(__name__)

RecordHandler = Callable[[ConsumerRecord, bool], None]


async def stop_quietly(stop: Callable[[], Awaitable[object]], what: str) -> None:
    """Close a Kafka client even when the broker is gone (aiokafka may then raise on close)."""
    try:
        await stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # we are being cancelled ourselves
        log.debug("%s: a cancelled internal task surfaced while stopping", what)
    except Exception as exc:
        log.warning("%s: error while stopping: %s", what, exc)


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    """Partition ids of ``topic`` from fresh metadata ([] when it does not exist); creates nothing."""
    # The public `consumer.topics()` fetches the same metadata but only returns topic names.
    cluster = await consumer._client.fetch_all_metadata()
    return sorted(cluster.partitions_for_topic(topic) or ())


class TopicFollower:
    """Reads every partition of ``topic`` from the beginning forever, calling ``handler(record, live)``.

    The control topics have one partition by contract, but a topic that a broker auto-created may
    have several; all of them are read (the order per key, hence per scope, is kept either way).
    The follower never creates the topic: until it exists, the view stays unknown.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        handler: RecordHandler,
        *,
        name: str = "follower",
        fetch_max_wait_ms: int = 100,
        settings: Settings | None = None,
    ):
        self.bootstrap_servers = bootstrap_servers
        self.settings = settings
        """Where the Kafka security options come from (None: the process-wide settings)."""
        self.topic = topic
        self.handler = handler
        self.name = name
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.caught_up_at: float | None = None
        """Wall-clock time (s) of the last broker response that showed this view complete."""
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._caught_up = asyncio.Event()
        self._history_end: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            client_id=f"crisiswatch-{self.name}",
            **client_options(self.settings),
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"follow-{self.topic}-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await stop_quietly(consumer.stop, self.name)

    @property
    def caught_up(self) -> bool:
        """Whether the view has ever been complete (it may have gone stale since)."""
        return self._caught_up.is_set()

    def view_age(self, now: float | None = None) -> float | None:
        """Seconds since the view was last confirmed complete; None before the first confirmation."""
        if self.caught_up_at is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.caught_up_at)

    async def wait_caught_up(self, timeout: float) -> bool:
        """Wait until the history has been read; False on timeout."""
        try:
            await asyncio.wait_for(self._caught_up.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        """Wait for the topic to exist, then assign all its partitions from the beginning."""
        while True:
            try:
                partitions = await topic_partitions(consumer, self.topic)
                if partitions:
                    break
                log.info("%s: waiting for topic %s to exist", self.name, self.topic)
            except Exception as exc:  # broker away: keep trying, stay not-ready
                log.warning("%s: cannot read metadata of %s yet: %s", self.name, self.topic, exc)
            await asyncio.sleep(0.5)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while not self._history_end:
            try:
                self._history_end = dict(await consumer.end_offsets(tps))
            except Exception as exc:
                log.warning("%s: cannot read end offsets of %s yet: %s", self.name, self.topic, exc)
                await asyncio.sleep(0.5)

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        await self._assign(consumer)
        timeout_ms = max(200, 2 * self.fetch_max_wait_ms)
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=timeout_ms)
                for tp, records in batches.items():
                    history_end = self._history_end.get(tp, 0)
                    for record in records:
                        try:
                            self.handler(record, record.offset >= history_end)
                        except Exception:
                            log.exception("%s: handler failed on %s offset %d", self.name, tp, record.offset)
                await self._confirm(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: error following %s: %s", self.name, self.topic, exc)
                await asyncio.sleep(0.5)

    async def _confirm(self, consumer: AIOKafkaConsumer) -> None:
        """Record when the broker last showed every partition read up to its high watermark."""
        polled: list[int] = []
        for tp, history_end in self._history_end.items():
            highwater = consumer.highwater(tp)
            if highwater is None:
                return
            position = await consumer.position(tp)
            if position < highwater or position < history_end:
                return
            polled.append(consumer.last_poll_timestamp(tp) or int(time.time() * 1000))
        self.caught_up_at = min(polled) / 1000
        self._caught_up.set()


class ControlFeed:
    """Follows ``publishing.control`` into a `ControlView`, verifying every record.

    ``listeners`` are called (in the event-loop thread) with every `Ingested` result, accepted or not.
    """

    def __init__(
        self,
        settings: Settings,
        keyring: Keyring,
        *,
        component: str,
        name: str | None = None,
        fetch_max_wait_ms: int = 100,
        bootstrap_servers: str | None = None,
    ):
        servers = bootstrap_servers or settings.bootstrap_servers
        if not servers:
            raise ValueError("no Kafka bootstrap servers: set KAFKA_BOOTSTRAP_SERVERS")
        self.component = component
        self.view = ControlView(keyring, settings.control_max_age_seconds)
        self.rejected: Counter[str] = Counter()
        self.listeners: list[Callable[[Ingested], None]] = []
        self.follower = TopicFollower(
            servers,
            settings.topic("publishing.control"),
            self._on_record,
            name=name or component,
            fetch_max_wait_ms=fetch_max_wait_ms,
            settings=settings,
        )

    async def start(self) -> None:
        await self.follower.start()

    async def stop(self) -> None:
        await self.follower.stop()

    def _on_record(self, record: ConsumerRecord, live: bool) -> None:
        result = self.view.ingest(record.key, record.value, live=live)
        if result.rejected is not None:
            self.rejected[result.rejected.reason] += 1
            metrics.MESSAGES_REJECTED.labels(self.component, result.rejected.reason).inc()
        elif result.outcome in ("applied", "reasserted") and result.message is not None:
            metrics.MESSAGES_APPLIED.labels(self.component, result.message.state).inc()
        for listener in self.listeners:
            try:
                listener(result)
            except Exception:
                log.exception("control listener failed")

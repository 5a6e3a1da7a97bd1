"""Follow a single-partition (compacted) topic from its beginning, and know how fresh that view is.

`TopicFollower` has its own consumer (no consumer group, nothing committed), reads the partition from
offset 0 and keeps following it. It records the end offset it saw at start: records below it are
*history*, records at or above it are *live*. It confirms it is caught up whenever a fetch response
from the broker shows its position at the high watermark, and remembers when (``caught_up_at``): the
age of that confirmation is the age of the view, which the gate uses to fail closed.

It also notices when the log goes backwards: the high watermark falls below one it saw before, its
own position is past the end of the log, or offsets come back lower than the ones already read (the
broker came back empty, the log was truncated by an unclean leader election, the topic was deleted and
re-created). It then forgets that it was caught up, tells ``on_reset``, and re-reads from the beginning.

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
from crisiswatch.control.messages import ControlMessage, Keyring
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
        component: str = "follower",
    ):
        self.bootstrap_servers = bootstrap_servers
        self.settings = settings
        """Where the Kafka security options come from (None: the process-wide settings)."""
        self.topic = topic
        self.handler = handler
        self.name = name
        self.component = component
        """Bounded metric label (``gate``, ``plane``, ...); ``name`` may be anything."""
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.caught_up_at: float | None = None
        """Wall-clock time (s) of the last broker response that showed this view complete."""
        self.on_reset: Callable[[str], None] | None = None
        """Called (in the loop) with the reason when the log went backwards, before re-reading it."""
        self.reset_reason: str | None = None
        """Why the view is being re-read (None once caught up again)."""
        self.resets = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._caught_up = asyncio.Event()
        self._history_end: dict[TopicPartition, int] = {}
        self._high: dict[TopicPartition, int] = {}
        self._expected: dict[TopicPartition, int] = {}
        self._reread: str | None = None

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

    def request_reread(self, why: str) -> None:
        """Re-read the topic from the beginning at the next poll (e.g. the view disagrees with a heartbeat)."""
        self._reread = why

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
                why = self._went_back(batches)
                if why is None:
                    for tp, records in batches.items():
                        history_end = self._history_end.get(tp, 0)
                        for record in records:
                            try:
                                self.handler(record, record.offset >= history_end)
                            except Exception:
                                log.exception("%s: handler failed on %s offset %d", self.name, tp, record.offset)
                        if records:
                            self._expected[tp] = records[-1].offset + 1
                    why = await self._end_went_back(consumer) or self._reread
                if why is not None:
                    await self._restart(consumer, why)
                    continue
                await self._confirm(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: error following %s: %s", self.name, self.topic, exc)
                await asyncio.sleep(0.5)

    def _went_back(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> str | None:
        """Records that come back at offsets already read: the log was reset under us."""
        for tp, records in batches.items():
            expected = self._expected.get(tp)
            if records and expected is not None and records[0].offset < expected:
                return f"{tp.topic}[{tp.partition}] went back from offset {expected} to {records[0].offset}"
        return None

    async def _end_went_back(self, consumer: AIOKafkaConsumer) -> str | None:
        """The end of the log is below an end seen before, or below our own position."""
        for tp in self._history_end:
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = await consumer.position(tp)
            seen = max(self._high.get(tp, 0), self._expected.get(tp, 0))
            if highwater < seen or position > highwater:
                return (
                    f"the end of {tp.topic}[{tp.partition}] went back to offset {highwater} "
                    f"(had read up to {max(seen, position)}): data loss, or the topic was re-created"
                )
            self._high[tp] = max(self._high.get(tp, 0), highwater)
        return None

    async def _restart(self, consumer: AIOKafkaConsumer, why: str) -> None:
        """Forget the view and read the topic again from its beginning."""
        log.warning("%s: %s; re-reading %s from the beginning", self.name, why, self.topic)
        metrics.LOG_RESETS.labels(self.component).inc()
        self.resets += 1
        self.caught_up_at = None
        self._caught_up.clear()
        self.reset_reason = why
        self._history_end, self._high, self._expected, self._reread = {}, {}, {}, None
        if self.on_reset is not None:
            try:
                self.on_reset(why)
            except Exception:
                log.exception("%s: reset handler failed", self.name)
        await self._assign(consumer)

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
        if not polled:
            return
        self.caught_up_at = min(polled) / 1000
        self.reset_reason = None
        self._caught_up.set()


class ControlFeed:
    """Follows ``publishing.control`` into a `ControlView`, verifying every record.

    ``listeners`` are called (in the event-loop thread) with every `Ingested` result, accepted or not;
    ``reset_listeners`` with the states the view held when the log went backwards (it is then cleared
    and re-read). Rejected records are counted and logged at a bounded rate (`metrics.REJECTIONS`).
    """

    REREAD_INTERVAL_SECONDS = 30.0

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
        self.reset_listeners: list[Callable[[dict[str, ControlMessage]], None]] = []
        self.follower = TopicFollower(
            servers,
            settings.topic("publishing.control"),
            self._on_record,
            name=name or component,
            fetch_max_wait_ms=fetch_max_wait_ms,
            settings=settings,
            component=component,
        )
        self.follower.on_reset = self._on_reset
        self._rejected_scopes: set[str] = set()
        self._last_reread = -self.REREAD_INTERVAL_SECONDS

    async def start(self) -> None:
        await self.follower.start()

    async def stop(self) -> None:
        await self.follower.stop()

    def _on_reset(self, why: str) -> None:
        before = self.view.clear()
        self._rejected_scopes.clear()
        for listener in self.reset_listeners:
            try:
                listener(before)
            except Exception:
                log.exception("control reset listener failed")

    def _on_record(self, record: ConsumerRecord, live: bool) -> None:
        result = self.view.ingest(record.key, record.value, live=live)
        if result.rejected is not None:
            self.rejected[result.rejected.reason] += 1
            if result.scope is not None:
                self._rejected_scopes.add(result.scope)
            key = record.key.decode(errors="replace")[:80] if record.key is not None else None
            metrics.REJECTIONS.rejected(
                self.component, result.rejected.reason, f"key {key!r} offset {record.offset}: {result.rejected}"
            )
        elif result.outcome in ("applied", "reasserted") and result.message is not None:
            metrics.MESSAGES_APPLIED.labels(self.component, result.message.state).inc()
        if result.missing:
            self._on_missing(result)
        for listener in self.listeners:
            try:
                listener(result)
            except Exception:
                log.exception("control listener failed")

    def _on_missing(self, result: Ingested) -> None:
        """A heartbeat names states this view does not hold and never saw rejected: re-read the topic
        (at most every 30 s), in case the topic was re-created under our position."""
        unexplained = [scope for scope in result.missing if scope not in self._rejected_scopes]
        now = time.monotonic()
        if unexplained and now - self._last_reread >= self.REREAD_INTERVAL_SECONDS:
            self._last_reread = now
            self.follower.request_reread(f"the state heartbeat names states this reader never read ({unexplained[0]})")

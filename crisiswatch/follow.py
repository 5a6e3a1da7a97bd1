"""Read a topic from its beginning: until caught up (`read_to_end`), or forever (`TopicFollower`).

The Kafka kit of crisiswatch is this module and `crisiswatch.kafka` (the client factories). Every
reader that needs "the whole topic, then whatever comes" or "the topic as it is now" uses one of these
two instead of driving a consumer by hand:

- `TopicFollower` has its own consumer (no consumer group, nothing committed), reads the partitions
  from offset 0 and keeps following them. It records the end offsets it saw at start: records below
  them are *history*, records at or above them are *live*. It confirms it is caught up whenever a
  fetch response from the broker shows its position at the high watermark, and remembers when
  (``caught_up_at``): the age of that confirmation is the age of the view, which the publishing gate
  uses to fail closed. It also notices when the log goes backwards (the high watermark falls below
  one it saw before, its own position is past the end of the log, or offsets come back lower than the
  ones already read: the broker came back empty, the log was truncated by an unclean leader election,
  the topic was deleted and re-created). It then forgets that it was caught up, tells ``on_reset``,
  and re-reads from the beginning.
- `read_to_end` reads given partitions (default: all) from the beginning (or the last ``tail`` records,
  or from a point in time) up to the end offsets it saw when it started, then returns.

Both learn a topic's partitions from the cluster's metadata through the admin client's public API
(`topic_partitions`), which never creates a topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Counter

from crisiswatch.kafka import KafkaConfig, new_admin, new_consumer

log = logging.getLogger(__name__)

RecordHandler = Callable[[ConsumerRecord, bool], None]

LOG_RESETS = Counter(
    "crisiswatch_control_log_resets",
    "Times a reader saw a control-plane topic go backwards (truncated, emptied, re-created) and re-read it.",
    ["component"],
)
"""(Named for the control plane, its first user; ``component`` tells which reader it was.)"""

STALE_END_POLLS = 3
"""Empty polls after which `read_to_end` asks again where the log ends (it may have been truncated)."""


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (None: nothing to do) and wait until it has finished."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


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


def raise_if_cancelling() -> None:
    """Re-raise a cancellation of the current task that a client's ``close`` swallowed.

    aiokafka's clients await their own background tasks under ``suppress(CancelledError)`` when they close,
    which also swallows a cancellation of the task that closes them: without this, a reader cancelled
    while it closes its admin client would go on reading (and its ``stop()`` would wait forever).
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def topic_partitions(admin: AIOKafkaAdminClient, topics: str | Iterable[str]) -> list[TopicPartition]:
    """Every partition of ``topics`` from fresh metadata (none for a topic that does not exist).

    Asks for the metadata of all topics, as a request for named topics may make a broker create them.
    """
    wanted = {topics} if isinstance(topics, str) else set(topics)
    found = [
        TopicPartition(entry["topic"], partition["partition"])
        for entry in await admin.describe_topics()
        if entry["topic"] in wanted and entry["error_code"] == 0
        for partition in entry["partitions"]
    ]
    return sorted(found, key=lambda tp: (tp.topic, tp.partition))


async def read_to_end(
    settings: KafkaConfig | None,
    topic: str,
    handle: Callable[[ConsumerRecord], None],
    *,
    bootstrap_servers: str | None = None,
    partitions: Iterable[int] | None = None,
    tail: int | None = None,
    since: datetime | None = None,
    timeout: float | None = None,
    poll_ms: int = 1000,
    max_records: int = 10_000,
    **consumer_options: object,
) -> dict[TopicPartition, int]:
    """Call ``handle(record)`` for every record of ``topic`` up to the end it had when this started.

    ``partitions``: the ones to read (default: every partition of the topic; none if it does not exist).
    Reading starts at the beginning, or ``tail`` records before the end, or at the first record
    written at or after ``since`` (a broker without a timestamp index may start earlier: a handler that
    cares filters on ``record.timestamp`` too). Records that arrive while reading may be handed over too (their
    offset is at or past the returned end). When nothing comes for `STALE_END_POLLS` polls, the end
    is asked again (the log may have been truncated under the reader). Returns the end offsets read
    up to; raises `TimeoutError` after ``timeout`` seconds (None: no limit). ``consumer_options`` go
    to `new_consumer` (e.g. ``client_id``).
    """
    consumer = new_consumer(bootstrap_servers=bootstrap_servers, settings=settings, group_id=None, **consumer_options)
    await consumer.start()
    try:
        if partitions is None:
            admin = new_admin(bootstrap_servers, settings=settings)
            try:
                await admin.start()
                tps = await topic_partitions(admin, topic)
            finally:
                await stop_quietly(admin.close, f"read {topic}")
                raise_if_cancelling()
        else:
            tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return {}
        consumer.assign(tps)
        ends = dict(await consumer.end_offsets(tps))
        if since is not None:
            found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in tps})
            for tp in tps:
                at = found.get(tp)
                consumer.seek(tp, at.offset if at is not None else ends[tp])
        elif tail is not None:
            for tp in tps:
                consumer.seek(tp, max(0, ends[tp] - tail))
        else:
            await consumer.seek_to_beginning(*tps)
        deadline = None if timeout is None else time.monotonic() + timeout
        remaining = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
        quiet = 0
        while remaining:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} within {timeout:.0f} s")
            batches = await consumer.getmany(*remaining, timeout_ms=poll_ms, max_records=max_records)
            quiet = 0 if batches else quiet + 1
            if quiet >= STALE_END_POLLS:  # nothing comes: the end we aim for may be gone (log truncated, re-created)
                ends.update(await consumer.end_offsets(list(remaining)))
                quiet = 0
            for records in batches.values():
                for record in records:
                    handle(record)
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        return ends
    finally:
        await stop_quietly(consumer.stop, f"read {topic}")


class TopicFollower:
    """Reads every partition of ``topic`` from the beginning forever, calling ``handler(record, live)``.

    ``topic`` may also be several topics, read together (e.g. ``alerts`` and ``alerts.ack``); the
    follower starts once all of them exist. The control topics have one partition by contract, but a
    topic that a broker auto-created may have several; all of them are read (the order per key, hence
    per scope, is kept either way). The follower never creates a topic: until it exists, the view
    stays unknown. ``tail`` starts each partition that many records before its end instead (records
    before the end are still *history*); ``max_records`` bounds one poll.
    """

    def __init__(
        self,
        bootstrap_servers: str | None,
        topic: str | Sequence[str],
        handler: RecordHandler,
        *,
        name: str = "follower",
        fetch_max_wait_ms: int = 100,
        settings: KafkaConfig | None = None,
        component: str = "follower",
        tail: Callable[[TopicPartition], int] | None = None,
        max_records: int | None = None,
    ):
        self.bootstrap_servers = bootstrap_servers
        self.settings = settings
        """Where the Kafka security options come from (None: the process-wide settings)."""
        self.topics: tuple[str, ...] = (topic,) if isinstance(topic, str) else tuple(topic)
        self.topic = ", ".join(self.topics)
        """The topic read (several: their names joined, for messages)."""
        self.handler = handler
        self.name = name
        self.component = component
        """Bounded metric label (``gate``, ``plane``, ...); ``name`` may be anything."""
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.tail = tail
        """Records before the end of each partition to start from (None: from the beginning)."""
        self.max_records = max_records
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
        self._consumer = new_consumer(
            bootstrap_servers=self.bootstrap_servers,
            settings=self.settings,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            client_id=f"crisiswatch-{self.name}",
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"follow-{self.topic}-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await stop_quietly(consumer.stop, self.name)

    @property
    def caught_up_event(self) -> asyncio.Event:
        """Set while the view is complete (cleared when the log went backwards, until re-read)."""
        return self._caught_up

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
        """Wait for the topics to exist, then assign all their partitions from the beginning (or `tail`)."""
        admin = new_admin(self.bootstrap_servers, settings=self.settings, client_id=f"crisiswatch-{self.name}")
        try:
            tps: list[TopicPartition] = []
            while not tps:
                try:
                    await admin.start()  # (a no-op once started)
                    tps = await topic_partitions(admin, self.topics)
                    if {tp.topic for tp in tps} == set(self.topics):
                        break
                    tps = []
                    log.info("%s: waiting for topic %s to exist", self.name, self.topic)
                except Exception as exc:  # broker away: keep trying, stay not-ready
                    log.warning("%s: cannot read metadata of %s yet: %s", self.name, self.topic, exc)
                await asyncio.sleep(0.5)
        finally:
            await stop_quietly(admin.close, self.name)
            raise_if_cancelling()
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while not self._history_end:
            try:
                self._history_end = dict(await consumer.end_offsets(tps))
            except Exception as exc:
                log.warning("%s: cannot read end offsets of %s yet: %s", self.name, self.topic, exc)
                await asyncio.sleep(0.5)
        if self.tail is not None:
            begin = await consumer.beginning_offsets(tps)
            for tp in tps:
                consumer.seek(tp, max(begin[tp], self._history_end[tp] - self.tail(tp)))

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        await self._assign(consumer)
        timeout_ms = max(200, 2 * self.fetch_max_wait_ms)
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=self.max_records)
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
                            await asyncio.sleep(0)  # let other tasks in while a long history replays
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
        LOG_RESETS.labels(self.component).inc()
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


async def read_states(
    bootstrap_servers: str, topic: str, stage: str, partitions: Iterable[int], *, settings: KafkaConfig | None = None
) -> dict[int, dict[str, dict[str, Any]]]:
    """Latest state per key of ``stage`` in the given partitions: ``{partition: {name: state}}``.

    ``settings`` (default: the process-wide settings) gives the Kafka security options.
    """
    wanted = sorted(set(partitions))
    result: dict[int, dict[str, dict[str, Any]]] = {p: {} for p in wanted}
    if not wanted:
        return result
    prefix = f"{stage}:".encode()

    def keep(record: ConsumerRecord) -> None:
        if record.key and record.key.startswith(prefix):
            name = record.key[len(prefix) :].decode()
            if record.value is None:
                result[record.partition].pop(name, None)
            else:
                result[record.partition][name] = json.loads(record.value)

    await read_to_end(settings, topic, keep, bootstrap_servers=bootstrap_servers, partitions=wanted)
    return result

"""Hand-over point of every connector: mentions go to ``mentions.raw``, keyed by mention id, and nothing
is lost on the way.

`MentionSink` is the only writer of ``mentions.raw``. For a connector it is three calls:

- ``await sink.send(mention)`` (or ``send_raw(bytes, key)``) returns as soon as the record is queued.
  It blocks only when every buffer is full (backpressure: the connector stops fetching).
- ``state.save()`` (a `connectors.base.StateStore`) may follow at once: the checkpoint is written only
  after the broker acknowledged every record handed over before it (`after_acked`).
- ``await sink.flush()`` waits until everything handed over so far is *secured*: acknowledged by the
  broker (``acks=all``) or fsynced in the on-disk spool. ``await sink.settled()`` waits for the broker's
  acknowledgement only.

Delivery: a single pump sends the queue in chunks (one Kafka batch per partition, the key's murmur2
partition like every Kafka client) and awaits every batch's delivery. A failed chunk is sent again,
in order. When the broker does not acknowledge for ``spill_after`` seconds (or a batch fails), every
unacknowledged record goes to the spool (`connectors.spool`, bounded by size and age) and new records
follow it there; when the broker answers again (the sink re-creates missing topics first, as a broker
that came back empty has none), the spool is sent in order, then the sink returns to memory. When the
memory buffer and the spool are both full, `send` blocks. Without a spool folder, only the memory
buffer is used, then `send` blocks. Records not delivered when the sink closes stay in the spool for
the next start (or, without a spool, are reported as lost with an error log line and a metric).

Delivery is at least once: after an outage a record may reach ``mentions.raw`` twice (sent once
before the outage was noticed and once from the spool); ids are stable and the pipeline drops
repeats by id. ``enable_idempotence`` (off by default: the embedded broker does not support it) lets a
real Kafka cluster drop the producer's own retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from crisiswatch.connectors import metrics
from crisiswatch.connectors.spool import Record, Spool, SpoolFull
from crisiswatch.contracts.records import Mention
from crisiswatch.contracts.topics import MENTIONS_RAW
from crisiswatch.kafka import new_producer
from crisiswatch.settings import Settings

log = logging.getLogger(__name__)
_PARTITIONER = DefaultPartitioner()
T = TypeVar("T")


class SinkClosed(RuntimeError):
    """A record was handed to a sink that is closing or closed."""


@dataclass
class SinkOptions:
    """Buffering, spool and delivery limits of a `MentionSink` (see the module docstring)."""

    buffer_records: int = 20_000
    """Records held in memory (queued or awaiting acknowledgement) before `send` blocks or spills."""
    buffer_bytes: int = 32 << 20
    spool_dir: Path | None = None
    """The on-disk spool; None: memory only (an outage blocks `send` once the buffer is full)."""
    spool_max_bytes: int = 1 << 30
    spool_max_age_seconds: float = 24 * 3600.0
    spill_after_seconds: float = 2.0
    """Unacknowledged for this long: the broker counts as down and records go to the spool."""
    chunk_records: int = 10_000
    chunk_bytes: int = 4 << 20
    max_in_flight: int = 3
    enable_idempotence: bool = False
    request_timeout_ms: int = 15_000
    retry_initial_seconds: float = 0.25
    retry_max_seconds: float = 5.0
    close_timeout_seconds: float = 30.0
    linger_ms: int = 0
    """The sink sends whole chunks as batches: no need for the producer to wait for more."""

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SinkOptions:
        """Options from the ``CRISISWATCH_CONNECTOR_*`` settings (default: the process-wide settings)."""
        s = settings if settings is not None else Settings()
        return cls(
            buffer_records=s.connectors.connector_buffer_records,
            spool_dir=s.connectors.connector_spool_dir,
            spool_max_bytes=s.connectors.connector_spool_max_bytes,
            spool_max_age_seconds=s.connectors.connector_spool_max_age_seconds,
            spill_after_seconds=s.connectors.connector_spill_after_seconds,
            enable_idempotence=s.connectors.connector_enable_idempotence,
        )


@dataclass
class _Chunk:
    """Records sent together, awaiting their acknowledgement."""

    records: list[Record]
    started: float
    task: asyncio.Task[None]
    abandoned: bool = False
    """Given up on (its records were spooled or queued again): its outcome no longer matters."""


@dataclass
class _Waiter:
    seq: int
    callback: Callable[[], Any] = field(repr=False)


class MentionSink:
    """Publishes normalised mentions (or, for input the connector could not parse, the raw bytes, so that
    the pipeline dead-letters them with a reason instead of anything being dropped), without losing any:
    see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        bootstrap_servers: str,
        options: SinkOptions | None = None,
        *,
        checkpoints: str | None = None,
    ):
        self.settings = settings
        self.bootstrap_servers = bootstrap_servers
        self.options = options or SinkOptions.from_settings(settings)
        self.topic = settings.topic(MENTIONS_RAW.name)
        opts = self.options
        extra: dict[str, Any] = {"acks": "all", "enable_idempotence": opts.enable_idempotence}
        self.producer: AIOKafkaProducer = new_producer(
            bootstrap_servers,
            settings=settings,
            linger_ms=opts.linger_ms,
            request_timeout_ms=opts.request_timeout_ms,
            **extra,
        )
        self.spool: Spool | None = None
        self.checkpoint_mode = checkpoints
        self.checkpoints: Any = None
        """The `connectors.checkpoints` backend bound to this sink (set by ``__aenter__``)."""
        self.sent = 0
        """Records handed over (queued) so far."""
        self.acked = 0
        """Records acknowledged by the broker (or, expired in the spool, counted in metrics)."""
        self.secured_count = 0
        """Records acknowledged or fsynced in the spool."""
        self.expired = 0
        self.lost = 0
        self.outages = 0
        self._queue: deque[Record] = deque()
        self._queue_bytes = 0
        self._in_flight: deque[_Chunk] = deque()
        self._in_flight_records = 0
        self._enqueue = asyncio.Lock()
        """Chunks in flight enter the producer one after the other: a later chunk never overtakes an earlier one."""
        self._spool_buffer: list[Record] = []
        self._spool_buffer_bytes = 0
        self._spooling = False
        self._hold = False
        self._down_since: float | None = None
        self._spool_full_logged = False
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._waiters: deque[_Waiter] = deque()
        self._secured_waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._acked_waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._waiter_ids = itertools.count()
        self._callback_tasks: set[asyncio.Future[Any]] = set()
        self._pump: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._released = False
        self._partitions: list[int] = []

    # --- lifecycle -------------------------------------------------------------------------------
    async def __aenter__(self) -> MentionSink:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the producer and the pump; open the spool (records left in it are sent first) and, when
        ``checkpoints`` names one (``kafka``, ``file``, ``memory``), the checkpoint backend
        (`connectors.checkpoints.open_checkpoints`) that `StateStore.for_connector` binds new stores to."""
        from crisiswatch.kafka import forbid_topic_auto_creation

        forbid_topic_auto_creation()  # a broker that came back empty must not auto-create mentions.raw
        opts = self.options
        if opts.spool_dir is not None:
            self.spool = Spool(opts.spool_dir, max_bytes=opts.spool_max_bytes, max_age=opts.spool_max_age_seconds)
            self._spooling = len(self.spool) > 0
            self.sent = self.acked = self.secured_count = 0
            if self._spooling:  # left from before: handed over earlier, sent first
                self.sent = self.secured_count = len(self.spool)
            metrics.SPOOL_BYTES.set(self.spool.bytes)
            metrics.SPOOL_RECORDS.set(len(self.spool))
        await self.producer.start()
        self._pump = asyncio.create_task(self._run(), name="mention-sink-pump")
        if self.checkpoint_mode is not None:
            from crisiswatch.connectors.checkpoints import open_checkpoints

            self.checkpoints = await open_checkpoints(self, self.checkpoint_mode)

    async def close(self) -> None:
        """Deliver what is queued (up to ``close_timeout_seconds``), keep the rest in the spool, stop."""
        if self._closed:
            return
        self._closing = True
        self._wake.set()
        try:
            # with a spool, what the broker does not take now is safe on disk: no long wait
            timeout = 1.0 if self.spool is not None and self.down else self.options.close_timeout_seconds
            with contextlib.suppress(TimeoutError, SinkClosed):
                await asyncio.wait_for(self.settled(), timeout)
            if self.checkpoints is not None:
                await self.checkpoints.close()
        finally:
            self._closed = True
            if self._pump is not None:
                self._pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._pump
            self._keep_undelivered()
            from crisiswatch.follow import stop_quietly

            await stop_quietly(self.producer.stop, "mention sink")

    def _keep_undelivered(self) -> None:
        """At close: what the broker did not acknowledge goes to the spool, or is reported lost."""
        records = [r for c in self._in_flight if not c.abandoned for r in c.records] + list(self._queue)
        self._in_flight.clear()
        self._queue.clear()
        if self._spooling:
            records = records + self._spool_buffer  # (in-flight spool chunks are still in the spool)
            self._spool_buffer = []
        if not records:
            return
        if self.spool is not None:
            try:
                self.spool.append(records)
                log.warning("mention sink closed with %d records undelivered: kept in the spool", len(records))
                return
            except (SpoolFull, OSError) as exc:
                log.error("mention sink: could not spool %d undelivered records: %s", len(records), exc)
        self.lost += len(records)
        metrics.LOST.inc(len(records))
        log.error(
            "mention sink closed with %d records NOT handed over to %s (broker unavailable, no spool room): "
            "they are lost; their sources will have to send them again",
            len(records),
            self.topic,
        )

    # --- the connector-facing API ------------------------------------------------------------------
    async def send(self, mention: Mention) -> None:
        """Queue one mention (returns when queued; blocks while every buffer is full)."""
        await self.send_raw(mention.model_dump_json(exclude_none=True).encode(), mention.id.encode())

    async def send_raw(self, value: bytes, key: bytes | None = None) -> None:
        """Queue one record as it is (returns when queued; blocks while every buffer is full)."""
        while True:
            if self._closing or self._released:
                raise SinkClosed("the mention sink is closing")
            if self._room():
                break
            if self._spooling:
                self._report_spool_full()
            await self._wait_changed()
        record = (key, value, time.time())
        if self._spooling:
            self._spool_buffer.append(record)
            self._spool_buffer_bytes += len(value) + len(key or b"")
        else:
            self._queue.append(record)
            self._queue_bytes += len(value)
        self.sent += 1
        if not self._wake.is_set():
            self._wake.set()

    def has_room(self) -> bool:
        """Whether `send_raw` would queue a record now without waiting."""
        return not self._closing and self._room()

    @property
    def seq(self) -> int:
        """The number of records handed over so far (a position for `wait_secured` / `wait_acked`)."""
        return self.sent

    async def flush(self) -> None:
        """Wait until every record handed over so far is secured: acknowledged, or fsynced in the spool."""
        await self.wait_secured(self.sent)

    async def settled(self) -> None:
        """Wait until the broker acknowledged every record handed over so far."""
        await self.wait_acked(self.sent)

    def release_waiters(self) -> None:
        """Stopping: `flush`, `settled` and blocked sends return now (sends raise `SinkClosed`); what is
        undelivered stays queued for `close` (spooled, or reported lost)."""
        self._released = True
        self._notify()

    async def wait_secured(self, seq: int) -> None:
        """Wait until the first ``seq`` records are acknowledged or fsynced in the spool."""
        while self.secured_count < seq and self.acked < seq and not self._released:
            self._check_pump()
            if self._spooling and self._spool_buffer:
                self._wake.set()
            await self._wait_seq(self._secured_waiters, seq)

    async def wait_acked(self, seq: int) -> None:
        """Wait until the broker acknowledged the first ``seq`` records."""
        while self.acked < seq and not self._released:
            self._check_pump()
            await self._wait_seq(self._acked_waiters, seq)

    def after_acked(self, callback: Callable[[], Any]) -> None:
        """Call ``callback`` (a function, or one returning an awaitable) once the broker acknowledged every
        record handed over before this call: the checkpoint hook."""
        if self.acked >= self.sent:
            self._call(callback)
        else:
            self._waiters.append(_Waiter(self.sent, callback))

    @property
    def down(self) -> bool:
        """Whether the broker is currently not acknowledging (records go to the spool / wait)."""
        return self._down_since is not None

    # --- internals ---------------------------------------------------------------------------------
    def _room(self) -> bool:
        opts = self.options
        if self._spooling:
            assert self.spool is not None
            pending = len(self._spool_buffer)
            return pending < opts.buffer_records and self.spool.has_room(self._spool_buffer_bytes + 64 * (pending + 1))
        held = len(self._queue) + self._in_flight_records
        return held < opts.buffer_records and self._queue_bytes < opts.buffer_bytes

    async def _wait_changed(self) -> None:
        event = self._changed
        await event.wait()

    def _check_pump(self) -> None:
        """Raise when the pump stopped: its own error if it crashed, else `SinkClosed`."""
        if self._pump is not None and self._pump.done():
            if not self._pump.cancelled():
                self._pump.result()
            raise SinkClosed("the mention sink stopped")

    async def _wait_seq(self, heap: list[tuple[int, int, asyncio.Future[None]]], seq: int) -> None:
        """Wait until `_notify` finds position ``seq`` reached (only those waiters wake, not all)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(heap, (seq, next(self._waiter_ids), future))
        await future

    def _notify(self, everyone: bool = False) -> None:
        """Wake blocked sends, and the waiters whose position is now secured / acknowledged."""
        self._changed.set()
        self._changed = asyncio.Event()
        everyone = everyone or self._released
        for heap, reached in (
            (self._secured_waiters, max(self.secured_count, self.acked)),
            (self._acked_waiters, self.acked),
        ):
            while heap and (everyone or heap[0][0] <= reached):
                future = heapq.heappop(heap)[2]
                if not future.done():
                    future.set_result(None)

    def _call(self, callback: Callable[[], Any]) -> None:
        try:
            result = callback()
            if isinstance(result, Awaitable):
                task = asyncio.ensure_future(result)
                self._callback_tasks.add(task)
                task.add_done_callback(self._callback_tasks.discard)
        except Exception:
            log.exception("mention sink: an after-ack callback failed")

    def _acknowledge(self, count: int) -> None:
        self.acked += count
        self.secured_count = max(self.secured_count, self.acked)
        metrics.DELIVERED.inc(count)
        while self._waiters and self._waiters[0].seq <= self.acked:
            self._call(self._waiters.popleft().callback)
        if self._down_since is not None:
            log.warning("mention sink: the broker acknowledges again after %.1f s", time.monotonic() - self._down_since)
            self._down_since = None
            metrics.BROKER_DOWN.set(0)
        self._notify()

    def _mark_down(self, why: str) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            self.outages += 1
            metrics.BROKER_DOWN.set(1)
            log.warning("mention sink: the broker does not acknowledge (%s); buffering", why)

    async def _deliver(self, records: list[Record]) -> None:
        """Send records as one batch per partition and wait for every acknowledgement."""
        futures: list[asyncio.Future[Any]] = []
        async with self._enqueue:  # concurrent chunks would interleave their batches: out of order per partition
            partitions = sorted(await self.producer.partitions_for(self.topic))
            self._partitions = partitions
            builders: dict[int, Any] = {}
            for key, value, _t in records:
                partition = _PARTITIONER(key, partitions, partitions)
                builder = builders.get(partition)
                if builder is None:
                    builder = builders[partition] = self.producer.create_batch()
                if builder.append(key=key, value=value, timestamp=None) is None:
                    futures.append(await self.producer.send_batch(builder, self.topic, partition=partition))
                    builder = builders[partition] = self.producer.create_batch()
                    builder.append(key=key, value=value, timestamp=None)
            for partition, builder in builders.items():
                if builder.record_count():
                    futures.append(await self.producer.send_batch(builder, self.topic, partition=partition))
        if futures:
            results = await asyncio.gather(*futures, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result

    async def _run(self) -> None:
        """The pump: memory mode, or spool mode while the spool holds records."""
        try:
            while True:
                if self._spooling:
                    await self._run_spool()
                    continue
                if self._closed:
                    return
                await self._pump_memory()
        except BaseException:
            self._notify(everyone=True)  # waiters see the pump stopped (and why)
            raise

    def _start_chunk(self, records: list[Record]) -> None:
        task = asyncio.create_task(self._deliver(records))
        task.add_done_callback(_retrieve)
        self._in_flight.append(_Chunk(records, time.monotonic(), task))
        self._in_flight_records += len(records)

    async def _pump_memory(self) -> None:
        opts = self.options
        while not self._spooling:
            while self._queue and len(self._in_flight) < opts.max_in_flight and not self._hold:
                chunk: list[Record] = []
                size = 0
                while self._queue and len(chunk) < opts.chunk_records and size < opts.chunk_bytes:
                    record = self._queue.popleft()
                    size += len(record[1])
                    chunk.append(record)
                self._queue_bytes -= size
                self._start_chunk(chunk)
            if not self._in_flight:
                if self._queue and self._hold:  # memory only, broker down: retry once it answers
                    await self._retry_pause()
                    self._hold = False
                    continue
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            oldest = self._in_flight[0]
            waits: set[asyncio.Future[Any]] = {oldest.task}
            waker = None
            if not self._queue:
                self._wake.clear()
                waker = asyncio.ensure_future(self._wake.wait())
                waits.add(waker)
            timeout = None
            if self.spool is not None:
                timeout = max(0.0, oldest.started + opts.spill_after_seconds - time.monotonic())
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if waker is not None:
                waker.cancel()
            if oldest.task.done():
                self._in_flight.popleft()
                self._in_flight_records -= len(oldest.records)
                exc = oldest.task.exception()
                if exc is None:
                    self._acknowledge(len(oldest.records))
                    continue
                self._mark_down(f"{type(exc).__name__}: {exc}")
                if self.spool is not None:
                    self._spill([oldest])
                    return
                self._requeue(oldest)
                self._hold = True
            elif self.spool is not None and time.monotonic() - oldest.started >= opts.spill_after_seconds:
                self._mark_down(f"no acknowledgement for {opts.spill_after_seconds:g} s")
                self._spill([])
                return

    def _requeue(self, failed: _Chunk) -> None:
        """Memory only: a failed chunk and every chunk after it go back to the front of the queue, in order."""
        chunks = [failed, *self._in_flight]
        self._in_flight.clear()
        self._in_flight_records = 0
        records = [r for c in chunks for r in c.records]
        for c in chunks[1:]:
            c.abandoned = True  # if it still succeeds, its records arrive twice: de-duplicated by id
        self._queue.extendleft(reversed(records))
        self._queue_bytes += sum(len(r[1]) for r in records)

    async def _retry_pause(self) -> None:
        """Wait a little, then make sure the topics exist (a broker that came back empty has none)."""
        delay = self.options.retry_initial_seconds
        while not self._closed:
            await asyncio.sleep(delay)
            if await self._broker_answers():
                return
            delay = min(delay * 2, self.options.retry_max_seconds)

    async def _broker_answers(self) -> bool:
        from crisiswatch.kafka import ensure_topics

        try:
            created = await asyncio.wait_for(ensure_topics(self.bootstrap_servers, self.settings), 10.0)
        except Exception as exc:
            log.debug("mention sink: broker not back yet: %s", exc)
            return False
        if created:
            log.warning("mention sink: the broker came back without topics; created %s", ", ".join(created))
        return True

    def _spill(self, failed: list[_Chunk]) -> None:
        """Broker down: every unacknowledged record, in order, goes to the spool; new ones follow it."""
        assert self.spool is not None
        chunks = failed + list(self._in_flight)
        self._in_flight.clear()
        self._in_flight_records = 0
        for c in chunks:
            c.abandoned = True
        records = [r for c in chunks for r in c.records] + list(self._queue)
        self._queue.clear()
        self._queue_bytes = 0
        self._spooling = True
        self._spool_buffer = records + self._spool_buffer
        self._spool_buffer_bytes += sum(len(r[1]) + len(r[0] or b"") for r in records)
        self._flush_spool_buffer()
        log.warning("mention sink: %d unacknowledged records moved to the spool %s", len(records), self.spool.directory)

    def _flush_spool_buffer(self) -> bool:
        """Append the spool buffer to disk (fsync); False when the spool is full."""
        assert self.spool is not None
        if not self._spool_buffer:
            return True
        try:
            self.spool.append(self._spool_buffer)
        except SpoolFull:
            self._report_spool_full()
            return False
        except OSError as exc:
            log.error("mention sink: cannot write the spool %s: %s (records stay in memory)", self.spool.directory, exc)
            return False
        self.secured_count = self.sent  # in spool mode everything unacknowledged is in the spool now
        self._spool_buffer = []
        self._spool_buffer_bytes = 0
        metrics.SPOOL_BYTES.set(self.spool.bytes)
        metrics.SPOOL_RECORDS.set(len(self.spool))
        self._notify()
        return True

    def _report_spool_full(self) -> None:
        """The spool has no room: say so once (log line and metric) until it has room again."""
        assert self.spool is not None
        if not self._spool_full_logged:
            self._spool_full_logged = True
            metrics.SPOOL_FULL.set(1)
            log.error(
                "mention sink: the spool %s is full (%d of %d bytes): sends block and connectors stop fetching "
                "until the broker is back",
                self.spool.directory,
                self.spool.bytes,
                self.spool.max_bytes,
            )

    def _spool_has_room_again(self) -> None:
        if self._spool_full_logged and (not self._spooling or self._room()):
            self._spool_full_logged = False
            metrics.SPOOL_FULL.set(0)
            log.warning("mention sink: the spool has room again")

    async def _run_spool(self) -> None:
        """Spool mode: keep the spool written; when the broker answers, send it in order; then memory."""
        assert self.spool is not None
        opts = self.options
        delay = opts.retry_initial_seconds
        probed = False
        while True:
            self._flush_spool_buffer()
            if self._closed:
                return
            if len(self.spool) == 0 and not self._spool_buffer:
                self._spooling = False
                self._spool_has_room_again()
                metrics.SPOOL_BYTES.set(self.spool.bytes)
                metrics.SPOOL_RECORDS.set(0)
                log.info("mention sink: the spool is empty; back to memory")
                self._notify()
                return
            if len(self.spool) == 0:  # only a buffer the full spool did not take yet
                await self._sleep_or_wake(0.05)
                continue
            if not probed:
                if not await self._while_flushing(self._broker_answers()):
                    await self._sleep_or_wake(delay)
                    delay = min(delay * 2, opts.retry_max_seconds)
                    continue
                probed = True
            records, end = self.spool.read(None, opts.chunk_records, opts.chunk_bytes)
            now = time.time()
            fresh = [r for r in records if not self.spool.expired(r, now)]
            if len(fresh) < len(records):
                self._report_expired(records, len(records) - len(fresh))
            try:
                if fresh:
                    await self._while_flushing(self._deliver(fresh))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._mark_down(f"{type(exc).__name__}: {exc}")
                probed = False
                await self._sleep_or_wake(delay)
                delay = min(delay * 2, opts.retry_max_seconds)
                continue
            delay = opts.retry_initial_seconds
            self.spool.release(end, len(records))
            self._spool_has_room_again()
            metrics.SPOOL_BYTES.set(self.spool.bytes)
            metrics.SPOOL_RECORDS.set(len(self.spool))
            metrics.SPOOL_REPLAYED.inc(len(fresh))
            self._acknowledge(len(records))

    async def _while_flushing(self, work: Awaitable[T]) -> T:
        """Await ``work`` while new records keep being written to the spool every 20 ms."""

        async def keep_flushing() -> None:
            while True:
                await asyncio.sleep(0.02)
                self._flush_spool_buffer()

        flusher = asyncio.create_task(keep_flushing())
        try:
            return await work
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher

    async def _sleep_or_wake(self, seconds: float) -> None:
        """Sleep, writing the spool buffer every 20 ms (so that waiters on `flush` are not kept waiting)."""
        deadline = time.monotonic() + seconds
        while not self._closed:
            self._flush_spool_buffer()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(left, 0.02))

    def _report_expired(self, records: list[Record], count: int) -> None:
        self.expired += count
        metrics.SPOOL_EXPIRED.inc(count)
        oldest = min(r[2] for r in records)
        log.error(
            "mention sink: %d spooled records are older than the spool age limit (%.0f s; the oldest waited "
            "%.0f s) and are NOT sent to %s; raise CRISISWATCH_CONNECTOR_SPOOL_MAX_AGE_SECONDS to keep them",
            count,
            self.options.spool_max_age_seconds,
            time.time() - oldest,
            self.topic,
        )


def _retrieve(task: asyncio.Task[None]) -> None:
    """Consume a chunk task's outcome (abandoned chunks are not awaited by anyone)."""
    if not task.cancelled():
        task.exception()

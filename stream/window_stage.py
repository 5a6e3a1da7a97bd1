"""The window stage: ``mentions.enriched`` (keyed by brand) → per-brand event-time windows → ``signals``.

Each input partition has its own `stream.windowing.Watermark`: the event-time progress of every upstream
raw partition (the lowest of their highest event times, so one raw partition read ahead of another does
not close windows early) and of every source (a polled feed minutes late, a stream seconds:
`stream.windowing.SourcePolicy`). A brand's windows close when every live source that feeds it has passed
them by its allowed lateness; a source silent past its own idle limit stops holding them. When a
partition has been idle for ``idle_flush_seconds`` and nothing is on its way upstream
(`stream.windowing.ClosingPolicy`), its event time advances to the wall clock: event time cannot lag
real time when nothing is arriving, and the last windows of a replay close.

A mention for a window that already closed goes into a correction of that window (a ``signals`` record
with ``revision`` >= 1 carrying only the late mentions); beyond ``correction_horizon_seconds`` it goes
to the DLQ as ``too_late``. Either way it is counted in ``crisiswatch_mentions_too_late_total``.

State (open windows, pending corrections and detector state per brand, and the input offset and
watermark it reflects) is checkpointed to the compacted state topic every ``state_checkpoint_seconds``
and on revocation, in the order of `stream.state_store.Checkpoint` (outputs, state, offsets); on
assignment the stage restores it, under the configured window size (configuration wins: a brand whose
state has another window size starts afresh, with a warning), and seeks back to the checkpointed
offset, so a killed worker resumes exactly where its state was. Records a brand already applied
(restored state newer than the partition checkpoint) are skipped by offset, so nothing is counted twice.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from crisiswatch.contracts.records import WindowedMention
from crisiswatch.contracts.topics import MENTIONS_DLQ, MENTIONS_ENRICHED, MENTIONS_RAW, SIGNALS, STATE
from crisiswatch.follow import read_states
from crisiswatch.kafka import new_admin
from crisiswatch.stream import metrics
from crisiswatch.stream.batch_stage import BatchStage
from crisiswatch.stream.dead_letters import DeadLetterLog, dead_letter, enriched_reason_of, event_time_bounds, reason_of
from crisiswatch.stream.decisions import mention_facts
from crisiswatch.stream.lag import committed_lags
from crisiswatch.stream.state_store import Checkpoint, split_restored
from crisiswatch.stream.windowing import (
    BrandWindows,
    ClosedWindow,
    ClosingPolicy,
    Placement,
    SourcePolicy,
    StateMismatch,
    Watermark,
)

log = logging.getLogger(__name__)

STAGE = "window"
UPSTREAM_STAGE = "enrich"
QUIET_RECHECK_SECONDS = 1.0
"""How long the answer of `WindowStage.upstream_quiet` (two broker round trips) is reused."""


class WindowStage(BatchStage):
    """Aggregates each brand's mentions into event-time windows and scores closed windows."""

    stage_name = "window"
    input_topic = MENTIONS_ENRICHED.name
    commit_on_process = False  # offsets are committed with the checkpoint that makes them durable

    async def on_start(self) -> None:
        self.brands: dict[str, BrandWindows] = {}
        self.partition_of: dict[str, int] = {}
        self.watermarks: dict[int, Watermark] = {}
        self.last_seen: dict[int, float] = {}
        self.applied: dict[int, int] = {}
        self.checkpointed: dict[int, int] = {}
        self.dirty: set[str] = set()
        self.last_checkpoint = time.monotonic()
        self.lags_checked: tuple[float, dict[int, int] | None] = (float("-inf"), None)
        self.quiet_checked: tuple[float, bool] = (float("-inf"), False)
        self.closing = ClosingPolicy.from_settings(self.settings.worker)
        self.sources: SourcePolicy = self.closing.sources
        self.dead_letters = DeadLetterLog(log, self.settings.worker.dead_letter_log_seconds)
        self.admin = new_admin(self.bootstrap_servers, settings=self.settings)
        await self.admin.start()
        await super().on_start()

    async def on_stop(self) -> None:
        await super().on_stop()
        await self.admin.close()

    def _new_watermark(self) -> Watermark:
        return Watermark(self.closing, None, self.settings.kafka.partitions, time.monotonic())

    def _new_brand(self, brand: str) -> BrandWindows:
        s = self.settings
        return BrandWindows(brand, s.worker.window_seconds, correction_horizon=s.worker.correction_horizon_seconds)

    def _restore_brand(self, state: dict[str, Any]) -> BrandWindows | None:
        """A brand's windows from its checkpoint under the configured size; None when the size changed."""
        s = self.settings
        try:
            return BrandWindows.from_state(
                state, s.worker.window_seconds, correction_horizon=s.worker.correction_horizon_seconds
            )
        except StateMismatch:
            return None

    # --- rebalancing ---------------------------------------------------------------------------
    async def on_assigned(self, partitions: list[TopicPartition]) -> None:
        states = await read_states(
            self.bootstrap_servers,
            self.settings.topic(STATE.name),
            STAGE,
            [tp.partition for tp in partitions],
            settings=self.settings,
        )
        assert self.consumer is not None
        for tp in partitions:
            checkpoint, found = split_restored(states.get(tp.partition, {}), tp.partition)
            reset: list[str] = []
            for brand, state in found.items():
                windows = self._restore_brand(state)
                if windows is None:
                    reset.append(brand)
                    windows = self._new_brand(brand)
                    windows.applied_offset = state.get("applied_offset", -1)
                    self.dirty.add(brand)
                self.brands[brand] = windows
                self.partition_of[brand] = tp.partition
            if reset:
                metrics.STATE_RESETS.inc(len(reset))
                log.warning(
                    "window stage: partition %s: %d brands (%s) have window state of another size than "
                    "CRISISWATCH_WINDOW_SECONDS=%s; the configuration wins: they start afresh (their open windows "
                    "are dropped and their detectors learn again)",
                    tp.partition, len(reset), ", ".join(sorted(reset)[:5]), self.settings.worker.window_seconds,
                )  # fmt: skip
            now = time.monotonic()
            self.last_seen[tp.partition] = now
            watermark = self.watermarks[tp.partition] = self._new_watermark()
            if checkpoint is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                watermark.restore(checkpoint, now)
                self.applied[tp.partition] = checkpoint["offset"]
                self.checkpointed[tp.partition] = checkpoint["offset"]
                self.consumer.seek(tp, checkpoint["offset"] + 1)
            log.info("window stage: partition %s restored %d brands", tp.partition, len(found))

    async def on_revoked(self, partitions: list[TopicPartition]) -> None:
        revoked = {tp.partition for tp in partitions}
        await self.checkpoint(force=True)
        await self.flush()
        self.on_lost(revoked)

    def on_lost(self, partitions: set[int] | None) -> None:
        """Forget these partitions' windows, watermarks and offsets (None: all), unwritten.

        Called after a checkpoint on revocation, and without one when the group moved on without this
        member (a refused commit, an expired session, a broker that came back empty): the next owner, or
        this stage on re-assignment, restores the last checkpoint, which holds each brand's state together
        with the offset it reflects, so nothing is lost and nothing is counted twice.
        """
        if partitions is None:
            partitions = set(self.partition_of.values()) | set(self.watermarks) | set(self.applied)
        for brand in [b for b, p in self.partition_of.items() if p in partitions]:
            self.brands.pop(brand, None)
            self.partition_of.pop(brand, None)
            self.dirty.discard(brand)
        for p in partitions:
            self.watermarks.pop(p, None)
            self.applied.pop(p, None)
            self.checkpointed.pop(p, None)
            self.last_seen.pop(p, None)

    # --- processing ----------------------------------------------------------------------------
    async def process(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        produced: list[float] = []
        touched: set[int] = set()
        now_mono = time.monotonic()
        # Only the future is checked here (the enrich stage judged the age): a far-future event time would
        # drag the watermark ahead and make every later mention too late.
        bounds = event_time_bounds(
            max_age=timedelta(days=365_000),
            max_future=timedelta(seconds=self.settings.worker.record_max_future_seconds),
        ).context()
        for record in records:
            p = record.partition
            touched.add(p)
            self.last_seen[p] = now_mono
            self.applied[p] = record.offset
            watermark = self.watermarks.get(p)
            if watermark is None:
                watermark = self.watermarks[p] = self._new_watermark()
            try:
                mention = WindowedMention.model_validate_json(record.value or b"", context=bounds)
            except ValidationError as exc:
                await self.reject(record, *enriched_reason_of(exc))
                continue
            except Exception as exc:  # whatever the bytes: a dead letter, never a dead stage
                await self.reject(record, "invalid_enriched", f"{type(exc).__name__}: {exc}")
                continue
            try:
                placement, raw_time = self.place(record, mention, watermark, now_mono)
            except Exception as exc:  # one record that breaks windowing must not stop the stage
                await self.reject(record, *reason_of(exc, "window_error"))
                continue
            if placement == "too_late":
                horizon = self.settings.worker.correction_horizon_seconds
                await self.reject(
                    record,
                    "too_late",
                    f"{mention.source} mention of {mention.created_at.isoformat()} for a window of {mention.brand} "
                    f"closed more than {horizon:g} s (CRISISWATCH_CORRECTION_HORIZON_SECONDS) before",
                )
            if raw_time is not None:
                produced.append(raw_time)
        now = time.time()
        for raw_time in produced:
            metrics.PROCESSING_LATENCY.observe(max(0.0, now - raw_time))
        backlogged = await self.upstream_backlog()
        for p in touched:
            self.watermarks[p].backlogged = backlogged
            await self.close_windows(p)
        await self.checkpoint()
        self.dead_letters.flush()

    def place(
        self, record: ConsumerRecord[bytes, bytes], mention: WindowedMention, watermark: Watermark, now_mono: float
    ) -> tuple[Placement | None, float | None]:
        """Count one mention in its brand's window (or a correction) and feed the watermark.

        Returns where it went (None: no brand, or already applied) and the raw record's time, when known."""
        p = record.partition
        if mention.brand is None:
            return None, None
        windows = self.brands.get(mention.brand)
        if windows is None:
            windows = self.brands[mention.brand] = self._new_brand(mention.brand)
        self.partition_of[mention.brand] = p
        if record.offset <= windows.applied_offset:
            return None, None  # already in the restored state
        windows.applied_offset = record.offset
        t = mention.created_at.timestamp()
        key = self.sources.key(mention.source)
        placement = windows.add(t, mention_facts(mention), key)
        self.dirty.add(mention.brand)
        if placement == "late":
            metrics.LATE.labels(SourcePolicy.label(key)).inc()
        elif placement == "corrected":
            metrics.TOO_LATE.labels(SourcePolicy.label(key), "correction").inc()
        elif placement == "too_late":
            metrics.TOO_LATE.labels(SourcePolicy.label(key), "dead_letter").inc()
        headers = dict(record.headers)
        upstream = headers.get("raw-partition")
        watermark.observe(int(upstream) if upstream else -1, t, now_mono, key)
        raw_ms = headers.get("raw-timestamp-ms")
        return placement, (int(raw_ms) / 1000 if raw_ms else None)

    async def reject_window(self, partition: int, closed: ClosedWindow, exc: Exception) -> None:
        """Dead-letter a closed window that cannot be serialised (its summary, as JSON, is the original)."""
        w = closed
        summary = json.dumps({"brand": w.brand, "start": w.start, "end": w.end, "mentions": w.mentions}).encode()
        self.dead_letters.record("window_error", f"window {w.brand}@{w.start}", f"{type(exc).__name__}: {exc}")
        value = dead_letter(
            reason="window_error",
            detail=f"{type(exc).__name__}: {exc}",
            stage=self.stage_name,
            topic=self.settings.topic(SIGNALS.name),
            partition=partition,
            offset=-1,
            value=summary,
            key=w.brand.encode()[:1024],
            max_bytes=self.settings.worker.dead_letter_max_bytes,
        )
        await self.send(MENTIONS_DLQ.name, value, key=w.brand.encode()[:1024])

    async def close_windows(self, partition: int) -> None:
        """Close the windows of this partition's brands that every live source feeding them has passed, and
        publish them, then the brands' pending corrections."""
        tracker = self.watermarks.get(partition)
        if tracker is None:
            return
        now = time.monotonic()
        watermark = tracker.current(now)
        if watermark is None:
            return
        metrics.WATERMARK.set(watermark)
        points = tracker.source_points(now)
        for brand, windows in self.brands.items():
            if self.partition_of.get(brand) != partition:
                continue
            closing = tracker.closing_point(windows.sources, now, points)
            closed = windows.close_until(closing) if closing is not None else []
            corrections = windows.take_corrections()
            for item in [*closed, *corrections]:
                try:
                    value = item.model_dump_json().encode()  # the closed window is the signal
                except Exception as exc:  # a window that cannot become a signal is dead-lettered, not fatal
                    await self.reject_window(partition, item, exc)
                    continue
                await self.send(SIGNALS.name, value, key=brand.encode())
                if item.revision:
                    metrics.CORRECTIONS.inc()
                    continue
                metrics.WINDOWS_CLOSED.inc()
                if item.volume.spike:
                    metrics.SPIKES.labels("volume").inc()
                if item.negativity.spike:
                    metrics.SPIKES.labels("negativity").inc()
            if closed or corrections:
                self.dirty.add(brand)
        metrics.OPEN_WINDOWS.set(sum(len(w.open) for w in self.brands.values()))

    async def on_idle(self) -> None:
        """Advance idle partitions' watermarks to the wall clock, closing windows nobody will add to.

        Only when the silence is real (`ClosingPolicy.should_flush`): a lagging or restarting enrich stage
        (a backlog in ``mentions.raw``) is not silence, and moving event time to the wall clock then would
        turn every mention still on its way into a late one. A source that is still live keeps its brands'
        windows open for its own lateness after the flush.
        """
        now_mono, now = time.monotonic(), time.time()
        idle = [
            p
            for p, tracker in self.watermarks.items()
            if self.closing.may_flush(now_mono - self.last_seen.get(p, now_mono), tracker.value, now)
        ]
        if idle and await self.upstream_quiet():
            log.debug("window stage: partitions %s idle and upstream quiet: event time moves to now", idle)
            for p in idle:
                self.watermarks[p].advance_to(now)
                await self.close_windows(p)
        # Going idle: make everything processed so far durable (and committed) now, not at the next tick.
        await self.checkpoint(force=self.applied != self.checkpointed)
        await self.flush()

    async def upstream_lags(self) -> dict[int, int] | None:
        """Records of each ``mentions.raw`` partition the enrich stage has not committed yet (None: the broker
        did not say). Asked at most every ``QUIET_RECHECK_SECONDS``."""
        checked_at, lags = self.lags_checked
        if time.monotonic() - checked_at < QUIET_RECHECK_SECONDS:
            return lags
        assert self.consumer is not None
        try:
            lags = await committed_lags(
                self.admin,
                self.consumer,
                f"{self.settings.kafka.app_id}-{UPSTREAM_STAGE}",
                self.settings.topic(MENTIONS_RAW.name),
                self.settings.kafka.partitions,
            )
        except KafkaError as exc:
            log.warning("window stage: cannot tell how far behind the enrich stage is: %s", exc)
            lags = None
        self.lags_checked = (time.monotonic(), lags)
        return lags

    async def upstream_backlog(self) -> frozenset[int]:
        """The raw partitions the enrich stage still has records of: their silence is not idleness
        (`Watermark.backlogged`). Unknown (a broker error) counts as none, as before the check existed."""
        lags = await self.upstream_lags()
        return frozenset(p for p, lag in (lags or {}).items() if lag > 0)

    async def upstream_quiet(self) -> bool:
        """Whether the enrich stage has committed all of ``mentions.raw`` and this stage has fetched all of
        ``mentions.enriched`` (a broker error counts as not quiet). Reused for ``QUIET_RECHECK_SECONDS``."""
        checked_at, quiet = self.quiet_checked
        if time.monotonic() - checked_at < QUIET_RECHECK_SECONDS:
            return quiet
        quiet = await self._upstream_quiet()
        self.quiet_checked = (time.monotonic(), quiet)
        return quiet

    async def _upstream_quiet(self) -> bool:
        lags = await self.upstream_lags()
        if lags is None or any(lags.values()):
            return False
        assert self.consumer is not None
        try:
            assigned = list(self.consumer.assignment())
            ends = await self.consumer.end_offsets(assigned)
            for tp in assigned:
                if ends[tp] > await self.consumer.position(tp):
                    return False
        except KafkaError as exc:
            log.warning("window stage: cannot tell whether upstream is quiet: %s", exc)
            return False
        return True

    async def checkpoint(self, force: bool = False) -> None:
        """Queue a `Checkpoint` (dirty brand states, then each partition's offset and watermark) after the
        outputs already queued; the offsets are committed once the broker acknowledged all of it."""
        if not force and time.monotonic() - self.last_checkpoint < self.settings.worker.state_checkpoint_seconds:
            return
        self.last_checkpoint = time.monotonic()
        checkpoint = Checkpoint(STAGE)
        for brand in self.dirty:
            windows = self.brands.get(brand)
            if windows is not None:
                checkpoint.state(brand, windows.to_state(), self.partition_of[brand])
        self.dirty.clear()
        for p, offset in self.applied.items():
            tracker = self.watermarks.get(p)
            checkpoint.position(p, offset, **(tracker.to_state() if tracker else {"watermark": None}))
        for key, value, partition in checkpoint.records:
            await self.send(STATE.name, value, key=key, partition=partition)
        for p, offset in checkpoint.offsets.items():
            self.checkpointed[p] = offset
            self.commit_through(p, offset)

"""The risk stage: ``signals`` → per-brand risk and alert episodes → ``alerts`` → pause on ``publishing.control``.

Signals are few (one per brand and window), so this stage is a plain faust agent handling one signal
at a time. Its per-brand state (the risk monitor with its alert episode) is changelogged to the state
topic after every signal; a signal for a window the brand already assessed (a replay after a restart)
is ignored, and the control plane refuses to pause twice for one episode, so a restart never double
alerts or double pauses. It follows the checkpoint protocol of `stream.state_store.Checkpoint`: the
alert and the pause first, then the brand's state (acknowledged), and only then does faust commit the
signal's offset. It restores only the brands of its assigned ``signals`` partitions.

A correction (a signal with ``revision`` >= 1: mentions that reached a window after it closed) does not
re-decide its window, whose decision stands: an alert already sent is neither withdrawn nor changed. Its
late mentions are carried into the next window the brand assesses (`ClosedWindow.with_late`), where they may
raise that decision (open, escalate, or keep an episode from resolving).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer

from crisiswatch.brands_file import BrandsWatch
from crisiswatch.contracts.records import Alert, Signal
from crisiswatch.contracts.topics import ALERTS, STATE
from crisiswatch.control import ControlPlane
from crisiswatch.control.silences import SilenceStore, open_silences
from crisiswatch.follow import read_states
from crisiswatch.kafka import new_producer
from crisiswatch.settings import Settings
from crisiswatch.stream import metrics
from crisiswatch.stream.decisions import RiskBook
from crisiswatch.stream.state_store import Checkpoint

log = logging.getLogger(__name__)

STAGE = "risk"
MAX_CORRECTED_WINDOWS = 1440
"""Windows per brand whose last correction revision is remembered (a day of one-minute windows)."""


class RiskStage:
    """Holds the per-brand monitors, the producer and the control plane of the risk agent."""

    def __init__(self, settings: Settings, bootstrap_servers: str):
        self.settings = settings
        self.bootstrap_servers = bootstrap_servers
        self.policy = settings.risk.policy()
        self.brands = BrandsWatch(settings.worker.brands_file)
        self.book = RiskBook(self.policy, self.brands.policies)
        self.silences: SilenceStore | None = None
        self.producer: AIOKafkaProducer | None = None
        self.control: ControlPlane | None = None
        self._loaded = False
        self.assigned: list[int] | None = None
        """The ``signals`` partitions assigned to this worker (None: not told; all of them)."""
        self.carry: dict[str, Signal] = {}
        """Per brand, the corrections not yet carried into an assessed window (their late mentions only)."""
        self.corrected: dict[str, dict[float, int]] = {}
        """Per brand, the last correction revision taken per window start (replays are skipped)."""

    async def start(self) -> None:
        self.producer = new_producer(self.bootstrap_servers, settings=self.settings, linger_ms=0)
        await self.producer.start()
        if self.settings.control.control_keys is not None:
            self.control = ControlPlane.from_settings(self.settings)
            await self.control.start()
        else:
            log.warning("CRISISWATCH_CONTROL_KEYS is not set: alerts are published but nothing can be paused")
        self.silences = await open_silences(self.settings, self.control.keyring if self.control else None)
        self.book.silences = self.silences.covering if self.silences is not None else None

    async def stop(self) -> None:
        if self.silences is not None:
            await self.silences.stop()
        if self.control is not None:
            await self.control.stop()
        if self.producer is not None:
            await self.producer.stop()

    def invalidate(self, partitions: Iterable[int] | None = None) -> None:
        """Partitions moved: reload the state of the ``signals`` partitions now assigned (None: all of them)
        before the next signal."""
        self.assigned = None if partitions is None else sorted(set(partitions))
        self._loaded = False

    async def _load(self) -> None:
        """Restore the brands of the assigned partitions only (their state lives in the same partition of
        the state topic); the configured policy wins over the stored one (`RiskBook.restore`)."""
        partitions = range(self.settings.kafka.partitions) if self.assigned is None else self.assigned
        states = await read_states(
            self.bootstrap_servers, self.settings.topic(STATE.name), STAGE, partitions, settings=self.settings
        )
        self.book.clear()
        self.carry.clear()
        self.corrected.clear()
        for by_brand in states.values():
            for brand, state in by_brand.items():
                if "monitor" in state:
                    self.book.restore(brand, state)
                if state.get("carry"):
                    self.carry[brand] = Signal.model_validate(state["carry"])
                self.corrected[brand] = {float(start): int(n) for start, n in state.get("corrected", [])}
        self._loaded = True

    async def _correct(self, signal: Signal, partition: int) -> None:
        """A correction of a window the brand already assessed: its decision stands (an alert already sent is
        neither withdrawn nor changed), and the late mentions are carried into the next window the brand
        assesses, where they may raise that decision. A correction seen before (a replay) is skipped."""
        brand, start = signal.brand, signal.window_start.timestamp()
        seen = self.corrected.setdefault(brand, {})
        if signal.revision <= seen.get(start, 0):
            return
        seen[start] = signal.revision
        while len(seen) > MAX_CORRECTED_WINDOWS:
            del seen[min(seen)]
        held = self.carry.get(brand)
        self.carry[brand] = signal if held is None else held.with_late(signal)
        metrics.CORRECTIONS_CARRIED.inc()
        await self._checkpoint(brand, partition)

    async def _checkpoint(self, brand: str, partition: int) -> None:
        """Step 2 of the checkpoint protocol (`stream.state_store.Checkpoint`), after the outputs: the brand's
        state, acknowledged before faust may commit the signal's offset (step 3)."""
        assert self.producer is not None
        state: dict[str, Any] = self.book.brand_state(brand) if brand in self.book.monitors else {}
        held = self.carry.get(brand)
        state["carry"] = held.model_dump(mode="json") if held is not None else None
        state["corrected"] = [[start, n] for start, n in self.corrected.get(brand, {}).items()]
        checkpoint = Checkpoint(STAGE)
        checkpoint.state(brand, state, partition % self.settings.kafka.partitions)
        for key, value, part in checkpoint.records:
            await self.producer.send_and_wait(self.settings.topic(STATE.name), value, key=key, partition=part)

    async def handle(self, signal: Signal, partition: int) -> Alert | None:
        """Assess one closed window; publish an alert (and a pause) when the episode changes."""
        assert self.producer is not None
        if not self._loaded:
            await self._load()
        self.reload_policies()
        if signal.revision:
            await self._correct(signal, partition)
            return None
        held = self.carry.get(signal.brand)
        decided = self.book.decide(signal if held is None else signal.with_late(held))
        if decided is None:
            return None  # already assessed (replayed after a restart)
        self.carry.pop(signal.brand, None)
        if decided.silence is not None and decided.decision.assessment.pause:
            silence = decided.silence
            log.warning("%s would pause but is silenced (%s: %s)", signal.brand, silence.id, silence.reason)
        alert = decided.alert
        if alert is not None:
            await self.producer.send_and_wait(
                self.settings.topic(ALERTS.name), alert.model_dump_json().encode(), key=signal.brand.encode()
            )
            metrics.ALERTS.labels(alert.severity, decided.decision.alert_kind or "").inc()
            if decided.pause_scope is not None:
                await self._pause(decided.pause_scope, alert)
        await self._checkpoint(signal.brand, partition)
        return alert

    def reload_policies(self) -> None:
        """Take a changed brands file's per-brand policies (an invalid file keeps the current ones)."""
        policies = self.brands.poll()
        if policies is None:
            return
        changes = self.book.set_policies(self.policy, policies)
        for line in changes:
            log.warning("brand policy changed: %s", line)
        if not changes:
            log.warning("brands file %s changed; no brand policy changed", self.brands.path)

    async def _pause(self, scope: str, alert: Alert) -> None:
        if self.control is None:
            log.error("risk policy asks to pause for %s but no control keys are configured", alert.alert_id)
            return
        result = await self.control.pause(scope, reason=alert.summary, actor="detector", alert_id=alert.alert_id)
        if result.changed:
            metrics.PAUSES.inc()
        log.warning("pause %s for %s: %s", scope, alert.alert_id, result.note)

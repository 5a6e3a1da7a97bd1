"""The risk stage: ``signals`` → per-brand risk and alert episodes → ``alerts`` → pause on ``publishing.control``.

Signals are few (one per brand and window), so this stage is a plain faust agent handling one signal
at a time. Its per-brand state (the risk monitor with its alert episode) is changelogged to the state
topic after every signal; a signal for a window the brand already assessed (a replay after a restart)
is ignored, and the control plane refuses to pause twice for one episode, so a restart never double
alerts or double pauses.
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaProducer

from crisiswatch.control import ControlPlane
from crisiswatch.control.silences import SilenceStore, open_silences
from crisiswatch.settings import Settings
from detectors.risk import RiskPolicy
from stream import metrics
from stream.batch_stage import new_producer
from stream.brands_file import BrandsWatch
from stream.decisions import RiskBook
from stream.records import Alert, Signal
from stream.state_store import encode_state, read_states, state_key
from stream.topics import ALERTS, STATE

log = logging.getLogger(__name__)

STAGE = "risk"


def policy_from(settings: Settings) -> RiskPolicy:
    """The risk policy the settings describe (``risk_policy`` may set any other field of `RiskPolicy`)."""
    return RiskPolicy.from_settings(settings, **settings.risk_policy)


class RiskStage:
    """Holds the per-brand monitors, the producer and the control plane of the risk agent."""

    def __init__(self, settings: Settings, bootstrap_servers: str):
        self.settings = settings
        self.bootstrap_servers = bootstrap_servers
        self.policy = policy_from(settings)
        self.brands = BrandsWatch(settings.brands_file)
        self.book = RiskBook(self.policy, self.brands.policies)
        self.silences: SilenceStore | None = None
        self.producer: AIOKafkaProducer | None = None
        self.control: ControlPlane | None = None
        self._loaded = False

    async def start(self) -> None:
        self.producer = new_producer(self.bootstrap_servers, settings=self.settings, linger_ms=0)
        await self.producer.start()
        if self.settings.control_keys is not None:
            self.control = ControlPlane(self.settings)
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

    def invalidate(self) -> None:
        """Partitions moved: reload state before the next signal."""
        self._loaded = False

    async def _load(self) -> None:
        states = await read_states(
            self.bootstrap_servers,
            self.settings.topic(STATE.name),
            STAGE,
            range(self.settings.partitions),
            settings=self.settings,
        )
        self.book.clear()
        for by_brand in states.values():
            for brand, state in by_brand.items():
                self.book.restore(brand, state)
        self._loaded = True

    async def handle(self, signal: Signal, partition: int) -> Alert | None:
        """Assess one closed window; publish an alert (and a pause) when the episode changes."""
        assert self.producer is not None
        if not self._loaded:
            await self._load()
        self.reload_policies()
        decided = self.book.decide(signal)
        if decided is None:
            return None  # already assessed (replayed after a restart)
        alert = decided.alert
        if alert is not None:
            await self.producer.send_and_wait(
                self.settings.topic(ALERTS.name), alert.model_dump_json().encode(), key=signal.brand.encode()
            )
            metrics.ALERTS.labels(alert.severity, decided.decision.alert_kind or "").inc()
            if decided.pause_scope is not None:
                await self._pause(decided.pause_scope, alert)
        await self.producer.send_and_wait(
            self.settings.topic(STATE.name),
            encode_state(self.book.brand_state(signal.brand)),
            key=state_key(STAGE, signal.brand),
            partition=partition % self.settings.partitions,
        )
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

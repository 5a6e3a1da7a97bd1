"""The risk stage: ``signals`` → per-brand risk and alert episodes → ``alerts`` → pause on ``publishing.control``.

Signals are few (one per brand and window), so this stage is a plain faust agent handling one signal
at a time. Its per-brand state (the risk monitor with its alert episode) is changelogged to the state
topic after every signal; a signal for a window the brand already assessed (a replay after a restart)
is ignored, and the control plane refuses to pause twice for one episode, so a restart never double
alerts or double pauses.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from aiokafka import AIOKafkaProducer

from crisiswatch.control import ControlPlane
from crisiswatch.settings import Settings
from detectors.risk import BrandRiskMonitor, RiskDecision, RiskPolicy
from detectors.spikes import SpikeResult
from detectors.window import WindowSummary
from stream import metrics
from stream.batch_stage import new_producer
from stream.records import Alert, Signal, SpikeScore, utcnow
from stream.state_store import encode_state, read_states, state_key
from stream.topics import ALERTS, STATE

log = logging.getLogger(__name__)

STAGE = "risk"


def policy_from(settings: Settings) -> RiskPolicy:
    """The risk policy the settings describe (``risk_policy`` may set any other field of `RiskPolicy`)."""
    return RiskPolicy.from_settings(settings, **settings.risk_policy)


def _spike(score: SpikeScore) -> SpikeResult:
    return SpikeResult(
        observed=score.observed,
        expected=score.expected,
        score=score.score,
        p_value=score.p_value,
        spike=score.spike,
        windows=score.windows,
    )


def summary_of(signal: Signal) -> WindowSummary:
    """The detectors' view of a closed window carried by a signal."""
    return WindowSummary(
        brand=signal.brand,
        start=signal.window_start.timestamp(),
        end=signal.window_end.timestamp(),
        mentions=signal.mentions,
        negative=signal.negative,
        neutral=signal.neutral,
        positive=signal.positive,
        reach=signal.reach,
        late_mentions=signal.late_mentions,
        story_count=signal.stories,
        negative_story_count=signal.negative_stories,
        languages=Counter(signal.languages),
        sources=Counter(signal.sources),
        crisis_terms=Counter(signal.crisis_terms),
        top=[m.model_dump() for m in signal.top_mentions],
    )


def alert_of(signal: Signal, decision: RiskDecision) -> Alert:
    """The ``alerts`` record of a decision that opened, escalated or resolved an episode."""
    a = decision.assessment
    return Alert(
        alert_id=decision.episode_id or f"{signal.brand}:{int(signal.window_start.timestamp())}",
        brand=signal.brand,
        status="resolved" if decision.alert_kind == "resolved" else "firing",
        severity=a.severity,
        risk=round(float(a.risk), 2),
        event_time=signal.window_end,
        window_start=signal.window_start,
        summary=a.summary,
        explanation=list(a.explanation),
        evidence=dict(a.evidence),
        pause=decision.pause,
        created_at=utcnow(),
    )


class RiskStage:
    """Holds the per-brand monitors, the producer and the control plane of the risk agent."""

    def __init__(self, settings: Settings, bootstrap_servers: str):
        self.settings = settings
        self.bootstrap_servers = bootstrap_servers
        self.policy = policy_from(settings)
        self.monitors: dict[str, BrandRiskMonitor] = {}
        self.last_window: dict[str, float] = {}
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

    async def stop(self) -> None:
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
        self.monitors.clear()
        self.last_window.clear()
        for by_brand in states.values():
            for brand, state in by_brand.items():
                self.monitors[brand] = BrandRiskMonitor.from_state(state["monitor"], self.policy)
                self.last_window[brand] = state["last_window"]
        self._loaded = True

    def _monitor(self, brand: str) -> BrandRiskMonitor:
        monitor = self.monitors.get(brand)
        if monitor is None:
            monitor = self.monitors[brand] = BrandRiskMonitor(brand, self.policy)
        return monitor

    async def handle(self, signal: Signal, partition: int) -> Alert | None:
        """Assess one closed window; publish an alert (and a pause) when the episode changes."""
        assert self.producer is not None
        if not self._loaded:
            await self._load()
        start = signal.window_start.timestamp()
        if start <= self.last_window.get(signal.brand, float("-inf")):
            return None  # already assessed (replayed after a restart)
        decision = self._monitor(signal.brand).observe(
            summary_of(signal), _spike(signal.volume), _spike(signal.negativity)
        )
        self.last_window[signal.brand] = start
        alert = alert_of(signal, decision) if decision.alert_kind else None
        if alert is not None:
            await self.producer.send_and_wait(
                self.settings.topic(ALERTS.name), alert.model_dump_json().encode(), key=signal.brand.encode()
            )
            metrics.ALERTS.labels(alert.severity, decision.alert_kind or "").inc()
            if decision.pause:
                await self._pause(alert)
        state: dict[str, Any] = {"monitor": self.monitors[signal.brand].to_state(), "last_window": start}
        await self.producer.send_and_wait(
            self.settings.topic(STATE.name),
            encode_state(state),
            key=state_key(STAGE, signal.brand),
            partition=partition % self.settings.partitions,
        )
        return alert

    async def _pause(self, alert: Alert) -> None:
        if self.control is None:
            log.error("risk policy asks to pause for %s but no control keys are configured", alert.alert_id)
            return
        scope = "global" if self.settings.pause_scope == "global" else f"brand:{alert.brand}"
        result = await self.control.pause(scope, reason=alert.summary, actor="detector", alert_id=alert.alert_id)
        if result.changed:
            metrics.PAUSES.inc()
        log.warning("pause %s for %s: %s", scope, alert.alert_id, result.note)

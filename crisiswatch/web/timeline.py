"""Per-brand timelines for the page's charts: what the risk stage saw, window by window, with alert and pause marks.

`TimelineFeed` follows three topics with no consumer group (nothing committed):

* ``signals`` (the risk stage's input), from the start of retention but at most ``start_limit`` records
  back per partition; each signal goes through the worker's own decision code (`stream.decisions.RiskBook`
  with the configured policy and the brands file's per-brand policies, reloaded when the file changes as
  the risk stage does), so every window gets the same risk, expected level and usual negative share the
  worker computed (a brand whose older signals fell out of retention starts with a younger baseline), and
  each brand's chart draws the warning and critical lines of its own policy;
* ``alerts``: when each episode opened, escalated and resolved (event time);
* ``publishing.audit`` (signed; records that do not verify are ignored): pauses and resumes of ``global``
  and ``brand:<id>``. A pause the risk policy asked for is marked at the event time of its alert; a
  person's pause at the end of the last window the brand had closed by then (event time and wall time
  differ while a replay runs).

`TimelineStore` keeps, per brand, at most ``max_points`` windows and ``max_hours`` of event time behind the
newest window (plus the full evidence of the newest window only), and at most ``max_marks`` marks.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from crisiswatch.brands_file import BrandsWatch
from crisiswatch.contracts.control import AuditRecord
from crisiswatch.contracts.records import Alert, Signal
from crisiswatch.contracts.topics import ALERTS, PUBLISHING_AUDIT, SIGNALS
from crisiswatch.control.messages import ControlRejected, Keyring
from crisiswatch.detectors.brands import BrandsFileError
from crisiswatch.detectors.evidence import Evidence, VolumeEvidence
from crisiswatch.detectors.risk import RiskPolicy
from crisiswatch.follow import TopicFollower
from crisiswatch.settings import Settings
from crisiswatch.stream.decisions import RiskBook

log = logging.getLogger(__name__)

MAX_HOURS = 24.0
MAX_POINTS = 3000
MAX_MARKS = 200
START_LIMIT = 50_000
"""Signals read back per partition on start (the risk replay's cost grows with it)."""
SHARE_POOL = 5
"""The negative share is drawn over this many windows (mention-weighted): one window of a quiet brand is
a handful of mentions, whose share jumps between 0 and 100%."""


@dataclass(frozen=True)
class Point:
    """One closed window as the chart draws it (times in epoch seconds, event time)."""

    start: float
    end: float
    mentions: int
    negative: int
    stories: int
    expected: float
    """Expected distinct stories in the window (the volume detector's baseline)."""
    negative_share: float
    usual_share: float
    risk: float
    severity: str
    written: float
    """When the signal was written (broker timestamp, wall time): places a person's pause on event time."""
    positive: int = 0
    ratio: float | None = None
    """Stories against the expected level as the risk stage computes it (damped: (stories+1)/(expected+1))."""
    languages: tuple[str, ...] = ()
    terms: tuple[tuple[str, int], ...] = ()
    """The window's three most frequent crisis terms (what the plain-words headline names)."""

    def evidence(self) -> Evidence:
        """What `crisiswatch.alerting.plain.plain_headline` reads, for this window."""
        return Evidence(
            mentions=self.mentions,
            negative=self.negative,
            positive=self.positive,
            negative_share=self.negative_share,
            expected_negative_share=self.usual_share,
            volume=VolumeEvidence(observed=self.stories, expected=self.expected, ratio=self.ratio),
            languages=dict.fromkeys(self.languages, 1),
            crisis_terms=dict(self.terms),
        )

    @property
    def minutes(self) -> float:
        return max((self.end - self.start) / 60.0, 1e-9)


@dataclass
class Mark:
    """An alert change or a pause/resume on a brand's chart."""

    kind: str
    """``alert`` (an episode opened, escalated or resolved), ``pause`` or ``resume``."""
    at: float | None
    """Event time, or None while a pause's alert (or a window before a person's pause) is not known yet."""
    label: str
    scope: str | None = None
    alert_id: str | None = None
    severity: str | None = None
    status: str | None = None
    actor: str | None = None
    wall: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None and k != "wall"}


@dataclass
class BrandTimeline:
    """One brand's recent windows, marks and newest evidence."""

    points: deque[Point] = field(default_factory=lambda: deque(maxlen=MAX_POINTS))
    marks: deque[Mark] = field(default_factory=lambda: deque(maxlen=MAX_MARKS))
    latest_evidence: Evidence = field(default_factory=Evidence)


class TimelineStore:
    """The in-memory timelines: feed it signals, alerts and audit records in topic order.

    ``brands`` (optional) is the brands file's `crisiswatch.brands_file.BrandsWatch`: each brand's windows are
    assessed under its own policy, and a changed file applies from the brand's next window on, as in the risk
    stage (its only I/O: one ``stat`` per signal and per chart request).
    """

    def __init__(
        self,
        policy: RiskPolicy,
        *,
        brands: BrandsWatch | None = None,
        max_hours: float = MAX_HOURS,
        max_points: int = MAX_POINTS,
        max_marks: int = MAX_MARKS,
    ):
        self.policy = policy
        self.watch = brands
        self.book = RiskBook(policy, brands.policies if brands is not None else None)
        self.max_hours = max_hours
        self.max_points = max_points
        self.max_marks = max_marks
        self.brands: dict[str, BrandTimeline] = {}
        self.global_marks: deque[Mark] = deque(maxlen=max_marks)
        self._alert_times: dict[str, float] = {}
        """alert_id -> event time of the record that asked for the pause (else of the first one seen)."""
        self._alert_state: dict[str, tuple[str, str]] = {}

    def brand(self, brand: str) -> BrandTimeline:
        found = self.brands.get(brand)
        if found is None:
            found = self.brands[brand] = BrandTimeline(deque(maxlen=self.max_points), deque(maxlen=self.max_marks))
        return found

    def reload_policies(self) -> None:
        """Take a changed brands file's per-brand policies (an invalid file keeps the current ones)."""
        policies = self.watch.poll() if self.watch is not None else None
        if policies is not None:
            for line in self.book.set_policies(self.policy, policies):
                log.info("timelines: brand policy changed: %s", line)

    def thresholds(self, brand: str) -> dict[str, float]:
        """The warning and critical risk of ``brand``'s own policy (the chart's threshold lines)."""
        policy = self.book.policy_for(brand)
        return {"warning": policy.warning_at, "critical": policy.critical_at}

    def add_signal(self, signal: Signal, written: float) -> None:
        """Assess one signal as the risk stage does (a window already assessed is ignored)."""
        self.reload_policies()
        decided = self.book.decide(signal, created_at=signal.window_end)
        if decided is None:
            return
        assessment = decided.decision.assessment
        ev = assessment.evidence
        volume = ev.volume or VolumeEvidence()
        timeline = self.brand(signal.brand)
        timeline.points.append(
            Point(
                start=signal.window_start.timestamp(),
                end=signal.window_end.timestamp(),
                mentions=signal.mentions,
                negative=signal.negative,
                stories=ev.stories if ev.stories is not None else signal.stories,
                expected=volume.expected or 0.0,
                negative_share=ev.share if ev.share is not None else signal.negative_share,
                usual_share=ev.expected_negative_share or 0.0,
                risk=assessment.risk,
                severity=assessment.severity,
                written=written,
                positive=signal.positive,
                ratio=volume.ratio,
                languages=tuple(k for k, v in signal.languages.items() if v and k != "und"),
                terms=tuple(sorted(signal.crisis_terms.items(), key=lambda kv: (-kv[1], kv[0]))[:3]),
            )
        )
        timeline.latest_evidence = ev
        horizon = timeline.points[-1].end - self.max_hours * 3600
        while timeline.points and timeline.points[0].end < horizon:
            timeline.points.popleft()

    def add_alert(self, alert: Alert) -> None:
        """Mark an episode's changes: opened, escalated (severity changed) and resolved."""
        at = alert.event_time.timestamp()
        if alert.pause or alert.alert_id not in self._alert_times:
            self._alert_times[alert.alert_id] = at
        state = (alert.status, alert.severity)
        previous = self._alert_state.get(alert.alert_id)
        if previous == state:
            return
        self._alert_state[alert.alert_id] = state
        if alert.status == "resolved":
            label = "alert resolved"
        elif previous is None:
            label = f"{alert.severity} alert"
        else:
            label = f"escalated to {alert.severity}"
        self.brand(alert.brand).marks.append(
            Mark("alert", at, label, alert_id=alert.alert_id, severity=alert.severity, status=alert.status)
        )
        while len(self._alert_times) > 4 * self.max_marks:
            self._alert_times.pop(next(iter(self._alert_times)))
            self._alert_state.pop(next(iter(self._alert_state)), None)

    def add_audit(self, record: AuditRecord) -> None:
        """Mark a pause or resume of ``global`` or ``brand:<id>`` (other scopes and schedule edits are skipped)."""
        if record.action not in ("pause", "resume"):
            return
        if record.scope != "global" and not record.scope.startswith("brand:"):
            return
        paused = record.state == "paused" if record.state else record.action == "pause"
        kind = "pause" if paused else "resume"
        where = "everywhere" if record.scope == "global" else "this brand"
        label = f"{'paused' if paused else 'resumed'} {where}"
        mark = Mark(
            kind, None, label, scope=record.scope, alert_id=record.alert_id, actor=record.actor,
            wall=record.at.timestamp(),
        )  # fmt: skip
        if record.scope == "global":
            self.global_marks.append(mark)
        else:
            self.brand(record.scope.partition(":")[2]).marks.append(mark)

    def peak_between(self, brand: str, start: float, end: float) -> Point | None:
        """The brand's worst window in ``[start, end]``: highest risk, then most stories."""
        timeline = self.brands.get(brand)
        if timeline is None:
            return None
        inside = [p for p in timeline.points if start <= p.start <= end]
        return max(inside, key=lambda p: (p.risk, p.stories), default=None)

    def _place(self, mark: Mark, points: deque[Point]) -> float | None:
        if mark.at is not None:
            return mark.at
        if mark.kind == "pause" and mark.alert_id and mark.alert_id in self._alert_times:
            return self._alert_times[mark.alert_id]
        if mark.wall is None or not points:
            return None
        placed = None
        for point in points:  # the last window written by then (points are in event-time order)
            if point.written <= mark.wall:
                placed = point.end
        return placed

    def timeline_json(self, brand: str, hours: float, name: str | None = None) -> dict[str, Any] | None:
        """The chart data of ``brand`` over the last ``hours`` of its event time; None for an unknown brand."""
        timeline = self.brands.get(brand)
        if timeline is None:
            return None
        self.reload_policies()
        points = list(timeline.points)
        end = points[-1].end if points else None
        since = end - hours * 3600 if end is not None else -math.inf
        shown = [p for p in points if p.end >= since]
        marks = []
        for mark in [*timeline.marks, *self.global_marks]:
            at = self._place(mark, timeline.points)
            if at is None or at < since or (end is not None and at > end + 3600):
                continue
            marks.append({**mark.to_json(), "at": at})
        marks.sort(key=lambda m: m["at"])
        latest = shown[-1] if shown else None
        pooled = _pooled_shares(points, len(points) - len(shown))
        return {
            "brand": brand,
            "name": name or brand,
            "hours": hours,
            "window_seconds": (latest.end - latest.start) if latest else None,
            "thresholds": self.thresholds(brand),
            "columns": {
                "start": [p.start for p in shown],
                "mentions": [p.mentions for p in shown],
                "stories": [p.stories for p in shown],
                "per_minute": [round(p.stories / p.minutes, 3) for p in shown],
                "expected_per_minute": [round(p.expected / p.minutes, 3) for p in shown],
                "band_per_minute": [round(_band(p.expected) / p.minutes, 3) for p in shown],
                "negative_share": [None if share is None else round(share, 4) for share, _ in pooled],
                "usual_share": [round(p.usual_share, 4) for p in shown],
                "usual_band": [
                    round(_share_band(p.usual_share, n), 4) if n else None
                    for p, (_, n) in zip(shown, pooled, strict=True)
                ],
                "risk": [round(p.risk, 2) for p in shown],
                "severity": [p.severity for p in shown],
            },
            "marks": marks,
            "latest": {**_latest(latest, timeline.latest_evidence), "trend": trend(points)} if latest else None,
        }


def _pooled_shares(points: list[Point], first: int) -> list[tuple[float | None, int]]:
    """(negative share, mentions) over the `SHARE_POOL` windows ending at each point from ``first`` on."""
    out: list[tuple[float | None, int]] = []
    for i in range(first, len(points)):
        pool = points[max(0, i - SHARE_POOL + 1) : i + 1]
        mentions = sum(p.mentions for p in pool)
        out.append((sum(p.negative for p in pool) / mentions if mentions else None, mentions))
    return out


def _band(expected: float) -> float:
    """The top of the expected band (as the backtest picture draws it: expected + 3 sd, Poisson)."""
    return expected + 3.0 * math.sqrt(max(expected, 1.0))


def _share_band(usual: float, mentions: int) -> float:
    """The top of the usual negative-share band (+2 standard errors at this window's size)."""
    return min(1.0, usual + 2.0 * math.sqrt(max(usual * (1 - usual), 0.0) / max(mentions, 1)))


def window_numbers(point: Point) -> dict[str, Any]:
    """One window in numbers (what an alert card shows as "now" or "at its peak")."""
    return {
        "start": point.start,
        "end": point.end,
        "mentions": point.mentions,
        "stories": point.stories,
        "expected": round(point.expected, 2),
        "ratio": round(point.ratio, 2) if point.ratio is not None else None,
        "per_minute": round(point.stories / point.minutes, 2),
        "negative_share": round(point.negative_share, 4),
        "usual_share": round(point.usual_share, 4),
        "risk": round(point.risk, 1),
        "severity": point.severity,
        "languages": len(point.languages),
    }


TREND_WINDOWS = 3


def trend(points: list[Point]) -> str | None:
    """``rising``, ``falling`` or ``steady``: stories in the last `TREND_WINDOWS` windows against the ones before
    (a change of a quarter, and of at least two stories a window); None with too few windows."""
    if len(points) < 2 * TREND_WINDOWS:
        return None
    recent = sum(p.stories for p in points[-TREND_WINDOWS:]) / TREND_WINDOWS
    before = sum(p.stories for p in points[-2 * TREND_WINDOWS : -TREND_WINDOWS]) / TREND_WINDOWS
    if recent >= before * 1.25 and recent - before >= 2:
        return "rising"
    if recent <= before * 0.8 and before - recent >= 2:
        return "falling"
    return "steady"


def _latest(point: Point, evidence: Evidence) -> dict[str, Any]:
    return {**window_numbers(point), "evidence": evidence}


def brands_watch(settings: Settings) -> BrandsWatch | None:
    """A watch on the brands file the risk stage reads (None, with a warning, when it cannot be read: the
    charts then use the global policy for every brand)."""
    try:
        return BrandsWatch(settings.worker.brands_file)
    except BrandsFileError as exc:
        log.warning("timelines: brands file not readable, charts use the global policy for every brand: %s", exc)
        return None


class TimelineFeed:
    """Follows ``signals``, ``alerts`` and ``publishing.audit`` into a `TimelineStore` (see the module doc)."""

    def __init__(
        self,
        settings: Settings,
        keyring: Keyring,
        policy: RiskPolicy | None = None,
        *,
        start_limit: int = START_LIMIT,
        store: TimelineStore | None = None,
    ):
        if not settings.kafka.bootstrap_servers:
            raise ValueError("no Kafka bootstrap servers: set KAFKA_BOOTSTRAP_SERVERS")
        if policy is None:

            policy = settings.risk.policy()
        self.settings = settings
        self.keyring = keyring
        self.store = store or TimelineStore(policy, brands=brands_watch(settings))
        self.start_limit = start_limit
        self.topics = {
            settings.topic(SIGNALS.name): "signal",
            settings.topic(ALERTS.name): "alert",
            settings.topic(PUBLISHING_AUDIT.name): "audit",
        }
        self.follower = TopicFollower(
            settings.kafka.bootstrap_servers,
            tuple(self.topics),
            self._on_record,
            name="timelines",
            fetch_max_wait_ms=300,
            settings=settings,
            component="timelines",
            tail=lambda tp: start_limit if self.topics[tp.topic] == "signal" else 10 * start_limit,
            max_records=2000,
        )
        self.caught_up: asyncio.Event = self.follower.caught_up_event
        """Set once the recent history (``start_limit`` signals back, ten times that of the others) is read."""

    async def start(self) -> None:
        await self.follower.start()

    async def stop(self) -> None:
        await self.follower.stop()

    def _on_record(self, record: ConsumerRecord, live: bool) -> None:
        self._ingest(self.topics[record.topic], record.value, record.timestamp / 1000.0)

    def _ingest(self, kind: str, value: bytes | None, written: float) -> None:
        if value is None:
            return
        try:
            if kind == "signal":
                self.store.add_signal(Signal.model_validate_json(value), written)
            elif kind == "alert":
                self.store.add_alert(Alert.model_validate_json(value))
            elif self.keyring.kids:
                self.store.add_audit(self.keyring.verify_record(value, AuditRecord))
        except (ValidationError, ControlRejected, ValueError) as exc:
            log.debug("timeline feed: skipping a %s record: %s", kind, exc)

"""Backtest scores against labelled events: crises caught and how fast, false criticals and pauses per brand-day.

Definitions (the README repeats them):

* A **crisis** is a labelled event with ``expect_pause``. It is *caught* when an episode of its brand
  reaches ``critical`` between its start and its end; its *delay* is that moment minus its start.
* A **false critical** is an episode that reaches ``critical`` outside every crisis of its brand (a crisis
  counts until ``tail_seconds`` after its end, since a real crisis may stay critical for a while).
  A **false pause** is a pause decided outside every crisis.
* A **warning** is an episode that opens outside every crisis and never reaches ``critical``.
* Rates are per **brand-day**: a brand is watched from its first mention to the end of the data. Its first
  ``maturity_seconds`` are its *first day* (no baseline yet) and are reported apart from the steady state.
* The NAB-style score treats each brand's timeline as one series of windows, its crises as the labelled
  windows and each episode's first critical window as an alert (`crisiswatch.offline.nab`, standard profile).
"""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from crisiswatch.contracts.records import Alert
from crisiswatch.offline import nab

from .engine import BacktestResult, PauseEvent

DAY = 86400.0


class LabelledEvent(Protocol):
    """What scoring reads of a labelled event (`crisiswatch.scenarios.labels.Event`)."""

    brand: str
    kind: str
    name: str
    expect_pause: bool
    start: datetime
    end: datetime


def span_of(event: LabelledEvent) -> tuple[float, float]:
    """An event's (start, end) in epoch seconds."""
    return event.start.timestamp(), event.end.timestamp()


@dataclass
class CrisisOutcome:
    """How one labelled crisis went."""

    brand: str
    name: str
    start: float
    end: float
    critical_at: float | None
    paused_at: float | None

    @property
    def delay_seconds(self) -> float | None:
        return None if self.critical_at is None else self.critical_at - self.start


@dataclass
class DecoyOutcome:
    """What the detector did during one labelled decoy."""

    brand: str
    name: str
    start: float
    end: float
    worst: str
    """The highest severity of an episode inside the decoy: ``none``, ``warning`` or ``critical``."""
    paused: bool


@dataclass
class Episode:
    """One alert episode as seen in the alert records."""

    alert_id: str
    brand: str
    opened: float
    critical_at: float | None = None
    peak: str = "info"


@dataclass
class Scores:
    """The labelled part of a backtest report."""

    crises: list[CrisisOutcome] = field(default_factory=list)
    decoys: list[DecoyOutcome] = field(default_factory=list)
    brand_days: float = 0.0
    first_brand_days: float = 0.0
    false_criticals: list[Episode] = field(default_factory=list)
    false_criticals_first_day: list[Episode] = field(default_factory=list)
    false_pauses: list[PauseEvent] = field(default_factory=list)
    false_pauses_first_day: list[PauseEvent] = field(default_factory=list)
    warnings: list[Episode] = field(default_factory=list)
    nab: float | None = None

    @property
    def steady_brand_days(self) -> float:
        return max(0.0, self.brand_days - self.first_brand_days)

    def per_brand_day(self, count: int, days: float) -> float:
        return count / days if days > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        delays = [c.delay_seconds / 60 for c in self.crises if c.delay_seconds is not None]
        return {
            "crises": len(self.crises),
            "crises_caught": sum(c.critical_at is not None for c in self.crises),
            "crises_caught_within_10_min": sum(d <= 10 for d in delays),
            "crises_paused": sum(c.paused_at is not None for c in self.crises),
            "median_delay_minutes": statistics.median(delays) if delays else None,
            "max_delay_minutes": max(delays) if delays else None,
            "brand_days": round(self.brand_days, 2),
            "steady_brand_days": round(self.steady_brand_days, 2),
            "first_brand_days": round(self.first_brand_days, 2),
            "false_criticals_steady": len(self.false_criticals),
            "false_criticals_steady_per_30_brand_days": round(
                30 * self.per_brand_day(len(self.false_criticals), self.steady_brand_days), 3
            ),
            "false_criticals_first_day": len(self.false_criticals_first_day),
            "false_pauses_steady": len(self.false_pauses),
            "false_pauses_first_day": len(self.false_pauses_first_day),
            "warnings": len(self.warnings),
            "warnings_per_brand_day": round(self.per_brand_day(len(self.warnings), self.brand_days), 3),
            "decoys": len(self.decoys),
            "decoys_critical": sum(d.worst == "critical" for d in self.decoys),
            "decoys_paused": sum(d.paused for d in self.decoys),
            "nab": None if self.nab is None else round(self.nab, 1),
        }


def episodes_of(alerts: Sequence[Alert]) -> list[Episode]:
    """Alert records grouped into episodes, with when each first reached critical."""
    found: dict[str, Episode] = {}
    rank = {"info": 0, "warning": 1, "critical": 2}
    for alert in sorted(alerts, key=lambda a: a.event_time):
        t = alert.event_time.timestamp()
        episode = found.get(alert.alert_id)
        if episode is None:
            episode = found[alert.alert_id] = Episode(alert.alert_id, alert.brand, t)
        if alert.status == "firing":
            if rank[alert.severity] > rank[episode.peak]:
                episode.peak = alert.severity
            if alert.severity == "critical" and episode.critical_at is None:
                episode.critical_at = t
    return sorted(found.values(), key=lambda e: e.opened)


def score(
    result: BacktestResult,
    events: Sequence[LabelledEvent],
    maturity_seconds: float = DAY,
    tail_seconds: float = 3600.0,
    data_end: float | None = None,
) -> Scores:
    """Score a backtest against labelled events."""
    scores = Scores()
    end = data_end if data_end is not None else max(result.last_mention.values(), default=0.0)
    first_seen = dict(result.first_mention)
    crises: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for event in events:
        if event.expect_pause:
            crises[event.brand].append(span_of(event))
            first_seen.setdefault(event.brand, span_of(event)[0])
    for first in first_seen.values():
        span = max(0.0, end - first)
        scores.brand_days += span / DAY
        scores.first_brand_days += min(span, maturity_seconds) / DAY

    episodes = episodes_of(result.alerts)
    by_brand: dict[str, list[Episode]] = defaultdict(list)
    for episode in episodes:
        by_brand[episode.brand].append(episode)

    def in_crisis(brand: str, t: float, tail: float = tail_seconds) -> bool:
        return any(start <= t <= stop + tail for start, stop in crises.get(brand, ()))

    def first_day(brand: str, t: float) -> bool:
        return t < first_seen.get(brand, t) + maturity_seconds

    for event in events:
        start, stop = span_of(event)
        mine = by_brand.get(event.brand, [])
        pauses = [p.time for p in result.pauses if p.alert.brand == event.brand and start <= p.time <= stop]
        if event.expect_pause:
            criticals = [e.critical_at for e in mine if e.critical_at is not None and start <= e.critical_at <= stop]
            first_critical, first_pause = min(criticals, default=None), min(pauses, default=None)
            scores.crises.append(CrisisOutcome(event.brand, event.name, start, stop, first_critical, first_pause))
        else:
            inside = [e for e in mine if start <= e.opened <= stop or (e.critical_at or -1) >= start > e.opened]
            worst = "critical" if any(e.critical_at and start <= e.critical_at <= stop for e in inside) else (
                "warning" if inside else "none"
            )
            scores.decoys.append(DecoyOutcome(event.brand, event.name, start, stop, worst, bool(pauses)))

    for episode in episodes:
        if episode.critical_at is not None and not in_crisis(episode.brand, episode.critical_at):
            target = scores.false_criticals_first_day if first_day(episode.brand, episode.critical_at) else (
                scores.false_criticals
            )
            target.append(episode)
        elif episode.critical_at is None and episode.peak == "warning" and not in_crisis(episode.brand, episode.opened):
            scores.warnings.append(episode)
    for pause in result.pauses:
        if not in_crisis(pause.alert.brand, pause.time):
            target = scores.false_pauses_first_day if first_day(pause.alert.brand, pause.time) else scores.false_pauses
            target.append(pause)
    scores.nab = _nab(result, crises, episodes)
    return scores


def _nab(result: BacktestResult, crises: dict[str, list[tuple[float, float]]], episodes: list[Episode]) -> float | None:
    """Mean NAB-normalised score over the brands that have crises (None when no brand has one)."""
    values = []
    for brand, windows in crises.items():
        timeline = result.timelines.get(brand)
        if timeline is None or not timeline.start:
            continue
        times = timeline.start
        alerts = [False] * len(times)
        for episode in episodes:
            if episode.brand == brand and episode.critical_at is not None:
                row = bisect.bisect_left(times, episode.critical_at - 1e-6) - 1
                alerts[max(0, min(row, len(times) - 1))] = True
        rows = nab.window_rows(times, windows)
        values.append(nab.score_alerts(alerts, rows, probation=0).normalised)
    return statistics.mean(values) if values else None

"""The second half of a backtest: enriched records in event-time order through the worker's decision objects.

`Backtest` feeds each brand's mentions, oldest first, into the same `stream.windowing.BrandWindows`
the window stage uses, and closes them with the same per-source `stream.windowing.Watermark` and
`stream.windowing.ClosingPolicy` (event time stands in for the wall clock; as the input is in event-time
order every mention counts, and windows close exactly as in an unhurried worker), and hands each closed window (the
same `detectors.closed.ClosedWindow` the worker publishes on ``signals``) to the same `stream.decisions.RiskBook`
the risk stage uses, with the per-brand policies of the same brands file. What comes out is every alert
and pause, with its evidence, and a per-window timeline for the pictures.
"""

from __future__ import annotations

import gzip
import heapq
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crisiswatch.brands_file import load_brand_policies
from crisiswatch.contracts.records import Alert, WindowedMention
from crisiswatch.detectors.risk import BrandPolicy, RiskAssessment, RiskPolicy
from crisiswatch.settings import Settings
from crisiswatch.stream.decisions import RiskBook, mention_facts
from crisiswatch.stream.windowing import BrandWindows, ClosingPolicy, Watermark

REORDER_SECONDS = 3600.0
"""Mentions up to this much older than the newest one read are put back in order on the fly."""
FAR_FUTURE = 10.0 * 365 * 86400
"""How far past the last mention the final flush moves event time (as the worker's idle flush does)."""


@dataclass
class Timeline:
    """One brand's closed windows as columns (what the pictures and the page draw)."""

    start: list[float] = field(default_factory=list)
    mentions: list[int] = field(default_factory=list)
    stories: list[int] = field(default_factory=list)
    expected: list[float] = field(default_factory=list)
    negative_share: list[float] = field(default_factory=list)
    usual_share: list[float] = field(default_factory=list)
    risk: list[float] = field(default_factory=list)
    severity: list[str] = field(default_factory=list)

    def append(self, start: float, assessment: RiskAssessment) -> None:
        evidence = assessment.evidence
        self.start.append(start)
        self.mentions.append(evidence.mentions or 0)
        self.stories.append(evidence.stories or 0)
        self.expected.append((evidence.volume.expected or 0.0) if evidence.volume is not None else 0.0)
        self.negative_share.append(evidence.negative_share or 0.0)
        self.usual_share.append(evidence.expected_negative_share or 0.0)
        self.risk.append(assessment.risk)
        self.severity.append(assessment.severity)

    def to_dict(self) -> dict[str, list[Any]]:
        return {name: list(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class PauseEvent:
    """A pause the policy asked for: when (event time), what scope, and the alert behind it."""

    time: float
    scope: str
    alert: Alert


@dataclass
class BacktestResult:
    """Everything a backtest saw and decided."""

    alerts: list[Alert] = field(default_factory=list)
    pauses: list[PauseEvent] = field(default_factory=list)
    timelines: dict[str, Timeline] = field(default_factory=dict)
    mentions: int = 0
    windows: int = 0
    first_mention: dict[str, float] = field(default_factory=dict)
    last_mention: dict[str, float] = field(default_factory=dict)


def read_enriched(path: Path) -> Iterator[WindowedMention]:
    """The enriched records of a cache file (gzip JSONL of ``mentions.enriched`` values)."""
    with gzip.open(path, "rb") as handle:
        for line in handle:
            if line.strip():
                yield WindowedMention.model_validate_json(line)


class Backtest:
    """Replays enriched mentions through the worker's windowing, detectors, risk and policy objects."""

    def __init__(
        self,
        settings: Settings,
        policy: RiskPolicy,
        timelines: bool = True,
        brand_policies: Mapping[str, BrandPolicy] | None = None,
    ):
        """``policy`` is the global policy; ``brand_policies`` default to those of ``settings.worker.brands_file``
        (what the worker's risk stage applies)."""
        self.settings = settings
        self.policy = policy
        self.brand_policies = (
            dict(brand_policies) if brand_policies is not None else load_brand_policies(settings.worker.brands_file)
        )
        self.keep_timelines = timelines
        self._reset()

    def _reset(self) -> None:
        """Start from no state (a new run, or the sorted replay of badly ordered input)."""
        self.book = RiskBook(self.policy, self.brand_policies)
        self.windows: dict[str, BrandWindows] = {}
        self.closing = ClosingPolicy.from_settings(self.settings.worker)
        self.watermark = Watermark(self.closing)
        self._disordered = False

    def run(self, source: Callable[[], Iterable[WindowedMention]]) -> BacktestResult:
        """Decide on every window of the mentions ``source()`` yields, oldest first.

        Mentions are put back in event-time order through a buffer of ``REORDER_SECONDS``; a mention older
        than that behind the newest one means the input is badly out of order, and the whole input is then
        sorted in memory and replayed from the start, so the result is event-time exact either way.
        """
        result = self._run(self._reordered(source()))
        if self._disordered:
            self._reset()
            ordered = sorted(
                ((m.created_at.timestamp(), m) for m in source() if m.brand is not None), key=lambda item: item[0]
            )
            result = self._run(iter(ordered))
        return result

    def _reordered(self, mentions: Iterable[WindowedMention]) -> Iterator[tuple[float, WindowedMention]]:
        heap: list[tuple[float, int, WindowedMention]] = []
        newest = released = float("-inf")
        for seq, mention in enumerate(mentions):
            if mention.brand is None:
                continue
            t = mention.created_at.timestamp()
            if t < released:
                self._disordered = True
                return
            if not heap and t >= newest:  # in order (the usual case): no need to hold it back
                newest = released = t
                yield t, mention
                continue
            newest = max(newest, t)
            heapq.heappush(heap, (t, seq, mention))
            while heap and heap[0][0] < newest - REORDER_SECONDS:
                released, _, item = heapq.heappop(heap)
                yield released, item
        while heap:
            t, _, item = heapq.heappop(heap)
            yield t, item

    def _run(self, items: Iterator[tuple[float, WindowedMention]]) -> BacktestResult:
        result = BacktestResult()
        size = float(self.settings.worker.window_seconds)
        current: dict[str, float] = {}
        sources, watermark = self.closing.sources, self.watermark
        for t, mention in items:
            brand = mention.brand
            assert brand is not None
            windows = self.windows.get(brand)
            if windows is None:
                windows = self.windows[brand] = BrandWindows(
                    brand,
                    self.settings.worker.window_seconds,
                    correction_horizon=self.settings.worker.correction_horizon_seconds,
                )
                result.first_mention[brand] = t
            key = sources.key(mention.source)
            watermark.observe(0, t, t, key)
            window_start = t - t % size
            if current.get(brand) != window_start:  # event time entered a new window: close what it passed
                current[brand] = window_start
                self._close(windows, watermark.closing_point(windows.sources | {key}, t), result)
            windows.add(t, mention_facts(mention), key)
            result.last_mention[brand] = t
            result.mentions += 1
        if self._disordered:
            return result
        end = max(result.last_mention.values(), default=0.0) + FAR_FUTURE
        watermark.advance_to(end)
        for windows in self.windows.values():
            self._close(windows, watermark.closing_point(windows.sources, end), result)
        result.alerts.sort(key=lambda a: (a.event_time, a.brand))
        result.pauses.sort(key=lambda p: (p.time, p.alert.brand))
        return result

    def _close(self, windows: BrandWindows, watermark: float | None, result: BacktestResult) -> None:
        if watermark is None:
            return
        windows.corrections.clear()  # in event-time order nothing arrives after its window closed
        for signal in windows.close_until(watermark):
            decided = self.book.decide(signal, created_at=signal.window_end)
            result.windows += 1
            if decided is None:
                continue
            if self.keep_timelines:
                timeline = result.timelines.setdefault(signal.brand, Timeline())
                timeline.append(signal.start, decided.decision.assessment)
            if decided.alert is not None:
                result.alerts.append(decided.alert)
                if decided.pause_scope is not None:
                    result.pauses.append(
                        PauseEvent(decided.alert.event_time.timestamp(), decided.pause_scope, decided.alert)
                    )


def iso(t: float) -> str:
    """Event time as a short UTC string."""
    if not math.isfinite(t):
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")

"""Numenta Anomaly Benchmark (NAB) scoring of binary alerts.

This follows NAB's own scorer (``nab/sweeper.py`` of numenta/NAB) for a detector whose alerts are
already binary, i.e. NAB's threshold sweep collapsed to the single threshold "alert == 1":

* Rows before the probationary length ``min(floor(0.15 * n), 0.15 * 5000)`` are not scored: alerts
  there neither earn nor cost anything, and a window row in that period cannot detect.
* Inside a labelled window ``[left, right]`` (width ``right - left + 1`` rows) an alert on row ``i``
  is worth ``tp_weight * scaled_sigmoid(-(right - i + 1) / width) / scaled_sigmoid(-1)``: 1.0 on the
  first row, about 0.85 in the middle (where the labelled anomaly sits), close to 0 at the end. Only
  the best (= earliest) alert of a window counts; later alerts in the same window cost nothing.
* A window without an alert costs ``fn_weight``.
* An alert outside every window costs ``fp_weight`` times ``scaled_sigmoid`` of its distance past the
  previous window, ``abs(prev_right - i) / (prev_width - 1)``: an alert just after a window costs
  almost nothing, one a window-width later about the full ``fp_weight``; before the first window the
  position is taken as 3.0, i.e. the full cost.

Normalisation as in NAB's runner (``Runner.normalize``): ``100 * (raw - null) / (perfect - null)``
where the null detector (no alerts) scores ``-fn_weight`` per window that has a scorable row, and the
perfect score is ``tp_weight`` times the number of labelled windows, all of them, as NAB counts
them in its label file (a window lying wholly or partly in the probationary period therefore keeps
a perfect score below 100 out of reach, as in NAB).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Profile:
    """NAB cost matrix."""

    tp_weight: float = 1.0
    fp_weight: float = 0.11
    fn_weight: float = 1.0


STANDARD = Profile(1.0, 0.11, 1.0)
"""NAB's "standard" application profile."""


def scaled_sigmoid(relative_position: float) -> float:
    """NAB's ``scaledSigmoid``: 2 * sigmoid(-5 x) - 1, and -1 from x >= 3 on."""
    if relative_position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * relative_position)) - 1.0


def probationary_length(rows: int, percent: float = 0.15) -> float:
    """Rows at the start that NAB does not score."""
    return min(math.floor(percent * rows), percent * 5000)


def window_rows(times: Sequence[float], windows: Sequence[tuple[float, float]]) -> list[tuple[int, int]]:
    """Row ranges ``(left, right)`` (inclusive) of time windows over sorted row times.

    A window covers the rows whose time lies within ``[start, end]``; NAB's windows start and end on
    row timestamps, so this equals NAB's exact lookup. Windows holding no row are dropped.
    """
    import bisect

    rows = []
    for start, end in windows:
        left = bisect.bisect_left(times, start)
        right = bisect.bisect_right(times, end) - 1
        if left <= right:
            rows.append((left, right))
    return sorted(rows)


@dataclass
class WindowOutcome:
    """How one labelled window was scored."""

    left: int
    right: int
    detected_row: int | None
    score: float


@dataclass
class NabScore:
    """NAB score of one series' binary alerts."""

    raw: float
    null: float
    perfect: float
    windows: list[WindowOutcome] = field(default_factory=list)
    false_positive_rows: list[int] = field(default_factory=list)
    false_positive_cost: float = 0.0

    @property
    def normalised(self) -> float:
        return normalise(self.raw, self.null, self.perfect)

    @property
    def true_positives(self) -> int:
        return sum(w.detected_row is not None for w in self.windows)

    @property
    def false_negatives(self) -> int:
        return sum(w.detected_row is None for w in self.windows)


def normalise(raw: float, null: float, perfect: float) -> float:
    """NAB's normalised score: 0 for no alerts, 100 for perfect detection."""
    return 100.0 * (raw - null) / (perfect - null)


def score_alerts(
    alerts: Sequence[bool | int],
    windows: Sequence[tuple[int, int]],
    profile: Profile = STANDARD,
    probation: float | None = None,
) -> NabScore:
    """Score binary ``alerts`` (one per row) against labelled row windows ``(left, right)``."""
    n = len(alerts)
    probation = probationary_length(n) if probation is None else probation
    windows = sorted(windows)
    max_tp = scaled_sigmoid(-1.0)
    outcomes: list[WindowOutcome] = []
    fp_rows: list[int] = []
    fp_cost = 0.0
    raw = null = perfect = 0.0
    previous: tuple[int, int] | None = None
    row = 0
    for left, right in [*windows, (n, n)]:
        for i in range(row, min(left, n)):  # rows outside windows
            if not alerts[i] or i < probation:
                continue
            if previous is None:
                position = 3.0
            else:
                width = previous[1] - previous[0] + 1
                position = abs(previous[1] - i) / max(width - 1, 1)
            cost = scaled_sigmoid(position) * profile.fp_weight
            fp_rows.append(i)
            fp_cost += cost
        if left >= n:
            break
        width = right - left + 1
        scorable = [i for i in range(left, right + 1) if i >= probation and i < n]
        if scorable:

            def weight(i: int, right: int = right, width: int = width) -> float:
                return scaled_sigmoid(-(right - i + 1) / width) * profile.tp_weight / max_tp

            hits = [i for i in scorable if alerts[i]]
            first = hits[0] if hits else None
            score = weight(first) if first is not None else -profile.fn_weight
            outcomes.append(WindowOutcome(left, right, first, score))
            raw += score
            null -= profile.fn_weight
        perfect += profile.tp_weight
        previous = (left, right)
        row = right + 1
    raw += fp_cost
    return NabScore(raw, null, perfect, outcomes, fp_rows, fp_cost)

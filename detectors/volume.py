"""Streaming volume-spike detection with a seasonal negative-binomial count model.

The expected count of a bucket starting at ``t`` is ``level * bucket_seconds * day(t) * week(t)``:

* ``level`` (mentions per second) is a gamma posterior over exponentially decayed sums of counts and
  exposure (half-life ``level_half_life`` seconds, weak prior ``prior_rate`` worth ``prior_counts``
  mentions). Its shape doubles as the parameter uncertainty of the forecast, so a young baseline is
  wide and cannot fire on its first buckets.
* ``day`` / ``week`` are multiplicative time-of-day (24 hourly slots) and day-of-week (7 daily
  slots) profiles in UTC, linearly interpolated between slot centres, each slot a ratio of decayed
  sums of observed and expected counts, shrunk to 1 by ``season_prior`` seconds of pseudo-data.
* Over-dispersion ``phi`` (variance ``mu + phi mu^2``) is a method-of-moments estimate over
  decayed, inverse-variance-weighted residuals, starting from ``phi_prior``.

A bucket's evidence is the upper tail ``p = P(X >= count)`` of the negative binomial with mean
``mu`` and size ``1 / (phi + 1 / shape)``; ``score = -log10 p``. It is a *candidate* when, after
``warmup_seconds`` of learned buckets, ``score >= threshold``, ``count >= min_count`` and
``count >= min_ratio * mu``. The same test also runs on the sum of the buckets of the last
``pool_seconds`` (with its own learned over-dispersion), so a sustained rise of a sparse brand
(10 mentions a minute for ten minutes where one is usual) is found even when no single bucket is
conclusive; the result reports the observed and expected counts of whichever test is stronger.
Candidate buckets less than ``burst_gap`` apart form one burst. A candidate is a *spike* when its
score also reaches the ``k``-th largest burst peak of the last ``burst_horizon`` (30 days): a brand
whose counts burst all the time (relative to the count model) only alerts on its larger bursts,
about ``burst_rank`` a month at most, while a quiet brand alerts on any candidate. While less than a
horizon of buckets has been learned, the rank is scaled to the history there is,
``k = ceil(burst_rank * learned / horizon)`` (at least 1), so that the rate of alerts is bounded from the
start rather than only once a full horizon of bursts has been seen (a young detector would otherwise
alert on every candidate of its first month). The model learns from each bucket after scoring it,
with the count winsorised at ``mu + clip_sd * sd`` so a burst barely moves the baseline (a lasting
level shift is still absorbed, slowly). Gaps in ``t`` decay the level sums by the elapsed time;
missing buckets are not treated as zeros. A bucket not later than the last learned one (out of order
or repeated) is scored against the current model but not learned from.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

from pydantic import ConfigDict, Field
from scipy.special import betainc

DAY = 86400.0
WEEK = 7 * DAY
MIN_P = 1e-300


@dataclass(frozen=True)
class SpikeResult:
    """One detector's verdict on one bucket (one window), as the ``signals`` record carries it.

    The annotations' bounds and the attribute docstrings are what pydantic validates and documents when a
    `detectors.closed.ClosedWindow` carries it; the detectors build it as a plain dataclass."""

    __pydantic_config__ = ConfigDict(use_attribute_docstrings=True)

    observed: float
    """What the test observed (this window's count, or a sum over ``windows`` windows)."""
    expected: float
    """What the brand's model expected of it."""
    score: float
    """Strength of the evidence, ``-log10(p_value)``; 0 = none."""
    p_value: Annotated[float, Field(ge=0, le=1)]
    spike: bool
    windows: Annotated[int, Field(ge=1)] = 1
    """How many buckets the test behind the verdict pooled: 1 = this bucket alone, more = a sustained rise
    (``observed`` and ``expected`` are then sums over those buckets)."""
    burst_rank: Annotated[int, Field(ge=0)] = 0
    """Where this bucket's evidence ranks among the brand's own burst peaks of the horizon: 1 = above every
    one of them, ``k`` = above all but ``k - 1``; 0 = not a candidate burst at all."""
    after_gap: bool = False
    """The bucket follows a collection gap (missing buckets, or a run of zeros the model calls impossible);
    such a bucket is never a spike by itself."""
    gap: bool = False
    """This bucket is itself part of a collection gap (a zero the brand's model makes implausible): it is
    neither learned nor scored."""
    history_buckets: Annotated[int, Field(ge=0)] = 0
    """Buckets learned so far (how much of the brand's own history the verdict rests on)."""


def evidence(p_value: float) -> float:
    """``-log10 p``, finite and never negative."""
    return max(0.0, -math.log10(max(p_value, MIN_P)))


def nb_upper_tail(count: float, mean: float, size: float) -> float:
    """``P(X >= count)`` for a negative binomial with ``mean`` and ``size`` (variance mean + mean²/size)."""
    if count <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    return float(betainc(count, size, mean / (mean + size)))


@dataclass
class SeasonalProfile:
    """A multiplicative profile over a cycle of ``slots`` equal slots, interpolated between slot centres."""

    slots: int
    period: float
    half_life: float
    """Seconds of a slot's own time after which its old data weigh half."""
    prior: float
    """Pseudo-seconds of slot time at factor 1 (shrinkage)."""
    observed: list[float] = field(default_factory=list)
    expected: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.observed = self.observed or [0.0] * self.slots
        self.expected = self.expected or [0.0] * self.slots

    def _position(self, t: float) -> tuple[int, int, float]:
        x = (t % self.period) / self.period * self.slots - 0.5
        base = math.floor(x)
        frac = x - base
        return base % self.slots, (base + 1) % self.slots, frac

    def _raw(self, i: int, pseudo: float) -> float:
        return (pseudo + self.observed[i]) / (pseudo + self.expected[i])

    def factor(self, t: float, rate: float) -> float:
        """Normalised factor (mean 1 over the cycle) at time ``t``; ``rate`` (per second) scales the prior."""
        pseudo = max(rate, 1e-9) * self.prior
        raw = [self._raw(i, pseudo) for i in range(self.slots)]
        i0, i1, w1 = self._position(t)
        return ((1.0 - w1) * raw[i0] + w1 * raw[i1]) * self.slots / sum(raw)

    def learn(self, t: float, count: float, expected: float, seconds: float) -> None:
        """Add a bucket of ``seconds`` with ``count`` against ``expected`` (the forecast without this profile)."""
        i0, i1, w1 = self._position(t)
        for i, w in ((i0, 1.0 - w1), (i1, w1)):
            if w <= 0.0:
                continue
            decay = 0.5 ** (w * seconds / self.half_life)
            self.observed[i] = decay * self.observed[i] + w * count
            self.expected[i] = decay * self.expected[i] + w * expected


@dataclass
class VolumeConfig:
    """Tuning of `VolumeSpikeDetector`; every field can be passed as a keyword."""

    threshold: float = 12.0
    min_count: float = 5.0
    min_ratio: float = 2.0
    burst_rank: int = 6
    """A candidate must beat the ``burst_rank``-th largest burst peak of the last ``burst_horizon`` (scaled
    down to the learned history while it is shorter than the horizon); 0 = off."""
    burst_horizon: float = 30 * DAY
    burst_gap: float = 3600.0
    """Candidate buckets closer than this belong to one burst."""
    warmup_seconds: float = 1800.0
    level_half_life: float = DAY
    prior_rate: float = 1.0 / 60.0
    prior_counts: float = 0.5
    daily: bool | None = None
    """Learn a time-of-day profile; default: when buckets are shorter than 3 hours."""
    weekly: bool | None = None
    """Learn a day-of-week profile; default: when buckets are shorter than a day."""
    day_half_life: float = 14 * 3600.0
    """Half-life of a time-of-day slot in its own time: 14 h = two weeks of days."""
    week_half_life: float = 3 * DAY
    """Half-life of a day-of-week slot in its own time: 3 days = three weeks."""
    season_prior: float = 3600.0
    """Pseudo-data at factor 1 per time-of-day slot (seconds; x24 per day-of-week slot)."""
    phi_prior: float = 0.05
    phi_min: float = 0.0
    phi_prior_buckets: float = 50.0
    phi_half_life: float = 3 * DAY
    clip_sd: float = 4.0
    burst_clip_sd: float = 1.0
    """Winsorising of *unusual* buckets: those where some test reaches ``unusual_score``."""
    unusual_score: float = 3.0
    pool_seconds: float = 900.0
    """Also test the sum of the buckets of the last ``pool_seconds`` (a sustained rise); 0 = off."""
    gap_p: float = 1e-4
    """A zero count whose probability under the brand's model is below this is a collection gap, not data."""


class VolumeSpikeDetector:
    """Online spike detector for per-bucket mention counts (see the module docstring)."""

    def __init__(self, bucket_seconds: float = 60.0, **tuning: Any) -> None:
        if bucket_seconds <= 0:
            raise ValueError("bucket_seconds must be positive")
        self.bucket_seconds = float(bucket_seconds)
        self.config = VolumeConfig(**tuning)
        c = self.config
        daily = c.daily if c.daily is not None else bucket_seconds < 3 * 3600
        weekly = c.weekly if c.weekly is not None else bucket_seconds < DAY
        self.day = SeasonalProfile(24, DAY, c.day_half_life, c.season_prior) if daily else None
        self.week = SeasonalProfile(7, WEEK, c.week_half_life, c.season_prior * 24) if weekly else None
        self.counts = 0.0
        """Decayed sum of (winsorised) counts."""
        self.exposure = 0.0
        """Decayed sum of seasonally weighted seconds."""
        self.phi_num = 0.0
        self.phi_den = 0.0
        self.learned_seconds = 0.0
        self.last_t: float | None = None
        self.pooled = max(1, round(c.pool_seconds / self.bucket_seconds)) if c.pool_seconds > 0 else 1
        self.recent: list[list[float]] = []
        """``[count, winsorised count, mean]`` of the last ``pooled - 1`` learned buckets."""
        self.pool_phi_num = 0.0
        self.pool_phi_den = 0.0
        self.bursts: list[list[float]] = []
        """Closed candidate bursts of the horizon, ``[start, peak score]``."""
        self.burst: list[float] | None = None
        """The open candidate burst, ``[start, peak score, last candidate time]``."""
        self.after_gap = False
        """The next learned bucket follows a collection gap."""

    # -- model ------------------------------------------------------------------------------------
    def rate(self) -> float:
        """Current deseasonalised level, mentions per second."""
        c = self.config
        return (c.prior_counts + self.counts) / (c.prior_counts / c.prior_rate + self.exposure)

    def phi(self, pooled: bool = False) -> float:
        """Current over-dispersion estimate (of single buckets, or of the pooled sums)."""
        c = self.config
        prior_weight = c.phi_prior_buckets / c.phi_prior**2
        num, den = (self.pool_phi_num, self.pool_phi_den) if pooled else (self.phi_num, self.phi_den)
        return max(c.phi_min, (c.phi_prior * prior_weight + num) / (prior_weight + den))

    def _forecast(self, t: float) -> tuple[float, float, float, float]:
        """(mean, size, day factor, week factor) for the bucket starting at ``t``."""
        rate = self.rate()
        middle = t + self.bucket_seconds / 2
        day = self.day.factor(middle, rate) if self.day else 1.0
        week = self.week.factor(middle, rate) if self.week else 1.0
        mean = rate * self.bucket_seconds * day * week
        shape = self.config.prior_counts + self.counts
        size = 1.0 / (self.phi() + 1.0 / shape)
        return mean, size, day, week

    def expected(self, t: float) -> float:
        """Forecast count of the bucket starting at ``t``."""
        return self._forecast(t)[0]

    # -- streaming --------------------------------------------------------------------------------
    def update(self, t: float, count: float) -> SpikeResult:
        """Score the closed bucket starting at ``t`` holding ``count`` mentions, then learn from it."""
        count = float(count)
        c = self.config
        learn = self.last_t is None or t > self.last_t
        if learn and self.last_t is not None:
            elapsed = t - self.last_t
            decay = 0.5 ** (elapsed / c.level_half_life)
            self.counts *= decay
            self.exposure *= decay
            phi_decay = 0.5 ** (elapsed / c.phi_half_life)
            self.phi_num *= phi_decay
            self.phi_den *= phi_decay
            self.pool_phi_num *= phi_decay
            self.pool_phi_den *= phi_decay
            if elapsed > 1.5 * self.bucket_seconds:
                self.recent = []
                self.after_gap = True
        mean, size, day, week = self._forecast(t)
        warm = self.learned_seconds >= c.warmup_seconds
        history = round(self.learned_seconds / self.bucket_seconds)
        if learn and warm and count <= 0.0 and mean > 0 and (size / (size + mean)) ** size < c.gap_p:
            # a zero the model makes implausible: the collection stopped; neither data nor evidence
            self.last_t, self.recent, self.after_gap = t, [], True
            return SpikeResult(0.0, mean, 0.0, 1.0, False, gap=True, history_buckets=history)
        after_gap = learn and self.after_gap
        tests = [self._test(count, mean, size)]
        pooled = learn and len(self.recent) == self.pooled - 1 > 0
        if pooled:
            pooled_size = 1.0 / (self.phi(pooled=True) + 1.0 / (c.prior_counts + self.counts))
            pooled_count = count + sum(r[0] for r in self.recent)
            pooled_mean = mean + sum(r[2] for r in self.recent)
            tests.append(self._test(pooled_count, pooled_mean, pooled_size))
        candidates = [
            test
            for test in tests
            if warm and test[2] >= c.threshold and test[0] >= c.min_count and test[0] >= c.min_ratio * test[1]
        ]
        chosen = max(candidates or tests[:1], key=lambda test: test[2])
        observed, expected, score, p = chosen
        windows = 1 if chosen is tests[0] else self.pooled
        rank = self.rank_of(t, score) if candidates else 0
        spike = bool(candidates) and not after_gap and (self.bar_rank() <= 0 or rank <= self.bar_rank())
        if learn:
            self.after_gap = False
            self._track_burst(t, bool(candidates), score)
            unusual = max(test[2] for test in tests) >= c.unusual_score
            kept = self._learn(t, count, mean, size, day, week, warm, unusual)
            if pooled and not unusual:
                self._learn_pooled(kept, mean)
            if self.pooled > 1:
                self.recent = [*self.recent, [count, kept, mean]][-(self.pooled - 1) :]
        return SpikeResult(observed, expected, score, p, spike, windows, rank, after_gap, False, history)

    @staticmethod
    def _test(count: float, mean: float, size: float) -> tuple[float, float, float, float]:
        p = nb_upper_tail(count, mean, size)
        return count, mean, evidence(p), p

    def bar_rank(self) -> int:
        """The rank ``k`` of the burst bar: ``burst_rank`` per horizon, pro rata while the history is shorter."""
        c = self.config
        if c.burst_rank <= 0:
            return 0
        cover = min(1.0, self.learned_seconds / c.burst_horizon)
        return max(1, math.ceil(c.burst_rank * cover - 1e-9))

    def rank_of(self, t: float, score: float) -> int:
        """1 + how many closed burst peaks of the horizon exceed ``score``."""
        horizon = self.config.burst_horizon
        above = sum(1 for start, peak in self.bursts if t - start <= horizon and peak > score)
        return 1 + above

    def burst_bar(self, t: float) -> float:
        """Score a candidate must reach at ``t``: the ``k``-th largest recent burst peak (or 0)."""
        rank = self.bar_rank()
        if rank <= 0:
            return 0.0
        horizon = self.config.burst_horizon
        peaks = sorted((peak for start, peak in self.bursts if t - start <= horizon), reverse=True)
        return peaks[rank - 1] if len(peaks) >= rank else 0.0

    def _track_burst(self, t: float, candidate: bool, score: float) -> None:
        burst = self.burst
        if candidate:
            if burst is None:
                self.burst = [t, score, t]
            else:
                burst[1], burst[2] = max(burst[1], score), t
        elif burst is not None and t - burst[2] >= self.config.burst_gap:
            horizon = self.config.burst_horizon
            self.bursts = [b for b in self.bursts if t - b[0] <= horizon] + [burst[:2]]
            self.burst = None

    def _learn(
        self, t: float, count: float, mean: float, size: float, day: float, week: float, warm: bool, unusual: bool
    ) -> float:
        """Learn from one bucket; returns the (winsorised) count it learned.

        An ``unusual`` bucket (some test reached ``unusual_score``) is winsorised harder and does not
        feed the over-dispersion estimate, so a sustained burst neither lifts the baseline much nor
        teaches the model that bursts are normal.
        """
        c = self.config
        if warm:
            clip = c.burst_clip_sd if unusual else c.clip_sd
            count = min(count, mean + clip * math.sqrt(mean + mean * mean / size))
        rate = self.rate()
        middle = t + self.bucket_seconds / 2
        seconds = self.bucket_seconds
        if self.day:
            self.day.learn(middle, count, rate * seconds * week, seconds)
        if self.week:
            self.week.learn(middle, count, rate * seconds * day, seconds)
        self.counts += count
        self.exposure += seconds * day * week
        if warm and mean > 0 and not unusual:
            phi = self.phi()
            weight = 1.0 / (1.0 / mean + phi) ** 2
            self.phi_num += weight * ((count - mean) ** 2 - count) / (mean * mean)
            self.phi_den += weight
        self.learned_seconds += seconds
        self.last_t = t
        return count

    def _learn_pooled(self, kept: float, mean: float) -> None:
        """Over-dispersion of the pooled sums (winsorised counts of the last ``pooled`` buckets)."""
        total = kept + sum(r[1] for r in self.recent)
        expected = mean + sum(r[2] for r in self.recent)
        if expected <= 0:
            return
        phi = self.phi(pooled=True)
        weight = 1.0 / (1.0 / expected + phi) ** 2
        self.pool_phi_num += weight * ((total - expected) ** 2 - total) / (expected * expected)
        self.pool_phi_den += weight

    # -- state ------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state, configuration included."""
        return {
            "bucket_seconds": self.bucket_seconds,
            "config": asdict(self.config),
            "day": asdict(self.day) if self.day else None,
            "week": asdict(self.week) if self.week else None,
            "counts": self.counts,
            "exposure": self.exposure,
            "phi_num": self.phi_num,
            "phi_den": self.phi_den,
            "learned_seconds": self.learned_seconds,
            "last_t": self.last_t,
            "recent": [list(r) for r in self.recent],
            "pool_phi_num": self.pool_phi_num,
            "pool_phi_den": self.pool_phi_den,
            "bursts": [list(b) for b in self.bursts],
            "burst": list(self.burst) if self.burst else None,
            "after_gap": self.after_gap,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> VolumeSpikeDetector:
        detector = cls(state["bucket_seconds"], **state["config"])
        detector.day = SeasonalProfile(**state["day"]) if state["day"] else None
        detector.week = SeasonalProfile(**state["week"]) if state["week"] else None
        names = (
            "counts",
            "exposure",
            "phi_num",
            "phi_den",
            "learned_seconds",
            "last_t",
            "bursts",
            "burst",
            "recent",
            "pool_phi_num",
            "pool_phi_den",
        )
        for name in names:
            setattr(detector, name, state[name])
        detector.after_gap = bool(state.get("after_gap", False))
        return detector

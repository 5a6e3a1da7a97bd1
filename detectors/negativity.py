"""Streaming detection of a rise in a brand's negative share, sized by how many mentions a window holds.

The baseline negative share ``pi`` is a beta posterior over exponentially decayed sums of negative and
total mentions (half-life ``share_half_life`` seconds, prior ``prior_share`` worth ``prior_mentions``).
How much the share of one window scatters around it beyond binomial noise (topic mix, classifier
noise) is an intra-window correlation ``rho``, learned online by the method of moments from
``rho_prior``. A window with ``total`` mentions of which ``negative`` are negative is tested with the
beta-binomial upper tail ``p = P(N >= negative)``, ``N ~ BetaBinomial(total, pi * k, (1 - pi) * k)``
where the concentration ``k`` carries both ``rho`` and the uncertainty of ``pi``. So 2 negatives of 3
mentions is weak evidence whatever the share, while 120 of 200 against a 10% baseline is
overwhelming. The same test also runs on the windows of the last ``pool_seconds`` pooled (variance
matched: each window's own clustering plus the shared uncertainty of ``pi``), so a sustained shift
made of many small windows is found too; the result reports the counts of the stronger test.

A window is a spike when the baseline has seen ``min_baseline`` mentions and the window holds at
least ``min_negative`` negatives at ``min_ratio`` times the baseline share, and either the share test
reaches ``threshold`` or the negative volume alone spikes (a `VolumeSpikeDetector` on the negative
counts) while the share test still reaches ``support_score``. A pure volume burst with the usual
sentiment mix is therefore not a negativity spike. The model learns after scoring, with the negative
count winsorised at ``total * pi + clip_sd * sd`` (``spike_clip_sd`` for windows whose evidence reaches
``unusual_score``, so a crisis barely moves the usual share); windows not later than the last learned one are
scored but not learned from.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from crisiswatch.detectors.volume import DAY, SpikeResult, VolumeSpikeDetector, evidence


def _log_pmf(x: int, n: int, a: float, b: float) -> float:
    """Log probability mass of ``BetaBinomial(n, a, b)`` at ``x``."""
    return (
        math.lgamma(n + 1.0) - math.lgamma(x + 1.0) - math.lgamma(n - x + 1.0)
        + _log_beta(x + a, n - x + b) - _log_beta(a, b)
    )  # fmt: skip


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def betabinom_upper_tail(k: float, n: int, a: float, b: float) -> float:
    """``P(X >= k)`` for ``X ~ BetaBinomial(n, a, b)``, exact also far in the tail.

    One log-pmf, then the ratio recurrence ``pmf(x+1)/pmf(x) = (n-x)(x+a) / ((x+1)(n-x-1+b))`` sums the
    tail on the side of ``k`` away from the mean (terms only shrink there), so a call costs a few
    microseconds instead of a vectorised log-sum-exp over every term.
    """
    k = math.ceil(k)
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if k > n * a / (a + b):  # upper side: sum pmf(k..n) relative to pmf(k)
        total, term, x = 1.0, 1.0, k
        while x < n:
            term *= (n - x) * (x + a) / ((x + 1.0) * (n - x - 1.0 + b))
            total += term
            x += 1
            if term < 1e-17 * total:
                break
        return min(1.0, math.exp(_log_pmf(k, n, a, b) + math.log(total)))
    # lower side: P(X >= k) = 1 - pmf(0..k-1), summed downwards from k-1 relative to pmf(k-1)
    total, term, x = 1.0, 1.0, k - 1
    while x > 0:
        term *= x * (n - x + b) / ((n - x + 1.0) * (x - 1.0 + a))
        total += term
        x -= 1
        if term < 1e-17 * total:
            break
    return max(0.0, min(1.0, 1.0 - math.exp(_log_pmf(k - 1, n, a, b) + math.log(total))))


@dataclass
class NegativityConfig:
    """Tuning of `NegativeSpikeDetector`; every field can be passed as a keyword."""

    threshold: float = 6.0
    support_score: float = 2.0
    min_negative: int = 5
    min_ratio: float = 1.5
    min_baseline: float = 30.0
    prior_share: float = 0.15
    prior_mentions: float = 20.0
    share_half_life: float = DAY
    rho_prior: float = 0.01
    rho_prior_windows: float = 20.0
    rho_half_life: float = 3 * DAY
    clip_sd: float = 4.0
    spike_clip_sd: float = 1.0
    """Windows scored as unusual (``unusual_score``) are learned winsorised this tight: a crisis that lasts
    hours barely moves the brand's usual share, while a lasting change still seeps in."""
    unusual_score: float = 3.0
    pool_seconds: float = 900.0
    """Also test the windows of the last ``pool_seconds`` pooled (a sustained shift of small windows)."""


class NegativeSpikeDetector:
    """Online detector of a rising negative share per window (see the module docstring)."""

    def __init__(self, bucket_seconds: float = 60.0, **tuning: Any) -> None:
        self.bucket_seconds = float(bucket_seconds)
        self.config = NegativityConfig(**tuning)
        self.negatives = 0.0
        self.mentions = 0.0
        self.rho_num = 0.0
        self.rho_den = 0.0
        self.last_t: float | None = None
        self.volume = VolumeSpikeDetector(bucket_seconds)
        """Negative-volume detector (its own defaults)."""
        self.pooled_windows = max(1, round(self.config.pool_seconds / self.bucket_seconds))
        self.recent: list[list[int]] = []
        """``[total, negative]`` of the last ``pooled_windows`` windows, for the pooled test."""

    def share(self) -> float:
        """Baseline negative share."""
        c = self.config
        return (c.prior_share * c.prior_mentions + self.negatives) / (c.prior_mentions + self.mentions)

    def rho(self) -> float:
        """Learned intra-window correlation of sentiment (0 = binomial)."""
        c = self.config
        weight = c.rho_prior_windows / c.rho_prior**2
        value = (c.rho_prior * weight + self.rho_num) / (weight + self.rho_den)
        return min(max(value, 0.0), 0.5)

    def _test(self, windows: list[tuple[int, int]], pi: float) -> tuple[float, float, float, float]:
        """(negatives, expected, score, p) of the pooled ``(total, negative)`` windows against ``pi``.

        The windows' own clustering (``rho``) and the uncertainty of ``pi`` (which all windows share)
        are folded into one beta-binomial of matching variance.
        """
        total = sum(n for n, _ in windows)
        negative = sum(k for _, k in windows)
        if total <= 0:
            return 0.0, 0.0, 0.0, 1.0
        shared = 1.0 / (self.config.prior_mentions + self.mentions + 1.0)
        if total > 1:
            pairs = sum(n * (n - 1) for n, _ in windows)
            spread = (self.rho() * pairs + shared * total * total) / (total * (total - 1))
        else:
            spread = self.rho() + shared
        concentration = 1.0 / min(spread, 0.9) - 1.0
        p = betabinom_upper_tail(negative, total, pi * concentration, (1.0 - pi) * concentration)
        return float(negative), total * pi, evidence(p), p

    def update(self, t: float, total: int, negative: int) -> SpikeResult:
        """Score the closed window starting at ``t`` (``negative`` of ``total`` mentions), then learn from it."""
        if negative < 0 or total < 0 or negative > total:
            raise ValueError(f"need 0 <= negative <= total, got negative={negative}, total={total}")
        c = self.config
        learn = self.last_t is None or t > self.last_t
        if learn and self.last_t is not None:
            elapsed = t - self.last_t
            decay = 0.5 ** (elapsed / c.share_half_life)
            self.negatives *= decay
            self.mentions *= decay
            rho_decay = 0.5 ** (elapsed / c.rho_half_life)
            self.rho_num *= rho_decay
            self.rho_den *= rho_decay
            if elapsed > 1.5 * self.bucket_seconds:
                self.recent = []
        volume = self.volume.update(t, negative)
        pi = self.share()
        warm = self.mentions >= c.min_baseline
        tests = [self._test([(total, negative)], pi)]
        if learn and self.pooled_windows > 1:
            self.recent = [*self.recent, [total, negative]][-self.pooled_windows:]
            if len(self.recent) > 1:
                tests.append(self._test([(n, k) for n, k in self.recent], pi))

        def plausible(test: tuple[float, float, float, float]) -> bool:
            return warm and test[0] >= c.min_negative and test[0] >= c.min_ratio * test[1]

        candidates = [test for test in tests if plausible(test)]
        chosen = max(candidates or tests[:1], key=lambda test: test[2])
        observed, expected, score, p = chosen
        windows = 1 if chosen is tests[0] else len(self.recent)
        spike = bool(candidates) and score >= c.threshold
        if not spike and plausible(tests[0]) and volume.spike and tests[0][2] >= c.support_score:
            observed, expected, windows = tests[0][0], tests[0][1], 1
            score, p, spike = max(score, volume.score), min(p, volume.p_value), True
        if learn:
            unusual = max(test[2] for test in tests) >= c.unusual_score
            self._learn(t, total, negative, pi, warm, c.spike_clip_sd if unusual else c.clip_sd)
        return SpikeResult(observed, expected, score, p, spike, windows)

    def _learn(self, t: float, total: int, negative: int, pi: float, warm: bool, clip_sd: float) -> None:
        self.last_t = t
        if total <= 0:
            return
        variance = total * pi * (1.0 - pi) * (1.0 + (total - 1) * self.rho())
        kept = min(float(negative), total * pi + clip_sd * math.sqrt(variance)) if warm else float(negative)
        if warm and total >= 2:
            rho = self.rho()
            binomial = total * pi * (1.0 - pi)
            estimate = ((kept - total * pi) ** 2 - binomial) / (binomial * (total - 1))
            weight = 1.0 / (1.0 / (total - 1) + rho) ** 2
            self.rho_num += weight * estimate
            self.rho_den += weight
        self.negatives += kept
        self.mentions += total

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state, configuration included."""
        return {
            "bucket_seconds": self.bucket_seconds,
            "config": asdict(self.config),
            "negatives": self.negatives,
            "mentions": self.mentions,
            "rho_num": self.rho_num,
            "rho_den": self.rho_den,
            "last_t": self.last_t,
            "recent": [list(w) for w in self.recent],
            "volume": self.volume.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> NegativeSpikeDetector:
        detector = cls(state["bucket_seconds"], **state["config"])
        for name in ("negatives", "mentions", "rho_num", "rho_den", "last_t", "recent"):
            setattr(detector, name, state[name])
        detector.volume = VolumeSpikeDetector.from_state(state["volume"])
        return detector

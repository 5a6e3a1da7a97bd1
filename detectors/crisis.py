"""Corroborated crisis evidence: what a brand's windows must show before the risk may be *critical*.

A loud window with a few more negative mentions than usual is ordinary for many brands: they burst
every few hours, their chatter is full of words like "lawsuit", and at 50 mentions a negative share
scatters by several points. `CrisisGate` therefore asks for evidence that is

* **brand-relative**: negativity is the sentiment model's negative *probability* summed over the
  window's distinct stories that name no other watched brand (an expected count with its uncertainty,
  `detectors.window.WindowAggregate.negative_mass`), compared with this brand's own per-story mean and
  spread, learned from its ordinary windows. How much more than sampling noise the brand's windows
  scatter (topic mix, classifier quirks) is learned too, per time scale, as the mean of the squared
  score of its ordinary windows, and every score is divided by it. Crisis concepts count by how
  unusual they are *for this brand*: a Poisson surprise against the brand's own rate of each concept;
* **multi-scale**: the same test runs on the last 1, 5, 15 and 60 windows pooled, so a sudden explosion is
  seen in a minute or two and a slow burn at modest volume over a quarter of an hour;
* **persistent**: a window is a *candidate* when, at some scale, negativity rises enough above the usual
  (score, lift and negative-story volume all past their thresholds) and, for a pooled scale, the last
  three windows still take part in the rise (half the lift for the short scales, the whole long-scale
  lift for the long ones) and this one is not below the usual. Critical needs ``persist`` candidate
  windows among the last ``persist_of``: one odd minute is not a crisis;
* **corroborated**: the negativity must be backed by one independent sign that something happened to
  the brand: crisis concepts unusual for it, or negative-story volume far beyond the brand's usual
  level (a record for it), or negativity so strong it stands on its own (``strong_score``).

The gate is pure and keeps a small JSON-friendly state per brand; `detectors.risk` calls it once per
closed window, in event-time order, and uses its verdict as the gate to ``critical``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from scipy.special import gammainc

SCALES = (1, 5, 15, 60)
"""Default time scales in windows: the window alone, and the last 5, 15 and 60 pooled."""
RECENT_WINDOWS = 3
"""A pooled scale counts only while the last this-many windows still show at least half the lift."""


@dataclass(frozen=True)
class CrisisPolicy:
    """The thresholds of `CrisisGate` (every field can be set in the risk policy's ``crisis`` mapping)."""

    score: float = 4.0
    """Negativity score (standard deviations above the brand's usual, after its own scatter) of a candidate."""
    strong_score: float = 9.0
    """A score this high corroborates itself."""
    lift: float = 0.06
    """Mean negative probability per story above the brand's usual (0.08 ≈ a third of stories flipping to negative)."""
    negative_ratio: float = 1.5
    """Negative stories (expected) at this multiple of the brand's usual at that scale (scales up to
    ``short_scale`` windows): a short rise must be loud as well as negative."""
    long_ratio: float = 1.0
    """The same for the longer scales, where the number of stories already makes the share significant: a slow
    burn in a quiet hour has more negative stories than usual for that many stories, not more stories."""
    short_scale: int = 5
    long_lift: float = 0.08
    """The lift needed at the longer scales: with thousands of stories a small drift is many deviations."""
    scales: tuple[int, ...] = SCALES
    """The time scales (in windows) the test runs at."""
    record_ratio: float = 6.0
    """Negative-story volume at this multiple of the usual corroborates on its own."""
    min_negative_stories: float = 4.0
    """Expected negative stories a candidate needs at its scale."""
    watch_score: float = 3.0
    """A window whose negativity reaches this score (with half the lift) may warn; below, it is at most info."""
    persist: int = 2
    """Candidate windows among the last ``persist_of`` that make a crisis."""
    persist_of: int = 3
    term_surprise: float = 4.0
    """``-log10 p`` of a crisis concept's count against the brand's own rate that corroborates."""
    min_term_mentions: int = 3
    baseline_half_life: float = 86400.0
    """Event-time half-life of the brand's usual negativity (seconds)."""
    scatter_half_life_windows: float = 3 * 1440.0
    term_half_life: float = 3 * 86400.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", tuple(sorted({int(x) for x in self.scales})))  # from JSON: a list
        if not self.scales or self.scales[0] < 1:
            raise ValueError("scales must be positive numbers of windows")
        if not 1 <= self.persist <= self.persist_of:
            raise ValueError("need 1 <= persist <= persist_of")
        if self.score <= 0 or self.lift < 0 or self.negative_ratio < 1:
            raise ValueError("score must be > 0, lift >= 0 and negative_ratio >= 1")


@dataclass
class ScaleEvidence:
    """The negativity test at one scale."""

    windows: int
    stories: int
    negative: float
    """Expected negative stories (sum of probabilities)."""
    usual: float
    """What the brand's usual per-story negativity predicts for these stories."""
    score: float
    lift: float
    ratio: float
    """Negative stories vs the brand's usual number of negative stories at this scale."""
    candidate: bool


@dataclass
class CrisisVerdict:
    """What the gate concluded about one window."""

    critical: bool
    candidate: bool
    watch: bool
    """Negativity is unusual enough for a warning (not yet for critical)."""
    scale: ScaleEvidence | None
    """The scale that made the window a candidate (the strongest), else the strongest scale."""
    persisted: int
    """Candidate windows among the last ``persist_of``."""
    corroboration: list[str]
    unusual_terms: dict[str, float]
    """Crisis concepts unusual for this brand, with their surprise (``-log10 p``)."""
    usual_negativity: float
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        return out


@dataclass
class GateState:
    """What a brand's gate remembers (JSON-friendly)."""

    recent: list[list[float]] = field(default_factory=list)
    """``[start, stories, negative_mass, expected_stories]`` of the last windows, oldest first."""
    candidates: list[int] = field(default_factory=list)
    """1/0 per recent window: was it a candidate."""
    mass_weight: float = 0.0
    mass_mean: float = 0.3
    mass_sq: float = 0.3**2 + 0.03
    scatter: dict[str, list[float]] = field(default_factory=dict)
    """Per scale: ``[sum of weights, weighted sum of squared scores]`` of ordinary windows."""
    term_mentions: float = 0.0
    term_counts: dict[str, float] = field(default_factory=dict)
    last_start: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy."""
        return {
            "recent": [list(row) for row in self.recent],
            "candidates": list(self.candidates),
            "mass_weight": self.mass_weight,
            "mass_mean": self.mass_mean,
            "mass_sq": self.mass_sq,
            "scatter": {k: list(v) for k, v in self.scatter.items()},
            "term_mentions": self.term_mentions,
            "term_counts": dict(self.term_counts),
            "last_start": self.last_start,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateState:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def _pooled(
    rows: list[list[float]], scales: tuple[int, ...], start: float, size: float
) -> dict[int, tuple[float, float, float]]:
    """``(stories, negative mass, expected stories)`` summed over the windows of each scale, in one pass back."""
    out: dict[int, tuple[float, float, float]] = {}
    pending = sorted(set(scales))
    n = mass = expected = 0.0
    for row in reversed(rows):
        while pending and row[0] <= start - pending[0] * size:
            out[pending.pop(0)] = (n, mass, expected)
        if not pending:
            break
        n += row[1]
        mass += row[2]
        expected += row[3]
    for scale in pending:
        out[scale] = (n, mass, expected)
    return out


def poisson_surprise(count: float, expected: float) -> float:
    """``-log10 P(X >= count)`` for ``X ~ Poisson(expected)``."""
    if count <= 0:
        return 0.0
    if expected <= 0:
        return 30.0
    p = float(gammainc(math.floor(count), expected))
    return min(30.0, -math.log10(p)) if p > 0 else 30.0


class CrisisGate:
    """One brand's corroborated-evidence gate to ``critical`` (see the module docstring)."""

    PRIOR_STORIES = 200.0
    PRIOR_SCATTER_WINDOWS = 30.0
    PRIOR_TERM_RATE = 0.002
    PRIOR_TERM_MENTIONS = 2000.0

    def __init__(self, policy: CrisisPolicy | None = None, state: GateState | None = None):
        self.policy = policy or CrisisPolicy()
        self.state = state or GateState()

    # --- the brand's usual ----------------------------------------------------------------------
    def usual(self) -> tuple[float, float]:
        """The brand's usual per-story negative probability and its variance across stories."""
        s = self.state
        w = self.PRIOR_STORIES
        mean = (0.3 * w + s.mass_mean * s.mass_weight) / (w + s.mass_weight)
        sq = ((0.3**2 + 0.03) * w + s.mass_sq * s.mass_weight) / (w + s.mass_weight)
        return mean, max(sq - mean * mean, 0.005)

    def scatter(self, scale: int) -> float:
        """How much more than sampling noise this brand's scores scatter at ``scale`` (>= 1)."""
        weight, total = self.state.scatter.get(str(scale), [0.0, 0.0])
        prior = self.PRIOR_SCATTER_WINDOWS
        return max(1.0, (prior * 1.0 + total) / (prior + weight))

    def term_rate(self, concept: str) -> float:
        s = self.state
        prior = self.PRIOR_TERM_MENTIONS
        return (self.PRIOR_TERM_RATE * prior + s.term_counts.get(concept, 0.0)) / (prior + s.term_mentions)

    # --- one window --------------------------------------------------------------------------------
    def observe(
        self,
        start: float,
        size: float,
        stories: int,
        negative_mass: float,
        negative_mass_sq: float,
        expected_stories: float,
        mentions: int,
        terms: dict[str, int],
        learn: bool = True,
    ) -> CrisisVerdict:
        """Judge the window starting at ``start`` (``size`` seconds), then learn from it when ordinary."""
        p, s = self.policy, self.state
        in_order = s.last_start is None or start > s.last_start
        recent = [w for w in s.recent if w[0] > start - max(p.scales) * size - 0.5 * size and w[0] < start]
        rows = [*recent, [start, float(stories), float(negative_mass), float(max(expected_stories, 0.0))]]
        mean, variance = self.usual()
        pooled = _pooled(rows, (*p.scales, RECENT_WINDOWS), start, size)
        evidence = [self._scale(scale, *pooled[scale], mean, variance) for scale in p.scales]
        # a pooled scale speaks for this window only while the last few windows still take part in the rise
        recently = self._scale(RECENT_WINDOWS, *pooled[RECENT_WINDOWS], mean, variance)
        alone = self._scale(1, *pooled[1], mean, variance)
        now = recently.stories > 0 and (alone.stories == 0 or alone.lift >= 0)
        # the longer a scale, the more it remembers: it speaks for this window only while the last few windows
        # still rise by half the lift (short scales) or by the whole long-scale lift (an hour after a crisis,
        # its windows must not keep the 60-window score up)
        current_short = now and recently.lift >= 0.5 * p.lift
        current_long = now and recently.lift >= p.long_lift
        candidates = [
            e
            for e in evidence
            if e.candidate and (e.windows == 1 or (current_short if e.windows <= p.short_scale else current_long))
        ]
        watch = bool(candidates) or any(
            e.score >= p.watch_score and e.lift >= 0.5 * p.lift and e.negative >= 0.5 * p.min_negative_stories
            for e in evidence
            if e.windows == 1 or current_short
        )
        best = max(candidates or evidence, key=lambda e: e.score)
        candidate = bool(candidates)
        history = [*s.candidates, int(candidate)][-p.persist_of :] if in_order else [*s.candidates, int(candidate)]
        persisted = sum(history[-p.persist_of :])

        unusual_terms: dict[str, float] = {}
        window_mentions = max(1, mentions)
        for concept, count in terms.items():
            if count < p.min_term_mentions:
                continue
            surprise = poisson_surprise(count, self.term_rate(concept) * window_mentions)
            if surprise >= p.term_surprise:
                unusual_terms[concept] = round(surprise, 1)
        corroboration = []
        if unusual_terms:
            corroboration.append("crisis terms unusual for this brand: " + ", ".join(sorted(unusual_terms)))
        if best.ratio >= p.record_ratio:
            corroboration.append(f"{best.ratio:.0f}x the usual number of negative stories")
        if best.score >= p.strong_score:
            corroboration.append(f"negativity {best.score:.0f} sd above usual")
        critical = candidate and persisted >= p.persist and bool(corroboration)
        reasons = self._reasons(best, persisted, corroboration, mean)
        verdict = CrisisVerdict(
            critical, candidate, watch, best, persisted, corroboration, unusual_terms, mean, reasons
        )

        if learn and in_order:
            s.candidates = history
            s.recent = rows[-max(p.scales) :]
            self._learn(start, stories, negative_mass, negative_mass_sq, evidence, candidate, mentions, terms)
            s.last_start = start
        return verdict

    def _scale(
        self, scale: int, n: float, mass: float, expected: float, mean: float, variance: float
    ) -> ScaleEvidence:
        p = self.policy
        if n < 1:
            return ScaleEvidence(scale, 0, 0.0, 0.0, 0.0, 0.0, 0.0, False)
        usual = mean * n
        spread = math.sqrt(n * variance * self.scatter(scale))
        score = (mass - usual) / spread
        lift = mass / n - mean
        usual_volume = mean * max(expected, 0.5 * scale)
        ratio = mass / usual_volume if usual_volume > 0 else 0.0
        short = scale <= p.short_scale
        needed_ratio, needed_lift = (p.negative_ratio, p.lift) if short else (p.long_ratio, p.long_lift)
        candidate = (
            score >= p.score and lift >= needed_lift and ratio >= needed_ratio and mass >= p.min_negative_stories
        )
        return ScaleEvidence(scale, int(n), round(mass, 2), round(usual, 2), round(score, 2), round(lift, 3),
                             round(ratio, 2), candidate)  # fmt: skip

    def _learn(
        self,
        start: float,
        stories: int,
        negative_mass: float,
        negative_mass_sq: float,
        evidence: list[ScaleEvidence],
        candidate: bool,
        mentions: int,
        terms: dict[str, int],
    ) -> None:
        p, s = self.policy, self.state
        elapsed = start - s.last_start if s.last_start is not None else 0.0
        decay = 0.5 ** (max(elapsed, 0.0) / p.baseline_half_life)
        if stories > 0 and not candidate:  # a crisis does not teach the brand what is usual
            mean, variance = self.usual()
            # winsorise: a window far off the usual counts as if it were 3 sd off
            limit = mean + 3.0 * math.sqrt(variance / stories)
            per_story = min(negative_mass / stories, limit)
            weight = s.mass_weight * decay
            s.mass_mean = (s.mass_mean * weight + per_story * stories) / (weight + stories)
            per_story_sq = min(negative_mass_sq / stories, per_story)  # E[p^2] <= E[p] for p in [0, 1]
            s.mass_sq = (s.mass_sq * weight + per_story_sq * stories) / (weight + stories)
            s.mass_weight = weight + stories
        if not candidate:
            keep = 0.5 ** (1.0 / p.scatter_half_life_windows)
            for e in evidence:
                if e.stories < 3:
                    continue
                weight, total = s.scatter.get(str(e.windows), [0.0, 0.0])
                raw = e.score * math.sqrt(self.scatter(e.windows))  # the score before this brand's scatter
                s.scatter[str(e.windows)] = [weight * keep + 1.0, total * keep + min(raw * raw, 16.0)]
        if mentions > 0:
            term_decay = 0.5 ** (max(elapsed, 0.0) / p.term_half_life)
            s.term_mentions = s.term_mentions * term_decay + mentions
            for concept in list(s.term_counts):
                s.term_counts[concept] *= term_decay
            for concept, count in terms.items():
                s.term_counts[concept] = s.term_counts.get(concept, 0.0) + min(count, max(3.0, 0.2 * mentions))

    def _reasons(self, best: ScaleEvidence, persisted: int, corroboration: list[str], mean: float) -> list[str]:
        p = self.policy
        scale = "this window" if best.windows == 1 else f"the last {best.windows} windows"
        lines = [
            f"Negativity over {scale}: {best.negative:.1f} of {best.stories} stories expected negative vs "
            f"{best.usual:.1f} usual ({best.negative / max(best.stories, 1):.0%} vs {mean:.0%} per story), "
            f"{best.score:.1f} sd above the brand's usual, {best.ratio:.1f}x its usual negative stories",
            f"Persistence: {persisted} of the last {p.persist_of} windows showed it ({p.persist} needed)",
        ]
        lines.append("Corroboration: " + ("; ".join(corroboration) if corroboration else "none"))
        return lines

    def to_state(self) -> dict[str, Any]:
        return self.state.to_dict()

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, policy: CrisisPolicy | None = None) -> CrisisGate:
        return cls(policy, GateState.from_dict(state or {}))


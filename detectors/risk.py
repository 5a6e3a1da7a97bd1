"""Brand risk: one closed window plus its two spike verdicts in, a 0–100 risk with reasons out.

`RiskAssessor` scores a closed window (`detectors.closed.ClosedWindow`: the ``signals`` record, with the
volume and negativity detectors' verdicts) from six components, each in [0, 1]:

* **loudness** – how big the moment is: ``volume`` (distinct stories vs the volume detector's
  expectation: both the ratio and the evidence must be strong; near-duplicates count once), supported
  by ``reach`` (people the window's authors reach, absolute and against the brand's usual reach;
  copies add up here), ``spread`` (sources and languages beyond the brand's usual number) and
  ``acceleration`` (stories vs the median of the last ten windows). A volume spike alone can make a
  window fully loud, the supporting signals alone only partly (see `RiskWeights`). A brand's first
  ``warmup_windows`` windows have no baseline, so volume and acceleration count for nothing there: a
  brand just added can warn but not pause;
* **badness** – how bad it is: ``negativity`` (the negative share's rise over the brand's usual share,
  backed by the negativity detector's evidence, or a high negative share in a volume spike) combined
  with ``crisis_terms`` (severity-weighted lexicon hits, see `detectors.lexicon`).

``risk = 100 * (0.85 * sqrt(loudness * badness) + 0.15 * loudness)``: a loud moment alone stays low,
negativity without volume stays moderate, both together approach 100. Severity follows the policy's
thresholds with two gates: *critical* needs real negativity (a loud positive or neutral moment is never
critical, whatever the crisis terms say), and below ``min_mentions_to_alert`` mentions nothing is
above *info*. A pause is asked for at ``pause_severity`` with at least ``min_mentions_to_pause``
mentions from ``min_sources_to_pause`` sources.

`BrandRiskMonitor` adds the alert episode (`detectors.episodes.EpisodeTracker` over the severity rank):
one crisis is one episode that opens, escalates and resolves under one id, and asks for a pause once.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from scipy.special import gammainc

from crisiswatch.contracts.vocabulary import SEVERITIES, SEVERITY_RANK, Severity
from crisiswatch.detectors.citing import citation_order, cited, mention_concerning
from crisiswatch.detectors.closed import ClosedWindow
from crisiswatch.detectors.crisis import CrisisGate, CrisisPolicy, CrisisVerdict, GateState
from crisiswatch.detectors.episodes import EpisodeTracker
from crisiswatch.detectors.evidence import (
    CitedMention,
    Components,
    CrisisEvidence,
    Evidence,
    ScaleEvidence,
    SpikeEvidence,
    VolumeEvidence,
)
from crisiswatch.detectors.lexicon import CONCEPTS, concept_weight
from crisiswatch.detectors.volume import SpikeResult

PAUSE_SEVERITIES = (*SEVERITIES, "never")
PAUSE_SCOPES = ("brand", "global", "none")
ACCELERATION_WINDOWS = 10
"""Acceleration compares a window's stories with the median of this many windows before it."""
_UNKNOWN_LANGUAGES = frozenset({"", "und", "unknown", "zxx"})
_MIN_LOG_P = -300.0
_TOP_KEYS = ("id", "text", "source", "reach", "lang", "sentiment", "url")


@dataclass(frozen=True)
class RiskWeights:
    """How the loudness and badness components combine.

    ``loudness = 1 - (1 - volume) * (1 - support * support_mean)`` where ``support_mean`` is the
    weighted mean of reach, spread and acceleration: a volume spike alone can make a window fully loud,
    the supporting signals alone at most ``support``. ``badness = 1 - (1 - negativity) * (1 -
    crisis_terms * lexicon)``: crisis terms alone make a window at most ``crisis_terms`` bad.
    """

    reach: float = 0.3
    spread: float = 0.3
    acceleration: float = 0.4
    support: float = 0.6
    crisis_terms: float = 0.5

    def __post_init__(self) -> None:
        values = (self.reach, self.spread, self.acceleration)
        if min(values) < 0 or sum(values) <= 0:
            raise ValueError("reach, spread and acceleration weights must be >= 0 with a positive sum")
        if not 0 <= self.support <= 1 or not 0 <= self.crisis_terms <= 1:
            raise ValueError("support and crisis_terms weights must be within [0, 1]")


@dataclass(frozen=True)
class RiskPolicy:
    """The knobs of risk scoring, severities, pausing and alert episodes."""

    warning_at: float = 40.0
    critical_at: float = 70.0
    pause_severity: str = "critical"
    """Lowest severity that asks to pause publishing: ``info``, ``warning``, ``critical`` or ``never``."""
    min_mentions_to_pause: int = 20
    min_sources_to_pause: int = 1
    min_mentions_to_alert: int = 10
    """Fewer mentions than this in a window are never more than ``info``."""
    usual_negative_share: float = 0.15
    """Baseline negative share when the negativity detector gives none."""
    full_volume_ratio: float = 5.0
    """Stories at this multiple of the expectation give the full volume component."""
    full_volume_score: float = 6.0
    """Volume evidence (``-log10 p``) that gives the full volume component."""
    full_negativity_lift: float = 0.35
    """A negative share this far above the usual one gives the full negativity component."""
    full_negativity_score: float = 6.0
    """Negativity evidence (``-log10 p``) that backs the full negativity component."""
    warmup_windows: int = 5
    """A brand's first windows have no baseline: volume and acceleration count for nothing until then."""
    resolve_after: int = 3
    """Consecutive windows below ``warning`` that resolve an episode."""
    cooldown_seconds: float = 1800.0
    """After a resolution, no new episode opens this soon unless it is worse than the last one."""
    maturity_seconds: float = 86400.0
    """A brand with less event-time history than this may warn (and say it would pause) but never pauses."""
    pause_scope: Literal["brand", "global", "none"] = "brand"
    """What a pause stops: the brand's own publishing (``brand``), every account (``global``), or nothing
    (``none``: this policy never pauses automatically; alerts are unchanged)."""
    weights: RiskWeights = field(default_factory=RiskWeights)
    crisis: CrisisPolicy = field(default_factory=CrisisPolicy)
    """What ``critical`` needs: persistent, corroborated, brand-relative negativity (`detectors.crisis`)."""

    def __post_init__(self) -> None:
        if not 0 < self.warning_at < self.critical_at <= 100:
            raise ValueError("need 0 < warning_at < critical_at <= 100")
        if self.pause_severity not in PAUSE_SEVERITIES:
            raise ValueError(f"pause_severity must be one of {PAUSE_SEVERITIES}, got {self.pause_severity!r}")
        if self.pause_scope not in PAUSE_SCOPES:
            raise ValueError(f"pause_scope must be one of {PAUSE_SCOPES}, got {self.pause_scope!r}")
        if self.resolve_after < 1:
            raise ValueError("resolve_after must be at least 1")
        if isinstance(self.weights, dict):  # from JSON
            object.__setattr__(self, "weights", RiskWeights(**self.weights))
        if isinstance(self.crisis, dict):
            object.__setattr__(self, "crisis", CrisisPolicy(**self.crisis))

    def severity_of(self, risk: float) -> Severity:
        """Severity of a risk value by the thresholds alone (before the gates)."""
        if risk >= self.critical_at:
            return "critical"
        if risk >= self.warning_at:
            return "warning"
        return "info"

    def scope_for(self, brand: str) -> str:
        """The control scope a pause for ``brand`` stops."""
        return "global" if self.pause_scope == "global" else f"brand:{brand}"

    def pauses_at(self, severity: str) -> bool:
        """Whether a window of this severity reaches the pause severity."""
        if self.pause_severity == "never" or self.pause_scope == "none":
            return False
        return SEVERITY_RANK[severity] >= SEVERITY_RANK[self.pause_severity]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples as lists, so a round trip through JSON compares equal)."""
        data = asdict(self)
        data["crisis"]["scales"] = list(self.crisis.scales)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RiskPolicy:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_fields(cls, values: Mapping[str, Any]) -> RiskPolicy:
        """A policy from named fields (the rest keep their defaults); an unknown name is a `ValueError` that
        lists the known ones. `crisiswatch.settings.RiskSettings.policy` builds the global policy with it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown risk policy field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)


SENSITIVITIES = ("sensitive", "balanced", "quiet")
SENSITIVITY_PRESETS: dict[str, dict[str, float]] = {
    "sensitive": {
        "warning_at": 0.8, "critical_at": 0.85, "min_mentions_to_alert": 0.5, "min_mentions_to_pause": 0.5,
        "crisis.score": 0.75, "crisis.lift": 0.75, "crisis.min_negative_stories": 0.75,
    },
    "balanced": {},
    "quiet": {
        "warning_at": 1.25, "critical_at": 1.2, "min_mentions_to_alert": 2.0, "min_mentions_to_pause": 2.0,
        "crisis.score": 1.5, "crisis.lift": 1.5, "crisis.min_negative_stories": 2.0,
    },
}  # fmt: skip
"""Multipliers a sensitivity preset applies to the global policy (``crisis.x`` is a crisis gate field).

Integers are rounded; ``critical_at`` stays at most 100 and ``warning_at`` below it. ``balanced`` is the
global policy as it is."""
BRAND_POLICY_FIELDS = frozenset({
    "warning_at", "critical_at", "pause_severity", "pause_scope", "min_mentions_to_pause", "min_sources_to_pause",
    "min_mentions_to_alert", "usual_negative_share", "full_volume_ratio", "full_volume_score",
    "full_negativity_lift", "full_negativity_score", "warmup_windows", "resolve_after", "cooldown_seconds",
    "maturity_seconds",
})  # fmt: skip
"""Risk policy fields a brand may set in the brands file (not the weights: they shape every brand alike)."""
BRAND_CRISIS_FIELDS = frozenset({
    "score", "strong_score", "lift", "negative_ratio", "long_ratio", "long_lift", "record_ratio",
    "min_negative_stories", "watch_score", "persist", "persist_of", "term_surprise", "min_term_mentions",
})  # fmt: skip
"""Crisis gate fields a brand may set under ``crisis`` (not the scales and half-lives: they shape its state)."""


@functools.cache
def _field_types(cls: type) -> dict[str, str]:
    return {f.name: str(f.type) for f in fields(cls)}


def apply_sensitivity(policy: RiskPolicy, sensitivity: str) -> RiskPolicy:
    """``policy`` with the multipliers of a sensitivity preset (`SENSITIVITY_PRESETS`) applied."""
    if sensitivity not in SENSITIVITY_PRESETS:
        raise ValueError(f"sensitivity must be one of {', '.join(SENSITIVITIES)}, got {sensitivity!r}")
    top: dict[str, Any] = {}
    crisis: dict[str, Any] = {}
    for name, factor in SENSITIVITY_PRESETS[sensitivity].items():
        target, owner, key = (crisis, policy.crisis, name[7:]) if name.startswith("crisis.") else (top, policy, name)
        value = getattr(owner, key) * factor
        whole = _field_types(type(owner))[key] == "int"
        target[key] = round(value) if whole else round(float(value), 4)
    if "critical_at" in top:
        top["critical_at"] = min(100.0, top["critical_at"])
    if "warning_at" in top:
        top["warning_at"] = min(top["warning_at"], top.get("critical_at", policy.critical_at) - 1.0)
    if crisis:
        top["crisis"] = replace(policy.crisis, **crisis)
    return replace(policy, **top)


@dataclass(frozen=True)
class BrandPolicy:
    """One brand's policy in the brands file: a sensitivity preset and explicit fields on top of it.

    The brand's fields override the preset, which scales the global policy (the settings):
    ``policy_for(global) = global -> preset multipliers -> the brand's own fields``.
    """

    sensitivity: str = "balanced"
    fields: tuple[tuple[str, Any], ...] = ()
    """The brand's explicit risk policy fields, sorted by name (``crisis`` as sorted pairs too)."""

    @classmethod
    def parse(cls, data: Any, brand: str = "") -> BrandPolicy:
        """Validate a brand's ``policy`` mapping; `ValueError` naming the brand and the field on a bad one."""
        where = f"brand {brand!r}: policy" if brand else "policy"
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError(f"{where} must be a mapping")
        data = dict(data)
        sensitivity = data.pop("sensitivity", "balanced")
        if sensitivity not in SENSITIVITY_PRESETS:
            raise ValueError(f"{where}: sensitivity must be one of {', '.join(SENSITIVITIES)}, got {sensitivity!r}")
        unknown = sorted(set(data) - BRAND_POLICY_FIELDS - {"crisis"})
        if unknown:
            raise ValueError(
                f"{where}: unknown field(s) {', '.join(unknown)}; known: sensitivity, crisis, "
                f"{', '.join(sorted(BRAND_POLICY_FIELDS))}"
            )
        crisis = data.get("crisis")
        if crisis is not None:
            if not isinstance(crisis, Mapping):
                raise ValueError(f"{where}: crisis must be a mapping")
            bad = sorted(set(crisis) - BRAND_CRISIS_FIELDS)
            if bad:
                known = ", ".join(sorted(BRAND_CRISIS_FIELDS))
                raise ValueError(f"{where}: unknown crisis field(s) {', '.join(bad)}; known: {known}")
            data["crisis"] = tuple(sorted(crisis.items()))
        for name, value in data.items():
            if name in ("pause_severity", "pause_scope", "crisis"):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{where}: {name} must be a number >= 0, got {value!r}")
        parsed = cls(str(sensitivity), tuple(sorted(data.items())))
        try:
            parsed.apply(RiskPolicy())  # the values themselves (ranges, names) are checked here
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        return parsed

    def apply(self, base: RiskPolicy) -> RiskPolicy:
        """The brand's policy on top of ``base`` (the global policy)."""
        policy = apply_sensitivity(base, self.sensitivity)
        own = dict(self.fields)
        crisis = own.pop("crisis", None)
        if crisis:
            own["crisis"] = replace(policy.crisis, **dict(crisis))
        for name in ("min_mentions_to_pause", "min_sources_to_pause", "min_mentions_to_alert", "warmup_windows",
                     "resolve_after"):  # fmt: skip
            if name in own:
                if own[name] != int(own[name]):
                    raise ValueError(f"{name} must be a whole number")
                own[name] = int(own[name])
        policy = replace(policy, **own)
        if not 0 < policy.warning_at < policy.critical_at <= 100:
            raise ValueError(f"need 0 < warning_at ({policy.warning_at}) < critical_at ({policy.critical_at}) <= 100")
        return policy

    def to_dict(self) -> dict[str, Any]:
        """As written in the brands file (what the risk stage logs when it changes)."""
        out: dict[str, Any] = {"sensitivity": self.sensitivity}
        for name, value in self.fields:
            out[name] = dict(value) if name == "crisis" else value
        return out


@dataclass(frozen=True)
class RiskAssessment:
    """The verdict on one window."""

    risk: float
    """0–100."""
    severity: Severity
    summary: str
    """One line, e.g. "acme: 412 mentions vs 35 expected (11.8x), 78% negative vs 12% usual, …"."""
    explain: Callable[[], list[str]] = field(repr=False, compare=False)
    """Builds `explanation` (only windows that make an alert need the words)."""
    evidence: Evidence = field(default_factory=Evidence)
    """The numbers behind the verdict (`detectors.evidence.Evidence`: what the alert carries)."""
    pause: bool = False
    """The policy asks to pause publishing for this window (before episode idempotence)."""

    @functools.cached_property
    def explanation(self) -> list[str]:
        """Human-readable lines: the numbers behind the verdict."""
        return self.explain()


@dataclass
class BrandHistory:
    """The little a brand's assessor remembers between windows."""

    last_start: float | None = None
    last_end: float | None = None
    recent_stories: list[int] = field(default_factory=list)
    """Distinct stories of the last ``ACCELERATION_WINDOWS`` windows, oldest first."""
    window_expected: float | None = None
    """The volume detector's expectation for one window, as last seen on a window tested on its own."""
    reach_baseline: float = 0.0
    """Exponentially weighted mean reach per window (crisis windows are clipped before they count)."""
    windows: int = 0
    usual_share: float | None = None
    """The negativity detector's baseline share, as last seen on a window tested on its own."""
    sources_baseline: float = 0.0
    """Exponentially weighted mean number of sources per window."""
    languages_baseline: float = 0.0
    """Exponentially weighted mean number of known languages per window."""
    first_start: float | None = None
    """Event time of the brand's first window: its history is mature ``maturity_seconds`` later."""
    gate: GateState = field(default_factory=GateState)
    """The state of its `detectors.crisis.CrisisGate`."""

    def __post_init__(self) -> None:
        if isinstance(self.gate, dict):  # from JSON
            self.gate = GateState.from_dict(self.gate)


def _clip(x: float, low: float = 0.0, high: float = 1.0) -> float:
    if x != x:  # NaN
        return low
    return low if x < low else high if x > high else x


def _finite(x: Any, default: float = 0.0) -> float:
    """``x`` as a finite float: NaN and junk become ``default``; infinities and numbers too large for a float
    (an int of 10^400 makes ``float()`` raise OverflowError) become +-1e300."""
    try:
        value = float(x)
    except OverflowError:
        try:
            negative = x < 0
        except Exception:
            return default
        return -1e300 if negative else 1e300
    except (TypeError, ValueError):
        return default
    if math.isnan(value):
        return default
    if math.isinf(value):
        return 1e300 if value > 0 else -1e300
    return value


def poisson_score(count: float, expected: float) -> float:
    """``-log10 P(X >= count)`` for ``X ~ Poisson(expected)``: a duplicate-proof check of volume evidence."""
    if count <= 0:
        return 0.0
    if expected <= 0:
        return 300.0
    p = float(gammainc(math.floor(count), expected))  # regularised lower incomplete gamma = P(X >= k)
    return -math.log10(p) if p > 10**_MIN_LOG_P else -_MIN_LOG_P


def _top(counter: Any, n: int) -> list[tuple[str, int]]:
    items = [(str(k), int(v)) for k, v in dict(counter or {}).items() if v]
    return sorted(items, key=lambda kv: (-kv[1], kv[0]))[:n]


def _fmt_count(n: float) -> str:
    n = float(n)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= limit:
            return f"{n / limit:.1f}{suffix}"
    return f"{n:.0f}"


def _fmt_p(p: float) -> str:
    return f"{p:.0e}" if p < 0.001 else f"{p:.3f}"


class RiskAssessor:
    """Scores closed windows into a risk, keeping a small history per brand for reach and acceleration."""

    def __init__(self, policy: RiskPolicy | None = None, history: dict[str, BrandHistory] | None = None):
        self.policy = policy or RiskPolicy()
        self.history: dict[str, BrandHistory] = history or {}

    def assess(self, window: ClosedWindow, learn: bool = True) -> RiskAssessment:
        """The risk of one closed window; with ``learn`` the brand's history then takes the window in."""
        policy, w = self.policy, self.policy.weights
        volume, negativity = window.volume, window.negativity
        brand = str(window.brand)
        history = self.history.get(brand) or BrandHistory()
        mentions = max(0, int(window.mentions))
        negative = min(max(0, int(window.negative)), mentions)
        stories = max(0, int(window.stories)) if mentions else 0
        stories = min(stories, mentions) if stories else mentions
        reach = max(0, int(_finite(window.reach)))
        sources = {k: int(v) for k, v in dict(window.sources or {}).items() if v}
        languages = {k: int(v) for k, v in dict(window.languages or {}).items() if v}
        known_languages = [k for k in languages if str(k).lower() not in _UNKNOWN_LANGUAGES]
        terms = {k: int(v) for k, v in dict(window.crisis_terms or {}).items() if v}

        # --- loudness -------------------------------------------------------------------------------
        # The stream feeds the volume detector distinct stories. Its verdict is either about this window
        # (observed == stories) or about the sum of the last several windows (a sustained rise), which
        # is stronger evidence but a diluted ratio: the ratio then uses the last per-window expectation.
        observed = max(0.0, _finite(volume.observed))
        detector_expected = max(0.0, _finite(volume.expected))
        volume_score = max(0.0, _finite(volume.score))
        alone = volume.windows == 1
        single = alone and abs(observed - stories) < 0.5
        if single:
            expected = detector_expected
        elif alone and abs(observed - mentions) < 0.5 and mentions > stories:  # fed mentions, not stories: recheck
            expected = detector_expected
            volume_score = min(volume_score, poisson_score(stories, expected))
        elif history.window_expected is not None:
            expected = history.window_expected
        else:
            expected = detector_expected * stories / observed if observed > 0 else detector_expected
        ratio = (stories + 1.0) / (expected + 1.0)
        warm = history.windows >= policy.warmup_windows
        volume_part = min(
            _clip(math.log2(ratio) / math.log2(policy.full_volume_ratio)),
            _clip(volume_score / policy.full_volume_score),
        ) if warm else 0.0
        absolute_reach = _clip((math.log10(reach + 1.0) - 3.0) / 4.0)  # 1k -> 0, 10M -> 1
        if history.windows >= 3 and history.reach_baseline > 0:
            relative_reach = _clip(math.log2((reach + 1.0) / (history.reach_baseline + 1.0)) / 4.0)
        else:
            relative_reach = absolute_reach
        reach_part = 0.5 * absolute_reach + 0.5 * relative_reach
        # Spread counts sources and languages beyond the brand's usual ones (a level is not news).
        usual_sources = max(1.0, history.sources_baseline) if warm else 1.0
        usual_languages = max(1.0, history.languages_baseline) if warm else 1.0
        spread_part = 0.5 * _clip((len(sources) - usual_sources) / 3.0) + 0.5 * _clip(
            (len(known_languages) - usual_languages) / 3.0
        )
        recent = history.recent_stories if self._adjacent(history, window) else []
        previous = float(statistics.median(recent)) if len(recent) >= 3 else expected
        acceleration = (stories + 1.0) / (previous + 1.0)
        acceleration_part = _clip(math.log2(acceleration) / 3.0) if stories and warm and len(recent) >= 3 else 0.0
        support = (w.reach * reach_part + w.spread * spread_part + w.acceleration * acceleration_part) / (
            w.reach + w.spread + w.acceleration
        )
        loudness = 1.0 - (1.0 - volume_part) * (1.0 - w.support * support)
        if not mentions:
            loudness = 0.0

        # --- badness --------------------------------------------------------------------------------
        share = negative / mentions if mentions else 0.0
        negativity_expected = max(0.0, _finite(negativity.expected))
        own_test = (
            negativity.windows == 1
            and mentions > 0
            and negativity_expected > 0
            and abs(_finite(negativity.observed) - negative) < 0.5
        )
        if own_test:  # expected = baseline share * this window's mentions
            usual = negativity_expected / mentions
        else:  # no baseline yet, or the detector reported a test pooled over several windows
            usual = history.usual_share if history.usual_share is not None else policy.usual_negative_share
        usual = _clip(usual, 0.01, 0.95)
        negativity_score = max(0.0, _finite(negativity.score))
        by_share = min(
            _clip((share - usual) / policy.full_negativity_lift),
            _clip(negativity_score / policy.full_negativity_score),
        )
        by_volume = _clip((share - 0.25) / 0.35) * volume_part  # a mostly negative burst, whatever the usual share
        negativity_part = max(by_share, by_volume)
        if bool(negativity.spike) and share > usual:
            negativity_part = max(negativity_part, 0.6)
        strengths = []
        for term, count in terms.items():
            weight = concept_weight(term)
            strengths.append(weight * _clip(count / max(3.0, 0.15 * mentions)))
        crisis_part = 1.0 - math.prod(1.0 - s for s in strengths) if strengths else 0.0
        badness = 1.0 - (1.0 - negativity_part) * (1.0 - w.crisis_terms * crisis_part)

        # --- risk, gates, pause ---------------------------------------------------------------------
        risk = 100.0 * (0.85 * math.sqrt(loudness * badness) + 0.15 * loudness)
        gates: list[str] = []
        gate = CrisisGate(policy.crisis, history.gate)
        solo = window.solo_stories if window.solo_stories is not None else stories
        mass, mass_sq = window.negative_mass, window.negative_mass_sq
        if mass is None:  # a window without probabilities: its labels are the probabilities
            mass = mass_sq = float(window.negative_stories or negative)
        shared_fraction = solo / stories if stories else 1.0
        verdict = gate.observe(
            float(window.start), float(window.end) - float(window.start), int(solo), _finite(mass),
            _finite(mass_sq or 0.0), expected * shared_fraction if warm else stories, mentions, terms, learn=learn,
        )
        risk = round(_clip(risk, 0.0, 100.0), 1)  # round first: a cap must hold after rounding
        # a crisis is judged over the scale that made it critical: a sparse brand's alert counts those stories
        evidence_mentions = max(mentions, verdict.scale.stories if verdict.critical and verdict.scale else 0)
        if evidence_mentions < policy.min_mentions_to_alert and (risk >= policy.warning_at or verdict.critical):
            risk = min(risk, policy.warning_at - 1.0)
            gates.append(
                f"Capped at info: {evidence_mentions} mentions, fewer than the {policy.min_mentions_to_alert} "
                "needed to alert"
            )
        elif verdict.critical:
            risk = max(risk, policy.critical_at)
        elif risk >= policy.warning_at and not verdict.watch:
            risk = policy.warning_at - 1.0
            gates.append("Capped at info: negativity is usual for this brand (loud is not bad)")
        elif risk >= policy.critical_at:
            risk = policy.critical_at - 1.0
            gates.append("Capped at warning: " + _not_critical_because(verdict, policy))
        risk = round(_clip(risk, 0.0, 100.0), 1)
        severity = policy.severity_of(risk)
        enough_mentions = evidence_mentions >= policy.min_mentions_to_pause
        enough_sources = len(sources) >= policy.min_sources_to_pause
        first_start = history.first_start if history.first_start is not None else float(window.start)
        history_seconds = float(window.end) - first_start
        mature = history_seconds >= policy.maturity_seconds
        would_pause = policy.pauses_at(severity) and enough_mentions and enough_sources
        pause = would_pause and mature

        components = {
            "volume": volume_part, "reach": reach_part, "spread": spread_part, "acceleration": acceleration_part,
            "loudness": loudness, "negativity": negativity_part, "crisis_terms": crisis_part, "badness": badness,
        }
        negativity_alert = verdict.candidate or verdict.critical or bool(negativity.spike)  # cite the worrying first
        facts = _Facts(
            brand=brand, mentions=mentions, stories=stories, negative=negative, expected=expected, ratio=ratio,
            share=share, usual=usual, reach=reach, reach_baseline=history.reach_baseline if history.windows else None,
            sources=sources, languages=languages, known_languages=known_languages, terms=terms,
            previous=previous, adjacent=len(recent) >= 3, acceleration=acceleration,
            top=[
                m.model_dump() for m in cited(window.top_mentions, citation_order, mention_concerning, negativity_alert)
            ],
        )
        def explain() -> list[str]:
            lines = _explain(facts, volume, negativity, components, risk, gates)
            if verdict.candidate or verdict.critical:
                lines.extend(verdict.reasons)
            lines.append(
                _pause_line(
                    policy, severity, pause, evidence_mentions, len(sources), would_pause and not mature,
                    history_seconds,
                )
            )
            return lines

        evidence = _evidence(
            window, facts, volume, negativity, components, risk, severity, pause, gates, verdict, would_pause,
            history_seconds,
        )  # fmt: skip
        if learn:
            if history.first_start is None:
                history.first_start = float(window.start)
            self._learn(
                brand, history, window, stories, reach, len(sources), len(known_languages),
                usual if own_test else None, expected if single else None,
            )
        return RiskAssessment(risk, severity, _summary(facts), explain, evidence, pause)

    @staticmethod
    def _adjacent(history: BrandHistory, window: ClosedWindow) -> bool:
        """Whether the remembered windows end right where this one starts (no gap, in order)."""
        if history.last_end is None or history.last_start is None:
            return False
        return 0 <= window.start - history.last_end <= history.last_end - history.last_start

    def _learn(
        self,
        brand: str,
        history: BrandHistory,
        window: ClosedWindow,
        stories: int,
        reach: int,
        sources: int,
        languages: int,
        usual: float | None,
        window_expected: float | None,
    ) -> None:
        if history.last_end is not None and window.end <= history.last_end:
            return  # out of order or replayed: scored, not learned
        if usual is not None:
            history.usual_share = usual
        if window_expected is not None:
            history.window_expected = window_expected
        baseline = history.reach_baseline
        kept = float(reach)
        if history.windows >= 3 and baseline > 0:
            kept = min(kept, 5.0 * baseline)  # a crisis window barely moves the usual reach
        alpha = 0.1 if history.windows >= 10 else 1.0 / (history.windows + 1)
        history.reach_baseline = baseline + alpha * (kept - baseline)
        history.sources_baseline += alpha * (sources - history.sources_baseline)
        history.languages_baseline += alpha * (languages - history.languages_baseline)
        recent = history.recent_stories if self._adjacent(history, window) else []
        history.recent_stories = [*recent, stories][-ACCELERATION_WINDOWS:]
        history.windows += 1
        history.last_start, history.last_end = float(window.start), float(window.end)
        self.history[brand] = history

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state (policy included)."""
        return {"policy": self.policy.to_dict(), "history": {b: asdict(h) for b, h in self.history.items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any], policy: RiskPolicy | None = None) -> RiskAssessor:
        """Restore; a given ``policy`` replaces the stored one (configuration changes win over state)."""
        stored = RiskPolicy.from_dict(state.get("policy", {}))
        known = {f.name for f in fields(BrandHistory)}
        history = {
            b: BrandHistory(**{k: v for k, v in h.items() if k in known}) for b, h in state.get("history", {}).items()
        }
        return cls(policy or stored, history)


@dataclass
class _Facts:
    brand: str
    mentions: int
    stories: int
    negative: int
    expected: float
    ratio: float
    share: float
    usual: float
    reach: int
    reach_baseline: float | None
    sources: dict[str, int]
    languages: dict[str, int]
    known_languages: list[str]
    terms: dict[str, int]
    previous: float
    adjacent: bool
    acceleration: float
    top: list[dict[str, Any]]


def _summary(f: _Facts) -> str:
    if not f.mentions:
        return f"{f.brand}: no mentions"
    volume = (
        f"{f.stories} stories ({f.mentions} mentions)"
        if f.stories < f.mentions
        else f"{f.mentions} mention{'' if f.mentions == 1 else 's'}"
    )
    parts = [f"{f.brand}: {volume} vs {f.expected:.0f} expected ({f.ratio:.1f}x)"]
    parts.append(f"{f.share:.0%} negative vs {f.usual:.0%} usual")
    if len(f.known_languages) > 1:
        parts.append(f"{len(f.known_languages)} languages")
    if f.terms:
        parts.append("terms: " + ", ".join(t for t, _ in _top(f.terms, 3)))
    return ", ".join(parts)


def _p_text(verdict: SpikeResult) -> str:
    """The p-value of a detector's verdict, saying so when its test summed several windows."""
    p = f"p={_fmt_p(_clip(_finite(verdict.p_value, 1.0)))}"
    return p if verdict.windows <= 1 else f"{p} over the last {verdict.windows} windows"


def _explain(
    f: _Facts, volume: SpikeResult, negativity: SpikeResult, c: dict[str, float], risk: float, gates: list[str]
) -> list[str]:
    if not f.mentions:
        return ["No mentions in this window."]
    lines = []
    copies = f" from {f.mentions} mentions" if f.stories < f.mentions else ""
    lines.append(
        f"Volume: {f.stories} distinct stories{copies} vs {f.expected:.1f} expected "
        f"({f.ratio:.1f}x, {_p_text(volume)})"
    )
    lines.append(
        f"Negativity: {f.share:.0%} negative ({f.negative} of {f.mentions}) vs {f.usual:.0%} usual "
        f"({_p_text(negativity)})"
    )
    lines.append("Languages: " + ", ".join(f"{k} {v}" for k, v in _top(f.languages, 8)))
    reach = f"Reach: {_fmt_count(f.reach)} people"
    if f.reach_baseline:
        reach += f" (usually {_fmt_count(f.reach_baseline)} per window)"
    lines.append(reach)
    for m in f.top[:3]:
        text = " ".join(str(m.get("text", "")).split())
        text = text[:117] + "…" if len(text) > 120 else text
        lines.append(
            f"  top mention: {m.get('source', '?')}, {_fmt_count(_finite(m.get('reach')))} reach, "
            f"{m.get('lang', 'und')}, {m.get('sentiment', '?')}: \"{text}\""
        )
    if f.terms:
        lines.append(
            "Crisis terms: "
            + ", ".join(
                f"{t} x{n}" + (f" ({CONCEPTS[t].label})" if t in CONCEPTS and CONCEPTS[t].label != t else "")
                for t, n in _top(f.terms, 6)
            )
        )
    else:
        lines.append("Crisis terms: none")
    lines.append(f"Sources: {len(f.sources)} (" + ", ".join(f"{k} {v}" for k, v in _top(f.sources, 6)) + ")")
    previous = "a typical recent window" if f.adjacent else "the expectation"
    lines.append(f"Acceleration: {f.stories} stories vs {f.previous:.0f} in {previous} ({f.acceleration:.1f}x)")
    lines.append(
        f"Risk {risk:.0f}/100 = loudness {c['loudness']:.2f} (volume {c['volume']:.2f}, reach {c['reach']:.2f}, "
        f"spread {c['spread']:.2f}, acceleration {c['acceleration']:.2f}) x badness {c['badness']:.2f} "
        f"(negativity {c['negativity']:.2f}, crisis terms {c['crisis_terms']:.2f})"
    )
    lines.extend(gates)
    return lines


def _not_critical_because(verdict: CrisisVerdict, policy: RiskPolicy) -> str:
    """Why a window that scores high is not critical, in one phrase."""
    c = policy.crisis
    if not verdict.candidate:
        best = verdict.scale
        if best is None or best.stories == 0:
            return "no negativity to corroborate"
        return (
            f"negativity not unusual enough for this brand ({best.score:.1f} sd of {c.score:g}, "
            f"{best.ratio:.1f}x usual negative stories of {c.negative_ratio:g})"
        )
    if verdict.persisted < c.persist:
        return f"negativity not persistent yet ({verdict.persisted} of {c.persist} windows)"
    return "negativity not corroborated (no unusual crisis terms, no record volume)"


def _verdict_evidence(verdict: CrisisVerdict) -> CrisisEvidence:
    best = verdict.scale
    return CrisisEvidence(
        critical=verdict.critical,
        candidate=verdict.candidate,
        watch=verdict.watch,
        persisted=verdict.persisted,
        corroboration=list(verdict.corroboration),
        unusual_terms=dict(verdict.unusual_terms),
        usual_negativity=round(verdict.usual_negativity, 4),
        scale=None if best is None else ScaleEvidence(
            windows=best.windows, stories=best.stories, negative=best.negative, usual=best.usual,
            score=best.score, lift=best.lift, ratio=best.ratio,
        ),
    )  # fmt: skip


def _pause_line(
    policy: RiskPolicy, severity: str, pause: bool, mentions: int, sources: int, immature: bool = False,
    history_seconds: float = 0.0,
) -> str:
    if immature:
        return (
            f"Pause: would pause, but the brand has only {history_seconds / 3600:.1f} h of history "
            f"({policy.maturity_seconds / 3600:g} h needed before pausing automatically)"
        )
    if pause:
        return (
            f"Pause: yes ({severity} >= {policy.pause_severity}, {mentions} mentions >= "
            f"{policy.min_mentions_to_pause}, {sources} sources >= {policy.min_sources_to_pause})"
        )
    if policy.pause_scope == "none":
        return "Pause: no (automatic pauses are off for this brand: pause scope none)"
    if not policy.pauses_at(severity):
        return f"Pause: no ({severity} is below the pause severity {policy.pause_severity})"
    missing = []
    if mentions < policy.min_mentions_to_pause:
        missing.append(f"{mentions} mentions < {policy.min_mentions_to_pause}")
    if sources < policy.min_sources_to_pause:
        missing.append(f"{sources} sources < {policy.min_sources_to_pause}")
    return "Pause: no, not enough evidence (" + ", ".join(missing) + ")"


def _spike_evidence(s: SpikeResult, observed: float, expected: float) -> dict[str, Any]:
    """This window's count against its expectation, with the detector's evidence (which may be pooled)."""
    return {
        "observed": round(observed, 4), "expected": round(expected, 4),
        "score": round(_finite(s.score), 4), "p_value": _clip(_finite(s.p_value, 1.0)), "spike": bool(s.spike),
        "detector_observed": round(_finite(s.observed), 4), "detector_expected": round(_finite(s.expected), 4),
    }  # fmt: skip


def _evidence(
    window: ClosedWindow, f: _Facts, volume: SpikeResult, negativity: SpikeResult, c: dict[str, float], risk: float,
    severity: Severity, pause: bool, gates: list[str], verdict: CrisisVerdict, would_pause: bool,
    history_seconds: float,
) -> Evidence:
    top = [
        CitedMention(**{k: (m.get(k) if k != "reach" else int(_finite(m.get(k)))) for k in _TOP_KEYS if k in m})
        for m in f.top[:5]
    ]
    return Evidence(
        mentions=f.mentions,
        stories=f.stories,
        negative=f.negative,
        negative_stories=int(window.negative_stories or 0),
        neutral=int(window.neutral or 0),
        positive=int(window.positive or 0),
        negative_share=round(f.share, 4),
        expected_negative_share=round(f.usual, 4),
        reach=f.reach,
        usual_reach=round(f.reach_baseline, 1) if f.reach_baseline is not None else None,
        volume=VolumeEvidence(**_spike_evidence(volume, f.stories, f.expected), ratio=round(f.ratio, 3)),
        negativity=SpikeEvidence(**_spike_evidence(negativity, f.negative, f.usual * f.mentions)),
        languages={str(k): v for k, v in f.languages.items()},
        sources={str(k): v for k, v in f.sources.items()},
        crisis_terms={str(k): v for k, v in f.terms.items()},
        acceleration=round(f.acceleration, 3),
        previous_stories=round(f.previous, 3),
        top_mentions=top,
        components=Components(**{k: round(v, 4) for k, v in c.items()}),
        gates=list(gates),
        risk=risk,
        severity=severity,
        pause=pause,
        window_start=float(window.start),
        window_end=float(window.end),
        crisis=_verdict_evidence(verdict),
        would_pause=would_pause,
        history_hours=round(history_seconds / 3600.0, 2),
    )


@dataclass(frozen=True)
class RiskDecision:
    """What one window did to a brand's alert episode."""

    assessment: RiskAssessment
    alert_kind: Literal["opened", "escalated", "resolved"] | None
    """``None`` when nothing changed that deserves an alert record."""
    episode_id: str | None
    """Stable alert id across escalation and resolution; ``None`` when no episode is open."""
    pause: bool
    """True only on the first window of an episode that reaches the pause severity with enough evidence."""


class BrandRiskMonitor:
    """Risk plus alert episode for one brand: `observe` each closed window in event-time order."""

    def __init__(
        self,
        brand: str,
        policy: RiskPolicy | None = None,
        assessor: RiskAssessor | None = None,
        tracker: EpisodeTracker | None = None,
        paused_episode: str | None = None,
    ):
        self.brand = brand
        self.policy = policy or (assessor.policy if assessor else RiskPolicy())
        self.assessor = assessor or RiskAssessor(self.policy)
        self.assessor.policy = self.policy
        self.tracker = tracker or EpisodeTracker(key=brand)
        self.tracker.open_level = SEVERITY_RANK["warning"]
        self.tracker.close_level = SEVERITY_RANK["warning"]
        self.tracker.resolve_after = self.policy.resolve_after
        self.tracker.cooldown_seconds = self.policy.cooldown_seconds
        self.paused_episode = paused_episode

    @property
    def episode_id(self) -> str | None:
        """The open episode, if any."""
        return self.tracker.episode_id

    def set_policy(self, policy: RiskPolicy) -> None:
        """Use ``policy`` from the next window on (history and the open episode are kept)."""
        self.policy = policy
        self.assessor.policy = policy
        self.tracker.resolve_after = policy.resolve_after
        self.tracker.cooldown_seconds = policy.cooldown_seconds

    def observe(self, window: ClosedWindow, silenced: bool = False) -> RiskDecision:
        """Assess a closed window and step the episode: opened / escalated / resolved, and a pause at most once.

        A ``silenced`` window (a planned event) is assessed and alerted as usual but never pauses; its episode
        is not marked as paused, so a crisis that is still critical after the silence pauses then.
        """
        assessment = self.assessor.assess(window)
        step = self.tracker.update(float(window.end), SEVERITY_RANK[assessment.severity])
        kind = step.kind if step.kind in ("opened", "escalated", "resolved") else None
        pause = False
        first_pause = step.episode_id is not None and self.paused_episode != step.episode_id
        if first_pause and kind != "resolved" and assessment.pause and not silenced:
            pause = True
            self.paused_episode = step.episode_id
            kind = kind or "escalated"  # the episode now asks to pause: that is news worth an alert
        return RiskDecision(assessment, kind, step.episode_id, pause)  # type: ignore[arg-type]

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state: policy, assessor history, episode, and which episode already paused."""
        return {
            "brand": self.brand,
            "policy": self.policy.to_dict(),
            "assessor": self.assessor.to_state(),
            "tracker": self.tracker.to_state(),
            "paused_episode": self.paused_episode,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], policy: RiskPolicy | None = None) -> BrandRiskMonitor:
        """Restore; a given ``policy`` replaces the stored one (so configuration changes take effect)."""
        policy = policy or RiskPolicy.from_dict(state.get("policy", {}))
        return cls(
            state["brand"],
            policy,
            RiskAssessor.from_state(state.get("assessor", {}), policy),
            EpisodeTracker.from_state(state["tracker"]),
            state.get("paused_episode"),
        )

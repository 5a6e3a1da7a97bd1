"""Spike detectors for brand mention streams, and binary alerts through alert episodes.

* `VolumeSpikeDetector` (in `detectors.volume`): seasonal negative-binomial count model per brand.
* `NegativeSpikeDetector` (in `detectors.negativity`): beta-binomial test of the negative share.
* `SpikeAlerter`: one detector plus a `detectors.episodes.EpisodeTracker`, so that one burst is one
  alert (hysteresis: open on a spike, stay open while the evidence stays above ``close_score``,
  resolve after ``resolve_seconds`` of calm, no new alert within ``cooldown_seconds`` of a resolution;
  with ``escalate=True`` a burst whose score is at least twice the previous peak's re-alerts).
"""

from __future__ import annotations

import math
from typing import Any

from crisiswatch.detectors.episodes import EpisodeTracker, EpisodeUpdate
from crisiswatch.detectors.negativity import NegativeSpikeDetector
from crisiswatch.detectors.volume import SpikeResult, VolumeSpikeDetector, evidence, nb_upper_tail

__all__ = [
    "NegativeSpikeDetector",
    "SpikeAlerter",
    "SpikeResult",
    "VolumeSpikeDetector",
    "alert_level",
    "evidence",
    "nb_upper_tail",
]

CALM, ELEVATED, SPIKE = 0, 1, 2


def alert_level(result: SpikeResult, close_score: float, open_score: float | None = None) -> int:
    """Episode level of a result: 0 = calm, 1 = still elevated (score >= ``close_score``), 2+ = spike.

    With ``open_score`` a spike's level grows by one per doubling of its score over ``open_score``,
    so a clearly bigger burst can re-open an episode during the cool-down of a smaller one.
    """
    if result.spike:
        if open_score and result.score > open_score:
            return SPIKE + min(int(math.log2(result.score / open_score)), 8)
        return SPIKE
    if result.score >= close_score and result.observed > result.expected:
        return ELEVATED
    return CALM


class SpikeAlerter:
    """Binary, online alert decisions for one series of buckets (used by ``crisiswatch detect-series``)."""

    def __init__(
        self,
        bucket_seconds: float = 60.0,
        key: str = "series",
        close_score: float | None = None,
        resolve_seconds: float = 1800.0,
        cooldown_seconds: float = 86400.0,
        escalate: bool = False,
        **tuning: Any,
    ) -> None:
        self.detector = VolumeSpikeDetector(bucket_seconds, **tuning)
        self.close_score = self.detector.config.threshold / 2 if close_score is None else close_score
        self.open_score = self.detector.config.threshold if escalate else None
        self.tracker = EpisodeTracker(
            key=key,
            open_level=SPIKE,
            close_level=ELEVATED,
            resolve_after=max(1, math.ceil(resolve_seconds / bucket_seconds)),
            cooldown_seconds=cooldown_seconds,
        )

    def update(self, t: float, count: float) -> tuple[SpikeResult, EpisodeUpdate]:
        """Score one bucket; the episode update says ``"opened"`` on the bucket that raises an alert."""
        result = self.detector.update(t, count)
        return result, self.decide(t, result)

    def decide(self, t: float, result: SpikeResult) -> EpisodeUpdate:
        """The episode step for a result already computed (e.g. by a detector shared between alerters)."""
        return self.tracker.update(t, alert_level(result, self.close_score, self.open_score))

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state (detector, episode tracker and alerting settings)."""
        return {
            "detector": self.detector.to_state(),
            "tracker": self.tracker.to_state(),
            "close_score": self.close_score,
            "open_score": self.open_score,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SpikeAlerter:
        alerter = cls.__new__(cls)
        alerter.detector = VolumeSpikeDetector.from_state(state["detector"])
        alerter.tracker = EpisodeTracker.from_state(state["tracker"])
        alerter.close_score = state["close_score"]
        alerter.open_score = state["open_score"]
        return alerter

"""Alert episodes: hysteresis and cool-down so that one crisis is one episode that escalates.

An `EpisodeTracker` watches an integer level per update (0 = calm, higher = worse; e.g. a severity
rank or "score above threshold"). It opens an episode when the level reaches ``open_level``,
reports an escalation whenever the level rises above the episode's peak, and resolves the episode
only after ``resolve_after`` consecutive updates below ``close_level``. After a resolution, a new
episode cannot open for ``cooldown_seconds`` unless the level exceeds the previous peak. The state
is a plain dict (`to_state` / `from_state`) so callers can changelog it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

EpisodeKind = Literal["opened", "escalated", "continued", "resolved"]


@dataclass(frozen=True)
class EpisodeUpdate:
    """What one update did to the episode."""

    kind: EpisodeKind | None
    """``None`` when nothing is open and nothing opened."""
    episode_id: str | None
    level: int
    peak: int


@dataclass
class EpisodeTracker:
    """Hysteresis over an integer level, keyed by ``key`` (e.g. a brand id)."""

    key: str
    open_level: int = 1
    close_level: int = 1
    resolve_after: int = 3
    cooldown_seconds: float = 0.0
    # state
    episode_id: str | None = None
    peak: int = 0
    calm_updates: int = 0
    last_resolved_at: float | None = None
    last_resolved_peak: int = 0
    last_time: float | None = None

    @property
    def active(self) -> bool:
        return self.episode_id is not None

    def update(self, t: float, level: int) -> EpisodeUpdate:
        """Feed the level observed at time ``t`` (seconds); updates older than the last are ignored."""
        if self.last_time is not None and t < self.last_time:
            return EpisodeUpdate(None if not self.active else "continued", self.episode_id, level, self.peak)
        self.last_time = t
        if self.episode_id is None:
            return self._maybe_open(t, level)
        if level > self.peak:
            self.peak = level
            self.calm_updates = 0
            return EpisodeUpdate("escalated", self.episode_id, level, self.peak)
        if level < self.close_level:
            self.calm_updates += 1
            if self.calm_updates >= self.resolve_after:
                resolved = self.episode_id
                self.last_resolved_at, self.last_resolved_peak = t, self.peak
                self.episode_id, self.calm_updates = None, 0
                peak, self.peak = self.peak, 0
                return EpisodeUpdate("resolved", resolved, level, peak)
        else:
            self.calm_updates = 0
        return EpisodeUpdate("continued", self.episode_id, level, self.peak)

    def _maybe_open(self, t: float, level: int) -> EpisodeUpdate:
        if level < self.open_level:
            return EpisodeUpdate(None, None, level, 0)
        cooling = (
            self.last_resolved_at is not None
            and t - self.last_resolved_at < self.cooldown_seconds
            and level <= self.last_resolved_peak
        )
        if cooling:
            return EpisodeUpdate(None, None, level, 0)
        self.episode_id = f"{self.key}:{int(t)}"
        self.peak, self.calm_updates = level, 0
        return EpisodeUpdate("opened", self.episode_id, level, level)

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state, configuration included."""
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EpisodeTracker:
        return cls(**state)

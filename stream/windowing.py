"""Event-time tumbling windows of one brand, closed by a watermark, scored by the spike detectors.

Pure logic (no Kafka): `BrandWindows` receives mentions with their event time, keeps the windows that
may still receive late mentions, and when the watermark passes a window's end plus the allowed
lateness, closes it and runs the volume and negativity detectors on it, in window order. Windows with
no mentions close as empty windows, so the detectors see the quiet too. The whole object round-trips
through a JSON-friendly dict so the stream can changelog it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from detectors.spikes import NegativeSpikeDetector, SpikeResult, VolumeSpikeDetector
from detectors.window import MentionFacts, WindowAggregate, WindowSummary, summarise, tumbling_window

MAX_GAP_WINDOWS = 60
"""At most this many empty windows are closed after a silence; beyond, time jumps forward."""
REPEAT_WINDOWS = 60
"""A story whose voices were all heard in one of this many earlier windows counts once (`forget_repeats`)."""
MAX_RECENT_STORIES = 3000
"""At most this many recent voice keys are remembered per brand (the oldest go first)."""

Placement = Literal["counted", "late", "too_late"]


@dataclass(frozen=True)
class ClosedWindow:
    """A window that will not change any more, with the detectors' verdicts."""

    summary: WindowSummary
    volume: SpikeResult
    negativity: SpikeResult


class BrandWindows:
    """All open windows and the spike detectors of one brand."""

    def __init__(
        self,
        brand: str,
        window_seconds: float,
        lateness_seconds: float,
        volume: VolumeSpikeDetector | None = None,
        negativity: NegativeSpikeDetector | None = None,
    ):
        self.brand = brand
        self.size = float(window_seconds)
        self.lateness = float(lateness_seconds)
        self.volume = volume or VolumeSpikeDetector(bucket_seconds=self.size)
        self.negativity = negativity or NegativeSpikeDetector(bucket_seconds=self.size)
        self.open: dict[float, WindowAggregate] = {}
        self.closed_until: float | None = None
        """End of the last closed window: mentions before it are too late."""
        self.max_event_time: float | None = None
        self.empty_streak = 0
        self.recent_stories: dict[int, float] = {}
        """Story key -> start of the last closed window that held it (insertion order = age)."""
        self.applied_offset = -1
        """Offset of the last input record applied (makes replays after a restart idempotent)."""

    def add(self, t: float, facts: MentionFacts) -> Placement:
        """Count a mention with event time ``t`` (epoch seconds) into its window."""
        start, end = tumbling_window(t, self.size)
        if self.closed_until is not None and end <= self.closed_until:
            return "too_late"
        late = self.max_event_time is not None and t < self.max_event_time
        window = self.open.get(start)
        if window is None:
            window = self.open[start] = WindowAggregate(brand=self.brand, start=start, end=end)
        window.add(facts, late=late)
        if self.max_event_time is None or t > self.max_event_time:
            self.max_event_time = t
        return "late" if late else "counted"

    def close_until(self, watermark: float) -> list[ClosedWindow]:
        """Close every window whose end plus the allowed lateness is at or before ``watermark``."""
        horizon = watermark - self.lateness
        if self.closed_until is None:
            if not self.open:
                return []
            self.closed_until = min(self.open)
        closed: list[ClosedWindow] = []
        start = self.closed_until
        while start + self.size <= horizon:
            window = self.open.pop(start, None)
            if window is not None:
                self.empty_streak = 0
            elif self.empty_streak >= MAX_GAP_WINDOWS:  # a long silence: jump, don't score every minute
                upcoming = min(self.open) if self.open else None
                if upcoming is None or upcoming + self.size > horizon:
                    self.closed_until = horizon - horizon % self.size
                    break
                start = self.closed_until = upcoming
                continue
            else:
                window = WindowAggregate(brand=self.brand, start=start, end=start + self.size)
                self.empty_streak += 1
            closed.append(self._score(window))
            start = self.closed_until = start + self.size
        return closed

    def _score(self, window: WindowAggregate) -> ClosedWindow:
        recent = self.recent_stories
        window.forget_repeats(recent, window.start - REPEAT_WINDOWS * self.size)
        for voices in window.solo_voices.values():  # refreshed: now the newest
            for key in voices:
                if key in recent:
                    recent[key] = recent.pop(key)
        while len(recent) > MAX_RECENT_STORIES:
            del recent[next(iter(recent))]
        volume = self.volume.update(window.start, float(window.story_count))
        negativity = self.negativity.update(window.start, window.mentions, window.negative)
        return ClosedWindow(summarise(window), volume, negativity)

    def to_state(self) -> dict[str, Any]:
        return {
            "brand": self.brand,
            "size": self.size,
            "lateness": self.lateness,
            "volume": self.volume.to_state(),
            "negativity": self.negativity.to_state(),
            "open": [w.to_state() for w in self.open.values()],
            "closed_until": self.closed_until,
            "max_event_time": self.max_event_time,
            "applied_offset": self.applied_offset,
            "recent_stories": [[k, t] for k, t in self.recent_stories.items()],
            "empty_streak": self.empty_streak,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BrandWindows:
        windows = cls(
            state["brand"],
            state["size"],
            state["lateness"],
            VolumeSpikeDetector.from_state(state["volume"]),
            NegativeSpikeDetector.from_state(state["negativity"]),
        )
        windows.open = {w["start"]: WindowAggregate.from_state(w) for w in state["open"]}
        windows.closed_until = state["closed_until"]
        windows.max_event_time = state["max_event_time"]
        windows.applied_offset = state["applied_offset"]
        windows.empty_streak = state.get("empty_streak", 0)
        windows.recent_stories = {int(k): float(t) for k, t in state.get("recent_stories", [])}
        return windows


class Watermark:
    """Event-time progress of one input partition whose records come from several upstream partitions.

    The enrich stage merges every ``mentions.raw`` partition into each brand's partition, and it may read
    one raw partition far ahead of another (a replay, a backlog after downtime). Taking the highest event
    time seen would then close windows before the records of the lagging partition arrive. So, as in
    Kafka Streams and Flink, the watermark is the *minimum* over upstream partitions of the highest event
    time each has delivered; an upstream partition that has been silent for ``idle_seconds`` (wall clock)
    stops holding it back. It never goes backwards.
    """

    def __init__(self, idle_seconds: float, value: float | None = None, sources: int = 0, now: float = 0.0):
        self.idle_seconds = idle_seconds
        self.value = value
        self.sources = sources
        """How many upstream partitions exist: one not heard from yet holds the watermark back."""
        self.started_at = now
        self.highest: dict[int, float] = {}
        self.seen_at: dict[int, float] = {}

    def observe(self, source: int, event_time: float, now: float) -> None:
        """A record from upstream partition ``source`` with ``event_time`` arrived at (monotonic) ``now``."""
        if event_time > self.highest.get(source, float("-inf")):
            self.highest[source] = event_time
        self.seen_at[source] = now

    def current(self, now: float) -> float | None:
        """The watermark at (monotonic) ``now``."""
        unheard = len(self.highest) < self.sources and now - self.started_at < self.idle_seconds
        active = [t for s, t in self.highest.items() if now - self.seen_at[s] < self.idle_seconds]
        if active and not unheard:
            candidate = min(active)
            if self.value is None or candidate > self.value:
                self.value = candidate
        return self.value

    def advance_to(self, event_time: float) -> None:
        """Move forward (idle flush); never backwards."""
        if self.value is None or event_time > self.value:
            self.value = event_time

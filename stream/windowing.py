"""Event-time tumbling windows of one brand, closed by per-source watermarks, scored by the spike detectors.

Pure logic (no Kafka):

* `SourcePolicy` says how late each source (or source kind: the mention's ``source``, or its part before
  ``:``) may deliver, and how long it may be silent before it stops holding windows open;
* `Watermark` tracks, for one input partition, the event-time progress of every upstream raw partition
  and of every source, and gives each brand its *closing point*: the lowest, over the sources that feed
  the brand and are not idle past their own limit, of the source's progress less its allowed lateness;
* `ClosingPolicy` is the idle / upstream-quiet decision: when event time of a silent partition may jump
  to the wall clock, and how long a silent upstream partition may hold the watermark back;
* `BrandWindows` receives mentions with their event time, keeps the windows that may still receive
  mentions, and when the closing point passes a window's end, closes it and runs the volume and
  negativity detectors on it, in window order. Windows with no mentions close as empty windows, so the
  detectors see the quiet too. A closed window is a `detectors.closed.ClosedWindow` (the ``signals``
  record itself). A mention for a window that already closed goes into a *correction* of
  that window (a `ClosedWindow` with ``revision`` >= 1 that carries only the late mentions), or, beyond
  the correction horizon, is refused (``too_late``: the caller dead-letters it).

Every object round-trips through a JSON-friendly dict so the stream can changelog it; on restore the
configuration (window size, lateness, limits) wins over what the state says.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from crisiswatch.detectors.closed import ClosedWindow
from crisiswatch.detectors.spikes import NegativeSpikeDetector, SpikeResult, VolumeSpikeDetector
from crisiswatch.detectors.window import MentionFacts, WindowAggregate, tumbling_window

if TYPE_CHECKING:
    from crisiswatch.settings import WorkerSettings

MAX_GAP_WINDOWS = 60
"""At most this many empty windows are closed after a silence; beyond, time jumps forward."""
REPEAT_WINDOWS = 60
"""A story whose voices were all heard in one of this many earlier windows counts once (`forget_repeats`)."""
MAX_RECENT_STORIES = 3000
"""At most this many recent voice keys are remembered per brand (the oldest go first)."""

Placement = Literal["counted", "late", "corrected", "too_late"]
"""Where a mention went: its open window (``late``: behind the newest mention seen), a correction of its
closed window, or nowhere (``too_late``: beyond the correction horizon; the caller dead-letters it)."""

OTHER_SOURCES = "*"
"""The source key of every source not named in the policy (they share the default lateness)."""

DEFAULT_SOURCE_LATENESS: dict[str, float] = {
    # Polled feeds: an item may be published minutes before the poll that finds it.
    "rss": 600.0,
    "atom": 600.0,
    "feed": 600.0,
    "reddit": 300.0,
    "hackernews": 300.0,
    "youtube": 600.0,
    # A replay file need not be sorted: give it room (set one file's own source, e.g. `replay:archive`).
    "replay": 300.0,
    # Streams: seconds.
    "mastodon": 30.0,
    "bluesky": 30.0,
    "x": 30.0,
}
"""Built-in allowed lateness per source kind, seconds (`WorkerSettings.source_lateness` overrides entries)."""

DEFAULT_SOURCE_IDLE: dict[str, float] = {
    "rss": 1800.0,
    "atom": 1800.0,
    "feed": 1800.0,
    "reddit": 900.0,
    "hackernews": 900.0,
    "youtube": 1800.0,
    "replay": 120.0,
    "mastodon": 60.0,
    "bluesky": 60.0,
    "x": 60.0,
}
"""Built-in idle limits per source kind, seconds of wall clock (`WorkerSettings.source_idle_seconds` overrides)."""


@dataclass(frozen=True)
class SourceRule:
    """How late one source may deliver, and how long it may be silent before it stops holding windows."""

    lateness: float
    idle: float


@dataclass(frozen=True)
class SourcePolicy:
    """Allowed lateness and idle limit per source key (pure; built from the settings).

    A mention's key is its ``source`` when the policy names it, else the part before the first ``:``
    when the policy names that (``rss:example.org`` → ``rss``), else `OTHER_SOURCES`. Keys are bounded by
    the configuration, so they are also the metric labels (``other`` for `OTHER_SOURCES`).
    """

    rules: Mapping[str, SourceRule]
    default: SourceRule
    _keys: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(
        cls,
        default_lateness: float,
        default_idle: float,
        lateness: Mapping[str, float] | None = None,
        idle: Mapping[str, float] | None = None,
    ) -> SourcePolicy:
        """The built-in defaults, overridden entry by entry by ``lateness`` and ``idle``."""
        late = {**DEFAULT_SOURCE_LATENESS, **(lateness or {})}
        quiet = {**DEFAULT_SOURCE_IDLE, **(idle or {})}
        rules = {
            key: SourceRule(float(late.get(key, default_lateness)), float(quiet.get(key, default_idle)))
            for key in late.keys() | quiet.keys()
        }
        return cls(rules, SourceRule(float(default_lateness), float(default_idle)))

    @classmethod
    def from_settings(cls, worker: WorkerSettings) -> SourcePolicy:
        """The policy of the worker settings (``CRISISWATCH_SOURCE_LATENESS`` and friends)."""
        return cls.of(
            worker.allowed_lateness_seconds,
            worker.source_idle_default_seconds,
            worker.source_lateness,
            worker.source_idle_seconds,
        )

    def key(self, source: str) -> str:
        """The policy key of a mention's ``source`` (bounded: a named source, a named kind, or ``*``)."""
        found = self._keys.get(source)
        if found is None:
            if source in self.rules:
                found = source
            else:
                kind = source.split(":", 1)[0]
                found = kind if kind in self.rules else OTHER_SOURCES
            if len(self._keys) < 10_000:  # a cache, bounded whatever the data says
                self._keys[source] = found
        return found

    def rule(self, key: str) -> SourceRule:
        return self.rules.get(key, self.default)

    @property
    def max_lateness(self) -> float:
        return max([self.default.lateness, *(r.lateness for r in self.rules.values())])

    @staticmethod
    def label(key: str) -> str:
        """The metric label of a key."""
        return "other" if key == OTHER_SOURCES else key


@dataclass(frozen=True)
class ClosingPolicy:
    """When a window stage partition closes windows without new data (pure; issue 11's closing rule).

    * ``upstream_idle_seconds``: an upstream raw partition silent this long (wall clock) stops holding the
      partition's watermark back. Raw partitions are read in chunks during a backlog, so this is a few idle
      periods (``CRISISWATCH_UPSTREAM_IDLE_FACTOR`` × ``CRISISWATCH_IDLE_FLUSH_SECONDS``, default 3 × 5 s).
    * `may_flush`: a partition silent for ``idle_flush_seconds`` whose watermark is behind the wall clock is
      a candidate; its event time moves to the wall clock only if, in addition, nothing is still on its
      way upstream (the caller asks the broker; `should_flush` combines both).
    * Sources themselves (`SourcePolicy`) keep holding their brands' windows for their own lateness after
      an idle flush, and stop holding them after their own idle limit.
    """

    idle_flush_seconds: float
    upstream_idle_factor: float = 3.0
    sources: SourcePolicy = field(default_factory=lambda: SourcePolicy.of(30.0, 60.0))
    max_hold_seconds: float | None = None
    """At most this far behind the upstream watermark does a slow source hold a brand's windows (None: as
    long as its own lateness). Past it the window closes and the slow source's mentions become corrections,
    carried into the next decision: faster decisions for brands fed by polled feeds, at the cost of
    counting those mentions one window later (``CRISISWATCH_MAX_WINDOW_HOLD_SECONDS``)."""

    @classmethod
    def from_settings(cls, worker: WorkerSettings) -> ClosingPolicy:
        """The closing rule of the worker settings."""
        return cls(
            worker.idle_flush_seconds,
            worker.upstream_idle_factor,
            SourcePolicy.from_settings(worker),
            worker.max_window_hold_seconds,
        )

    @property
    def upstream_idle_seconds(self) -> float:
        return self.upstream_idle_factor * self.idle_flush_seconds

    def may_flush(self, quiet_for: float, watermark: float | None, wall_now: float) -> bool:
        """Whether a partition silent for ``quiet_for`` seconds is a candidate for an idle flush."""
        return quiet_for >= self.idle_flush_seconds and (watermark is None or wall_now > watermark)

    def should_flush(self, quiet_for: float, watermark: float | None, wall_now: float, upstream_quiet: bool) -> bool:
        """Whether event time of the partition moves to the wall clock now."""
        return upstream_quiet and self.may_flush(quiet_for, watermark, wall_now)


def unscored(observed: float) -> SpikeResult:
    """The verdict a correction carries: the detectors did not look at it."""
    return SpikeResult(observed=observed, expected=0.0, score=0.0, p_value=1.0, spike=False)


class StateMismatch(ValueError):
    """A stored brand state was built with another window size than the one configured."""


class BrandWindows:
    """All open windows, pending corrections and the spike detectors of one brand.

    ``lateness_seconds`` is subtracted from the closing point given to `close_until` (the window stage
    passes 0: its per-source closing point already allows for each source's lateness).
    ``correction_horizon`` is how far behind the closing point a mention may still become a correction.
    """

    def __init__(
        self,
        brand: str,
        window_seconds: float,
        lateness_seconds: float = 0.0,
        volume: VolumeSpikeDetector | None = None,
        negativity: NegativeSpikeDetector | None = None,
        correction_horizon: float = math.inf,
    ):
        self.brand = brand
        self.size = float(window_seconds)
        self.lateness = float(lateness_seconds)
        self.correction_horizon = float(correction_horizon)
        self.volume = volume or VolumeSpikeDetector(bucket_seconds=self.size)
        self.negativity = negativity or NegativeSpikeDetector(bucket_seconds=self.size)
        self.open: dict[float, WindowAggregate] = {}
        self.closed_until: float | None = None
        """End of the last closed window: mentions before it go into corrections."""
        self.max_event_time: float | None = None
        self.empty_streak = 0
        self.recent_stories: dict[int, float] = {}
        """Story key -> start of the last closed window that held it (insertion order = age)."""
        self.applied_offset = -1
        """Offset of the last input record applied (makes replays after a restart idempotent)."""
        self.sources: set[str] = set()
        """Source keys (`SourcePolicy.key`) that fed this brand: its windows wait for each of them."""
        self.corrections: dict[float, WindowAggregate] = {}
        """Mentions for already closed windows, by window start, not published yet (`take_corrections`)."""
        self.revisions: dict[float, int] = {}
        """Last correction revision published per window start (within the correction horizon)."""

    def add(self, t: float, facts: MentionFacts, source_key: str | None = None) -> Placement:
        """Count a mention with event time ``t`` (epoch seconds) into its window, or into a correction."""
        if source_key is not None:
            self.sources.add(source_key)
        start, end = tumbling_window(t, self.size)
        if self.closed_until is not None and end <= self.closed_until:
            if self.closed_until - end > self.correction_horizon:
                return "too_late"
            correction = self.corrections.get(start)
            if correction is None:
                correction = self.corrections[start] = WindowAggregate(brand=self.brand, start=start, end=end)
            correction.add(facts, late=True)
            return "corrected"
        late = self.max_event_time is not None and t < self.max_event_time
        window = self.open.get(start)
        if window is None:
            window = self.open[start] = WindowAggregate(brand=self.brand, start=start, end=end)
        window.add(facts, late=late)
        if self.max_event_time is None or t > self.max_event_time:
            self.max_event_time = t
        return "late" if late else "counted"

    def take_corrections(self) -> list[ClosedWindow]:
        """The pending corrections, oldest window first, each with its next revision number."""
        out: list[ClosedWindow] = []
        for start in sorted(self.corrections):
            window = self.corrections[start]
            revision = self.revisions.get(start, 0) + 1
            self.revisions[start] = revision
            out.append(
                ClosedWindow.of(window, unscored(float(window.story_count)), unscored(float(window.negative)), revision)
            )
        self.corrections.clear()
        if self.closed_until is not None and math.isfinite(self.correction_horizon):
            oldest = self.closed_until - self.correction_horizon - self.size
            for start in [s for s in self.revisions if s < oldest]:
                del self.revisions[start]
        return out

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
        return ClosedWindow.of(window, volume, negativity)

    def to_state(self) -> dict[str, Any]:
        """JSON-friendly state (``size`` is kept to detect a changed configuration, never restored from)."""
        return {
            "brand": self.brand,
            "size": self.size,
            "volume": self.volume.to_state(),
            "negativity": self.negativity.to_state(),
            "open": [w.to_state() for w in self.open.values()],
            "closed_until": self.closed_until,
            "max_event_time": self.max_event_time,
            "applied_offset": self.applied_offset,
            "recent_stories": [[k, t] for k, t in self.recent_stories.items()],
            "empty_streak": self.empty_streak,
            "sources": sorted(self.sources),
            "corrections": [w.to_state() for w in self.corrections.values()],
            "revisions": [[start, n] for start, n in self.revisions.items()],
        }

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        window_seconds: float | None = None,
        lateness_seconds: float = 0.0,
        correction_horizon: float = math.inf,
    ) -> BrandWindows:
        """A brand's windows from its state, under the configured window size, lateness and horizon.

        Configuration wins over state: lateness and the horizon are never read from it, and a state
        built with another window size (its windows and the detectors' buckets) cannot be carried over,
        so it raises `StateMismatch` (the window stage then starts the brand afresh, and says so).
        ``window_seconds`` None takes the stored size (tests, tools).
        """
        stored = float(state["size"])
        size = stored if window_seconds is None else float(window_seconds)
        if stored != size:
            raise StateMismatch(f"brand {state['brand']!r}: state of {stored:g} s windows, configured {size:g} s")
        windows = cls(
            state["brand"],
            size,
            lateness_seconds,
            VolumeSpikeDetector.from_state(state["volume"]),
            NegativeSpikeDetector.from_state(state["negativity"]),
            correction_horizon,
        )
        windows.open = {w["start"]: WindowAggregate.from_state(w) for w in state["open"]}
        windows.closed_until = state["closed_until"]
        windows.max_event_time = state["max_event_time"]
        windows.applied_offset = state["applied_offset"]
        windows.empty_streak = state.get("empty_streak", 0)
        windows.recent_stories = {int(k): float(t) for k, t in state.get("recent_stories", [])}
        windows.sources = set(state.get("sources", []))
        windows.corrections = {w["start"]: WindowAggregate.from_state(w) for w in state.get("corrections", [])}
        windows.revisions = {float(start): int(n) for start, n in state.get("revisions", [])}
        return windows


BACKLOG_HOLD_FACTOR = 10.0
"""A raw partition with a backlog holds the watermark for at most this many upstream idle limits of silence
(150 s by default): long enough for a slow enrich stage, not for ever if it is stuck (then the windows close
and what arrives later becomes corrections, as before)."""


class Watermark:
    """Event-time progress of one input partition, per upstream raw partition and per source.

    The enrich stage merges every ``mentions.raw`` partition into each brand's partition, and it may read
    one raw partition far ahead of another (a replay, a backlog after downtime). Taking the highest event
    time seen would then close windows before the records of the lagging partition arrive. So, as in
    Kafka Streams and Flink, the upstream watermark (`current`) is the *minimum* over upstream partitions
    of the highest event time each has delivered; an upstream partition silent for the closing policy's
    ``upstream_idle_seconds`` (wall clock) stops holding it back, unless it is `backlogged` (the enrich
    stage has records of it still to do: a slow partition is not a silent one; for at most
    `BACKLOG_HOLD_FACTOR` idle limits). It never goes backwards.

    Sources deliver with different delays (a polled feed minutes late, a stream seconds), so each source
    key has its own progress too: the highest event time it delivered, capped by the upstream watermark.
    A brand's closing point (`closing_point`) is the lowest, over the sources that feed it and have not
    been silent past their own idle limit, of that progress less the source's allowed lateness: windows
    close when every live source that feeds the brand has passed them, and a dead source does not hold
    them open for ever. When none of its sources is live, the upstream watermark less the default
    lateness closes them. With ``ClosingPolicy.max_hold_seconds`` no source holds them longer than that
    behind the upstream watermark.
    """

    def __init__(self, policy: ClosingPolicy, value: float | None = None, upstreams: int = 0, now: float = 0.0):
        self.policy = policy
        self.idle_seconds = policy.upstream_idle_seconds
        self.value = value
        self.upstreams = upstreams
        """How many upstream partitions exist: one not heard from yet holds the watermark back."""
        self.started_at = now
        self.highest: dict[int, float] = {}
        self.seen_at: dict[int, float] = {}
        self.source_highest: dict[str, float] = {}
        self.source_seen_at: dict[str, float] = {}
        self.backlogged: frozenset[int] = frozenset()
        """Upstream partitions with records still on their way (set by the stage from the enrich group's lag)."""

    def observe(self, upstream: int, event_time: float, now: float, source: str = OTHER_SOURCES) -> None:
        """A record of source key ``source`` from upstream partition ``upstream`` with ``event_time`` arrived
        at (monotonic) ``now``."""
        if event_time > self.highest.get(upstream, -math.inf):
            self.highest[upstream] = event_time
        self.seen_at[upstream] = now
        if event_time > self.source_highest.get(source, -math.inf):
            self.source_highest[source] = event_time
        self.source_seen_at[source] = now

    def current(self, now: float) -> float | None:
        """The upstream watermark at (monotonic) ``now``."""
        hold = self.idle_seconds * BACKLOG_HOLD_FACTOR  # how long a backlogged partition may stay silent
        waiting = len(self.highest) < self.upstreams and now - self.started_at < self.idle_seconds
        unheard = waiting or (not self.backlogged <= self.highest.keys() and now - self.started_at < hold)
        active = [
            t
            for s, t in self.highest.items()
            if (quiet := now - self.seen_at[s]) < self.idle_seconds or (s in self.backlogged and quiet < hold)
        ]
        if active and not unheard:
            candidate = min(active)
            if self.value is None or candidate > self.value:
                self.value = candidate
        return self.value

    def source_points(self, now: float) -> dict[str, float]:
        """Each live source's closing point at (monotonic) ``now`` (idle sources are left out)."""
        upstream = self.current(now)
        if upstream is None:
            return {}
        points: dict[str, float] = {}
        for key, highest in self.source_highest.items():
            rule = self.policy.sources.rule(key)
            if now - self.source_seen_at.get(key, now) < rule.idle:
                points[key] = min(highest, upstream) - rule.lateness
        return points

    def closing_point(self, sources: Iterable[str], now: float, points: dict[str, float] | None = None) -> float | None:
        """Where the windows of a brand fed by ``sources`` close at (monotonic) ``now``.

        ``points``: `source_points` computed once for many brands.
        """
        upstream = self.current(now)
        if upstream is None:
            return None
        if points is None:
            points = self.source_points(now)
        live = [points[k] for k in sources if k in points]
        closing = min(live) if live else upstream - self.policy.sources.default.lateness
        hold = self.policy.max_hold_seconds
        return closing if hold is None else max(closing, upstream - hold)

    def advance_to(self, event_time: float) -> None:
        """Idle flush: nothing is on its way, so every upstream and every source has reached ``event_time``
        (a source still live holds its brands' windows for its own lateness). Never backwards."""
        if self.value is None or event_time > self.value:
            self.value = event_time
        for key, highest in self.source_highest.items():
            if event_time > highest:
                self.source_highest[key] = event_time

    def to_state(self) -> dict[str, Any]:
        return {"watermark": self.value, "sources": dict(self.source_highest)}

    def restore(self, state: dict[str, Any], now: float) -> None:
        """Take back a checkpointed progress; restored sources count as heard from at ``now``."""
        self.value = state.get("watermark")
        for key, highest in (state.get("sources") or {}).items():
            self.source_highest[key] = float(highest)
            self.source_seen_at[key] = now

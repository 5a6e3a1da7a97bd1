"""Prometheus metrics of the control plane (default registry; every label set is small and bounded).

``component`` is one of ``gate``, ``plane``, ``relay``, ``scheduler``, ``status``. ``scope`` (of
``crisiswatch_scope_paused``) is bounded by `ScopePausedTracker`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge

from crisiswatch.follow import LOG_RESETS  # noqa: F401  (defined with the follower that counts it)

MESSAGES_REJECTED = Counter(
    "crisiswatch_control_messages_rejected",
    "Control records refused (forged, unsigned, stale, replayed, ...); they never change state.",
    ["component", "reason"],
)
MESSAGES_APPLIED = Counter(
    "crisiswatch_control_messages_applied",
    "Verified control records that changed or re-asserted a scope's state.",
    ["component", "state"],
)
CHANGES_PUBLISHED = Counter(
    "crisiswatch_control_changes",
    "Pause/resume changes published by this process.",
    ["action", "actor_kind"],
)
TRIGGERS_IGNORED = Counter(
    "crisiswatch_control_triggers_ignored",
    "Pause/resume requests that changed nothing (same episode, already paused, not paused).",
    ["action"],
)
GATE_DECISIONS = Counter("crisiswatch_gate_decisions", "Answers of PublishingGate.allowed().", ["allowed", "why"])
GATE_VIEW_AGE = Gauge(
    "crisiswatch_gate_view_age_seconds",
    "Seconds since the gate last confirmed it was caught up with the control topic (-1: never).",
    ["gate"],
)
GATE_HEARTBEAT_AGE = Gauge(
    "crisiswatch_gate_heartbeat_age_seconds",
    "Seconds since the newest verified state heartbeat the gate holds was signed (-1: none).",
    ["gate"],
)
HEARTBEATS = Counter("crisiswatch_control_heartbeats", "State heartbeats written by this process.", ["writer"])
BACKLOG_POSTS = Counter("crisiswatch_backlog_posts", "Posts deferred by a pause and what became of them.", ["outcome"])
RELAY_DELIVERIES = Counter("crisiswatch_relay_deliveries", "Webhook delivery attempts of control changes.", ["outcome"])
SCHEDULE_TRANSITIONS = Counter("crisiswatch_schedule_transitions", "Pauses and resumes fired by schedules.", ["action"])

SCOPE_PAUSED = Gauge(
    "crisiswatch_scope_paused",
    "1 while the scope is paused, 0 once resumed, in this process's verified view of publishing.control "
    '(only scopes seen paused; past the label limit they share scope="other", 1 if any of them is paused).',
    ["scope"],
)
SCOPE_LABEL_LIMIT = 50
"""Scopes other than ``global`` that get their own ``scope`` label, per process."""
OVERFLOW_SCOPE = "other"


class ScopePausedTracker:
    """Keeps ``crisiswatch_scope_paused{scope}`` from the states a `ControlView` applies.

    Scopes are user-defined (``brand:<id>``, ``channel:<name>``, ``account:<id>``), so the label set is
    bounded: a scope gets a series only once it has been seen paused (a scope whose whole retained
    history is "active" has nothing to report, and after compaction old resumed scopes drop out on the
    next restart), ``global`` always gets its own, and the first ``limit`` other scopes get theirs; any
    further scope is folded into ``scope="other"``, 1 while at least one of them is paused. So each
    process exports at most ``limit + 2`` series, yet the usual case (a few brands or channels paused)
    names the scope, which a per-kind count would not. A labelled scope keeps its series (0 after a
    resume) for the life of the process, so a resume is visible and series do not flap.

    Idempotent, so several views in one process (a plane and gates, say) can share it: they read the
    same topic and converge on the same states. Aggregate across processes with ``max by (scope)``.
    """

    def __init__(self, gauge: Gauge = SCOPE_PAUSED, limit: int = SCOPE_LABEL_LIMIT):
        self.gauge = gauge
        self.limit = limit
        self._labelled: set[str] = set()
        self._overflow_paused: set[str] = set()
        self._lock = threading.Lock()

    def observe(self, scope: str, paused: bool) -> None:
        """Record the verified state of ``scope`` (called for every state a view applies)."""
        with self._lock:
            if scope not in self._labelled:
                if scope != "global" and len(self._labelled - {"global"}) >= self.limit:
                    if paused:
                        self._overflow_paused.add(scope)
                    else:
                        self._overflow_paused.discard(scope)
                    self.gauge.labels(OVERFLOW_SCOPE).set(1 if self._overflow_paused else 0)
                    return
                if not paused:
                    return  # never seen paused: no series
                self._labelled.add(scope)
            self.gauge.labels(scope).set(1 if paused else 0)


SCOPES = ScopePausedTracker()
"""The tracker of this process (every `ControlView` reports to it unless given another)."""


class ThrottledWarnings:
    """Counts rejected control records in ``crisiswatch_control_messages_rejected`` and logs them without
    flooding: the first of each (component, reason) at once, then at most one line per ``interval``
    seconds saying how many more there were. A stream of forgeries costs a line a minute, not a line each.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def rejected(self, component: str, reason: str, message: str) -> bool:
        """Count one rejected record; returns whether a line was logged."""
        MESSAGES_REJECTED.labels(component, reason).inc()
        key = (component, reason)
        now = self.clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._last[key] = now
            more = self._suppressed.pop(key, 0)
        suffix = f" (and {more} more {reason} record(s) in the last {self.interval:.0f} s)" if more else ""
        self.logger.warning("%s: rejected a control record: %s%s", component, message, suffix)
        return True


REJECTIONS = ThrottledWarnings(logging.getLogger("crisiswatch.control"))
"""The process's rate-limited log of rejected control records."""

"""Prometheus metrics of the control plane (default registry; every label set is small and fixed).

``component`` is one of ``gate``, ``plane``, ``relay``, ``scheduler``, ``status``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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
BACKLOG_POSTS = Counter("crisiswatch_backlog_posts", "Posts deferred by a pause and what became of them.", ["outcome"])
RELAY_DELIVERIES = Counter("crisiswatch_relay_deliveries", "Webhook delivery attempts of control changes.", ["outcome"])
SCHEDULE_TRANSITIONS = Counter("crisiswatch_schedule_transitions", "Pauses and resumes fired by schedules.", ["action"])

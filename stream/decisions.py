"""The decision path from a closed window to an alert and a pause, with no Kafka in it.

The worker's risk stage and `crisiswatch backtest` both call this module, so a backtest runs exactly
the decisions the worker makes:

* `mention_facts` turns an enriched mention into what a window counts (the window closes into a
  `detectors.closed.ClosedWindow`, which is the ``signals`` record itself: no conversion on either side);
* `RiskBook` holds every brand's `detectors.risk.BrandRiskMonitor` under the brand's own policy (the
  brands file's per-brand policy over the global one), refuses a window it has already assessed (a
  replay after a restart), and turns a decision into an `Alert` and the control scope to pause; a
  window covered by a silence is alerted, marked silenced, and never pauses.

The risk stage adds the I/O around it (publish the alert, ask the control plane to pause, changelog
the state); the backtest adds a report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from crisiswatch.contracts.records import Alert, Signal, WindowedMention
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.detectors.evidence import SilenceMark
from crisiswatch.detectors.neardup import story_key
from crisiswatch.detectors.risk import BrandPolicy, BrandRiskMonitor, RiskDecision, RiskPolicy
from crisiswatch.detectors.window import MentionFacts


def mention_facts(mention: WindowedMention) -> MentionFacts:
    """What a window counts of one enriched mention."""
    return MentionFacts(
        id=mention.id,
        text=mention.text,
        source=mention.source,
        reach=mention.reach_estimate,
        lang=mention.lang,
        sentiment=mention.sentiment,
        story=mention.story if mention.story is not None else story_key(mention.text),
        crisis_terms=mention.crisis_terms,
        url=mention.url,
        p_negative=mention.p_negative,
        shared=len(mention.brands) > 1,
        author=(mention.author.id or mention.author.handle) if mention.author else None,
    )


def alert_of(signal: Signal, decision: RiskDecision, created_at: datetime | None = None) -> Alert:
    """The ``alerts`` record of a decision that opened, escalated or resolved an episode."""
    a = decision.assessment
    return Alert(
        alert_id=decision.episode_id or f"{signal.brand}:{int(signal.window_start.timestamp())}",
        brand=signal.brand,
        status="resolved" if decision.alert_kind == "resolved" else "firing",
        severity=a.severity,
        risk=round(float(a.risk), 2),
        event_time=signal.window_end,
        window_start=signal.window_start,
        summary=a.summary,
        explanation=list(a.explanation),
        evidence=a.evidence.model_copy(),
        pause=decision.pause,
        created_at=created_at or utcnow(),
    )


class SilenceLike(Protocol):
    """What the book reads of a silence (`crisiswatch.control.silences.Silence`)."""

    id: str
    reason: str
    created_by: str
    end: datetime

    def mark(self) -> dict[str, Any]: ...


SilenceLookup = Callable[[str, datetime, datetime], SilenceLike | None]
"""``(brand, window_start, window_end)`` -> the silence covering that window, if any."""


def mark_silenced(alert: Alert, silence: SilenceLike) -> None:
    """Mark an alert of a silenced window: ``evidence.silence`` and one line of explanation."""
    alert.evidence.silence = SilenceMark.model_validate(silence.mark())
    until = silence.end.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    alert.explanation.append(
        f"Silenced: {silence.reason} (planned by {silence.created_by}, until {until}): "
        "alerts go out marked silenced and never pause publishing"
    )


@dataclass(frozen=True)
class Decided:
    """What one signal led to."""

    decision: RiskDecision
    alert: Alert | None
    """The alert record to publish, when the episode changed."""
    pause_scope: str | None
    """The control scope to pause (``global`` or ``brand:<id>``), when the policy asks to pause."""
    silence: SilenceLike | None = None
    """The silence that covered this window (its alert is marked and it never pauses)."""


class RiskBook:
    """Every brand's risk monitor, the policy each brand runs under, and the last window each has assessed.

    A brand's policy is the global one with the brand's `detectors.risk.BrandPolicy` (from the brands file)
    on top; `set_policies` swaps them at run time (the brands file changed) without losing any state.
    ``silences`` (when set) tells which windows fall in a planned event's silence.
    """

    def __init__(self, policy: RiskPolicy, brand_policies: Mapping[str, BrandPolicy] | None = None):
        self.policy = policy
        self.brand_policies: dict[str, BrandPolicy] = dict(brand_policies or {})
        self._policies: dict[str, RiskPolicy] = {}
        self.monitors: dict[str, BrandRiskMonitor] = {}
        self.last_window: dict[str, float] = {}
        self.silences: SilenceLookup | None = None

    def policy_for(self, brand: str) -> RiskPolicy:
        """The policy ``brand`` runs under (the global one when the brands file sets none for it)."""
        found = self._policies.get(brand)
        if found is None:
            own = self.brand_policies.get(brand)
            found = self._policies[brand] = own.apply(self.policy) if own is not None else self.policy
        return found

    def set_policies(self, policy: RiskPolicy, brand_policies: Mapping[str, BrandPolicy]) -> list[str]:
        """Use new policies from the next window on; returns one line per brand whose policy changed."""
        before = {b: (self.brand_policies.get(b), self.policy_for(b)) for b in {*self.monitors, *self.brand_policies}}
        before.update({b: (p, self.policy_for(b)) for b, p in self.brand_policies.items()})
        self.policy, self.brand_policies, self._policies = policy, dict(brand_policies), {}
        changes = []
        for brand in sorted({*before, *self.brand_policies}):
            old_entry, old_policy = before.get(brand, (None, None))
            new_entry, new_policy = self.brand_policies.get(brand), self.policy_for(brand)
            if brand in self.monitors and old_policy != new_policy:
                self.monitors[brand].set_policy(new_policy)
            if old_entry != new_entry:
                was = old_entry.to_dict() if old_entry else "global policy"
                now = new_entry.to_dict() if new_entry else "global policy"
                changes.append(f"{brand}: {was} -> {now}")
        return changes

    def monitor(self, brand: str) -> BrandRiskMonitor:
        """The brand's monitor (a new one for a brand not seen before)."""
        found = self.monitors.get(brand)
        if found is None:
            found = self.monitors[brand] = BrandRiskMonitor(brand, self.policy_for(brand))
        return found

    def decide(self, signal: Signal, created_at: datetime | None = None) -> Decided | None:
        """Assess one closed window; ``None`` when this brand already assessed it (a replay)."""
        start = signal.window_start.timestamp()
        if start <= self.last_window.get(signal.brand, float("-inf")):
            return None
        silence = self.silences(signal.brand, signal.window_start, signal.window_end) if self.silences else None
        monitor = self.monitor(signal.brand)
        decision = monitor.observe(signal, silenced=silence is not None)
        self.last_window[signal.brand] = start
        alert = alert_of(signal, decision, created_at) if decision.alert_kind else None
        if alert is not None and silence is not None:
            mark_silenced(alert, silence)
        scope = monitor.policy.scope_for(signal.brand) if decision.pause else None
        return Decided(decision, alert, scope, silence)

    def brand_state(self, brand: str) -> dict[str, Any]:
        """The JSON-friendly state of one brand (what the risk stage changelogs)."""
        return {"monitor": self.monitors[brand].to_state(), "last_window": self.last_window[brand]}

    def restore(self, brand: str, state: dict[str, Any]) -> None:
        """Take one brand's changelogged state back (the configured policy wins over the stored one)."""
        self.monitors[brand] = BrandRiskMonitor.from_state(state["monitor"], self.policy_for(brand))
        self.last_window[brand] = state["last_window"]

    def clear(self) -> None:
        self.monitors.clear()
        self.last_window.clear()

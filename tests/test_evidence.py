"""Typed alert evidence: alerts written before it (on the topic, in reports) still parse and render the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crisiswatch.alerting.plain import plain_headline
from crisiswatch.alerting.render import explain
from crisiswatch.contracts.records import Alert
from crisiswatch.detectors.evidence import Evidence

OLD_ALERTS = Path(__file__).parent / "fixtures" / "alerts-old-shape.jsonl"
"""Alerts as the risk stage wrote them when ``evidence`` was a plain dict: a critical one (from a backtest of
the scenario corpus), a silenced one, and an early shape (fewer keys, crisis terms as a list)."""


def old_alerts() -> list[tuple[dict[str, Any], bytes]]:
    lines = OLD_ALERTS.read_bytes().splitlines()
    return [(json.loads(line), line) for line in lines if line.strip()]


def same(old: Any, new: Any) -> bool:
    """JSON values equal as a reader sees them (``12`` and ``12.0`` are the same number)."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(same(v, new.get(k)) for k, v in old.items())
    if isinstance(old, list):
        return isinstance(new, list) and len(old) == len(new) and all(map(same, old, new))
    return bool(old == new)


@pytest.mark.parametrize("index", range(3))
def test_an_old_alert_parses_and_keeps_every_evidence_value(index: int) -> None:
    data, raw = old_alerts()[index]
    alert = Alert.model_validate_json(raw)
    assert isinstance(alert.evidence, Evidence)
    dumped = json.loads(alert.model_dump_json())
    evidence = dict(data["evidence"])
    if isinstance(evidence.get("crisis_terms"), list):  # the early shape: each term counted once
        assert dumped["evidence"]["crisis_terms"] == dict.fromkeys(evidence.pop("crisis_terms"), 1)
    assert same(evidence, dumped["evidence"]), index
    assert same({k: v for k, v in data.items() if k != "evidence"}, dumped)


def test_old_alerts_render_every_fact() -> None:
    (critical, raw), (_, silenced_raw), (_, early_raw) = old_alerts()
    alert = Alert.model_validate_json(raw)
    facts = dict(explain(alert).facts)
    assert {"Volume", "Negative share", "Reach", "Languages", "Sources", "Crisis terms", "Risk"} <= set(facts)
    assert len(explain(alert).top_mentions) == len(critical["evidence"]["top_mentions"])
    assert plain_headline(alert.brand, alert.evidence).startswith("Mentions of ")
    marked = Alert.model_validate_json(silenced_raw)
    assert marked.evidence.silence is not None and marked.evidence.silence.reason == "product launch"
    assert alert.evidence.silence is None
    early = Alert.model_validate_json(early_raw)
    assert early.evidence.crisis is None and early.evidence.components is None
    assert "Crisis terms" in dict(explain(early).facts)


def test_an_alert_without_evidence_renders_what_it_has() -> None:
    alert = Alert.model_validate(
        {
            "alert_id": "acme:1",
            "brand": "acme",
            "severity": "warning",
            "risk": 55,
            "event_time": "2026-03-02T11:00:00Z",
            "window_start": "2026-03-02T10:59:00Z",
            "summary": "acme: 30 mentions",
            "created_at": "2026-03-02T11:00:01Z",
        }
    )
    assert alert.evidence == Evidence()
    assert dict(explain(alert).facts) == {"Risk": "55/100"}
    assert plain_headline("acme", alert.evidence) == "Mentions of Acme"

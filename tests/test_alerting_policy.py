"""The delivery policy (de-duplication, escalation, resolution, cool-down) and the rendered text. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from crisiswatch.alerting import render
from crisiswatch.alerting.channels import slack_payload, webhook_payload
from crisiswatch.alerting.policy import DeliveryPolicy, Notification
from crisiswatch.contracts.records import Alert, AlertAck
from crisiswatch.detectors.evidence import Evidence

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def evidence() -> dict[str, Any]:
    """Evidence shaped like a dumped `crisiswatch.contracts.records.Signal`."""
    return {
        "mentions": 1240,
        "negative": 893,
        "reach": 2_300_000,
        "languages": {"en": 744, "de": 372, "fr": 124},
        "sources": {"twitter": 1100, "rss": 140},
        "crisis_terms": {"recall": 45, "lawsuit": 12},
        "volume": {"observed": 1240, "expected": 85.0, "score": 40.0, "p_value": 1e-40, "spike": True},
        "negativity": {"observed": 0.72, "expected": 0.18, "score": 12.0, "p_value": 1e-12, "spike": True},
        "expected_negative_share": 0.18,
        "top_mentions": [
            {
                "id": "t:2",
                "text": "Second, smaller",
                "source": "twitter",
                "reach": 1200,
                "lang": "en",
                "sentiment": "negative",
                "url": None,
            },
            {
                "id": "t:1",
                "text": "Acme  airbags\nexplode, RECALL now",
                "source": "twitter",
                "reach": 1_200_000,
                "lang": "en",
                "sentiment": "negative",
                "url": "https://x.example/1",
            },
        ],
    }


def alert(
    severity: str = "warning",
    status: str = "firing",
    *,
    alert_id: str = "acme:1",
    brand: str = "acme",
    at: datetime = T0,
) -> Alert:
    return Alert(
        alert_id=alert_id,
        brand=brand,
        status=status,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        risk=80 if severity == "critical" else 55,
        event_time=at,
        window_start=at - timedelta(minutes=1),
        summary=f"{brand}: mentions 14.6x the usual volume, 72% negative",
        explanation=["volume 1240 vs 85 expected (p=1e-40)", "negative share 72% vs 18% usual"],
        evidence=evidence(),
        pause=severity == "critical",
        created_at=at,
    )


def policy(**kw: Any) -> DeliveryPolicy:
    return DeliveryPolicy(max_age_seconds=kw.pop("max_age_seconds", 1e9), **kw)


def events(p: DeliveryPolicy, records: list[Alert]) -> list[str | None]:
    out = []
    for record in records:
        n = p.on_alert(record, now=record.created_at)
        out.append(n.event if n else None)
    return out


def test_one_episode_escalates_once_and_resolves_once() -> None:
    p = policy()
    got = events(
        p,
        [
            alert("info"),
            alert("warning"),
            alert("warning"),
            alert("critical"),
            alert("warning"),  # de-escalation: not news
            alert("critical"),
            alert("critical", "resolved"),
            alert("critical", "resolved"),
            alert("critical"),  # a late record of a finished episode
        ],
    )
    assert got == [None, "opened", None, "escalated", None, None, "resolved", None, None]


def test_escalation_carries_previous_severity_and_start() -> None:
    p = policy()
    p.on_alert(alert("warning"), now=T0)
    n = p.on_alert(alert("critical", at=T0 + timedelta(minutes=3)), now=T0)
    assert n is not None and n.previous_severity == "warning" and n.peak_severity == "critical"
    assert n.started_at == T0 - timedelta(minutes=1)
    assert "(was warning)" in render.headline(n)


def test_min_severity_and_unannounced_resolution() -> None:
    p = policy(min_severity="critical")
    assert events(p, [alert("warning"), alert("warning", "resolved")]) == [None, None]
    assert events(p, [alert("warning", alert_id="b"), alert("critical", alert_id="b")]) == [None, "opened"]


def test_cooldown_suppresses_a_flapping_brand_but_not_a_worse_one() -> None:
    p = policy(cooldown_seconds=600)
    minute = timedelta(minutes=1)
    first = [alert("warning", alert_id="e1"), alert("warning", "resolved", alert_id="e1", at=T0 + minute)]
    assert events(p, first) == ["opened", "resolved"]
    # Five minutes later the same brand flaps again at the same severity: suppressed, also its end.
    again = [
        alert("warning", alert_id="e2", at=T0 + 5 * minute),
        alert("warning", "resolved", alert_id="e2", at=T0 + 6 * minute),
    ]
    assert events(p, again) == [None, None]
    # ...but an episode that gets worse than the last peak is announced at once.
    worse = [alert("warning", alert_id="e3", at=T0 + 8 * minute), alert("critical", alert_id="e3", at=T0 + 9 * minute)]
    assert events(p, worse) == [None, "opened"]
    # Another brand is not affected by acme's cool-down.
    assert events(p, [alert("warning", alert_id="o1", brand="other", at=T0 + 2 * minute)]) == ["opened"]
    # After the cool-down, the same severity is news again.
    p2 = policy(cooldown_seconds=600)
    events(p2, first)
    assert events(p2, [alert("warning", alert_id="e4", at=T0 + 20 * minute)]) == ["opened"]


def test_old_records_rebuild_state_but_send_nothing() -> None:
    p = DeliveryPolicy(max_age_seconds=3600)
    later = T0 + timedelta(hours=5)
    assert p.on_alert(alert("warning"), now=later) is None
    assert p.episodes["acme:1"].announced  # remembered as announced, so...
    assert p.on_alert(alert("warning"), now=later) is None  # ...a fresh duplicate stays silent
    fresh = alert("critical", at=later)
    n = p.on_alert(fresh, now=later)
    assert n is not None and n.event == "escalated"
    assert [a.alert_id for a in (x.alert for x in p.active())] == ["acme:1"]


def test_acknowledgements() -> None:
    p = policy()
    ack = AlertAck(alert_id="acme:1", actor="maria", note="talking to legal", at=T0 + timedelta(minutes=2))
    assert p.on_ack(ack, now=T0) is None  # unknown episode
    p.on_alert(alert("warning"), now=T0)
    n = p.on_ack(ack, now=T0)
    assert n is not None and n.event == "acknowledged" and n.acks == (ack,)
    assert p.on_ack(ack, now=T0) is None  # the same ack read twice
    assert render.headline(n) == "ACKNOWLEDGED by maria: acme (warning)"
    resolved = p.on_alert(alert("warning", "resolved"), now=T0)
    assert resolved is not None and resolved.acks == (ack,)
    assert n.idempotency_key != resolved.idempotency_key


def test_text_says_why() -> None:
    n = Notification("opened", alert("critical"), T0, "critical")
    text = render.plain_text(n, "http://page/#alert=acme%3A1")
    assert text.startswith("CRITICAL: acme brand crisis\n")
    for expected in (
        "volume 1240 vs 85 expected",  # the detector's explanation
        "Volume: 1,240 mentions vs 85 expected (14.6×)",
        "Negative share: 72% negative (usually 18%)",
        "Languages: en 60%, de 30%, fr 10%",
        "Crisis terms: recall (45), lawsuit (12)",
        "Reach: 2.3M",
        "[twitter, 1.2M reach, en, negative] Acme airbags explode, RECALL now",
        "https://x.example/1",
        "Publishing: pause requested",
        "Open: http://page/#alert=acme%3A1",
    ):
        assert expected in text, expected
    # biggest mention first
    assert text.index("1.2M reach") < text.index("1,200 reach")


def test_text_with_sparse_evidence() -> None:
    bare = alert("warning").model_copy(update={"evidence": Evidence(mentions=30), "explanation": []})
    exp = render.explain(bare)
    assert exp.reasons == [bare.summary]
    assert ("Volume", "30 mentions") in exp.facts
    assert exp.top_mentions == []


def test_slack_and_webhook_payload_shapes() -> None:
    n = Notification("escalated", alert("critical"), T0, "critical", "warning")
    slack = slack_payload(n, "http://page/")
    assert slack["text"] == "CRITICAL: acme brand crisis escalated (was warning)"
    kinds = [b["type"] for b in slack["blocks"]]
    assert kinds[0] == "header" and kinds[-1] == "context" and "section" in kinds
    assert all(len(b["text"]["text"]) <= 150 for b in slack["blocks"] if b["type"] == "header")
    fields = next(b["fields"] for b in slack["blocks"] if "fields" in b)
    assert len(fields) <= 10 and any("Negative share" in f["text"] for f in fields)
    assert "<https://x.example/1|" in str(slack["blocks"])
    hook = webhook_payload(n, "http://page/")
    assert hook["event"] == "escalated" and hook["previous_severity"] == "warning"
    assert hook["alert"]["alert_id"] == "acme:1" and hook["facts"]["Risk"] == "80/100"
    assert hook["idempotency_key"] == "acme:1:escalated:critical"

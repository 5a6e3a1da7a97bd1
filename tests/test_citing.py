"""What an alert cites as "what people are saying": a negativity alert cites negative and crisis-term
mentions first (a happy review with a big audience is no evidence of a breach), any other alert by reach."""

from __future__ import annotations

from pathlib import Path

from page_data import demo_records

from crisiswatch.alerting.render import explain
from crisiswatch.detectors.citing import TOP_CITED, citation_order, cited, concerning, keep_cited, mention_concerning
from crisiswatch.detectors.closed import ClosedWindow, TopMention
from crisiswatch.detectors.evidence import Evidence
from crisiswatch.detectors.risk import RiskAssessor
from crisiswatch.detectors.volume import SpikeResult
from crisiswatch.detectors.window import MentionFacts, WindowAggregate

QUIET = SpikeResult(observed=1.0, expected=1.0, score=0.0, p_value=1.0, spike=False)


def _facts(i: int, sentiment: str, reach: int, text: str, terms: list[str] | None = None) -> MentionFacts:
    return MentionFacts(
        id=f"m{i}", text=text, source="x", reach=reach, lang="en", sentiment=sentiment, story=i,
        crisis_terms=terms or [],
    )  # fmt: skip


def _window() -> WindowAggregate:
    """Six loud happy reviews, then two quieter complaints and one neutral post naming a data leak."""
    window = WindowAggregate("globex", 0.0, 60.0)
    for i in range(6):
        window.add(_facts(i, "positive", 100_000 - i, f"love my new globex phone {i}"))
    window.add(_facts(10, "negative", 900, "globex lost my order again"))
    window.add(_facts(11, "negative", 500, "globex support never answers"))
    window.add(_facts(12, "neutral", 700, "reports of a globex data leak", ["data_leak"]))
    window.add(_facts(13, "positive", 10, "globex is fine"))  # neither loud nor worrying: not kept
    return window


def test_a_window_keeps_the_worrying_mentions_beside_the_loudest() -> None:
    window = _window()
    kept = [m["id"] for m in window.top]
    assert kept[:TOP_CITED] == ["m0", "m1", "m2", "m3", "m4"]  # the loudest, by reach
    assert set(kept[TOP_CITED:]) == {"m10", "m11", "m12"} and "m13" not in kept
    restored = WindowAggregate.from_state(window.to_state())  # what the window stage changelogs
    closed = ClosedWindow.of(restored, QUIET, QUIET)
    assert [m.id for m in closed.top_mentions] == kept


def test_a_negativity_alert_cites_the_worrying_first_any_other_by_reach() -> None:
    mentions = ClosedWindow.of(_window(), QUIET, QUIET).top_mentions
    worrying = cited(mentions, citation_order, mention_concerning, negativity=True)
    assert [m.id for m in worrying[:3]] == ["m10", "m12", "m11"]  # negative or crisis-term, by reach
    assert [m.id for m in worrying[3:5]] == ["m0", "m1"]  # then the loudest
    assert [m.id for m in cited(mentions, citation_order, mention_concerning, negativity=False)][:2] == ["m0", "m1"]
    only_happy = [m for m in mentions if m.sentiment == "positive"]
    assert cited(only_happy, citation_order, mention_concerning, negativity=True) == sorted(
        only_happy, key=lambda m: -m.reach
    )  # nothing worrying: by reach


def _cited_ids(evidence: Evidence) -> list[str]:
    return [m.id for m in evidence.top_mentions]


def test_the_risk_evidence_cites_by_the_kind_of_alert() -> None:
    """The assessor's evidence (what the card, e-mail and Slack show): complaints first when negativity
    spiked, the loudest first when only the volume did."""
    negative_spike = SpikeResult(observed=9.0, expected=1.0, score=8.0, p_value=1e-8, spike=True)
    bad = RiskAssessor().assess(ClosedWindow.of(_window(), QUIET, negative_spike))
    assert _cited_ids(bad.evidence)[:3] == ["m10", "m12", "m11"]
    loud = RiskAssessor().assess(ClosedWindow.of(_window(), negative_spike, QUIET))
    assert _cited_ids(loud.evidence)[:2] == ["m0", "m1"]
    assert len(_cited_ids(bad.evidence)) == TOP_CITED


def test_concerning_and_keep_cited() -> None:
    assert concerning("negative") and not concerning("positive", "great phone")
    assert concerning("neutral", "they were hacked, passwords leaked")  # crisis terms found in the text
    assert concerning("neutral", terms=["recall"]) and not concerning("neutral", "a data leak", terms=[])
    items = [(f"p{i}", 100 - i, False) for i in range(8)] + [("n", 1, True)]
    kept = keep_cited(items, lambda t: (-t[1], t[0]), lambda t: t[2])
    assert [i for i, _, _ in kept] == ["p0", "p1", "p2", "p3", "p4", "n"]


def test_a_correction_keeps_the_worrying_mentions() -> None:
    window = ClosedWindow.of(_window(), QUIET, QUIET)
    late = window.model_copy(update={"top_mentions": [
        TopMention(id="late", text="globex recall announced", source="x", reach=50, lang="en", sentiment="neutral")
    ]})  # fmt: skip
    merged = window.with_late(late)
    assert {"m10", "m11", "m12", "late"} <= {m.id for m in merged.top_mentions}


def test_the_demo_crisis_alert_cites_complaints_first(tmp_path: Path) -> None:
    """The demo's critical alert, as the worker decides it: the card's and the e-mail's first mentions
    are negative or name a crisis term (a guard on the whole path; the demo's loudest posts are complaints)."""
    _, alerts = demo_records(str(tmp_path / "demo"))
    critical = next(a for a in alerts if a.severity == "critical")
    top = explain(critical).top_mentions
    assert top, "the critical alert cites no mentions"
    assert all(concerning(m.sentiment, m.text) for m in top[:3]), [(m.sentiment, m.text) for m in top]


def test_ties_in_reach_are_cut_the_same_way_whatever_the_arrival_order() -> None:
    """The worker reads partitions interleaved, the backtest in file order: the cited mentions must not
    depend on it (a tie in reach goes to the smaller id)."""
    import random

    facts = [_facts(i, "negative" if i % 2 else "neutral", 1, f"globex post {i}") for i in range(20)]
    kept = []
    for seed in range(5):
        shuffled = facts[:]
        random.Random(seed).shuffle(shuffled)
        window = WindowAggregate("globex", 0.0, 60.0)
        for m in shuffled:
            window.add(m)
        kept.append([m["id"] for m in window.top])
    assert all(k == kept[0] for k in kept), kept
    assert kept[0][:TOP_CITED] == sorted((f"m{i}" for i in range(20)), key=str)[:TOP_CITED]

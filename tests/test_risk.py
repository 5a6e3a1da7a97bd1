"""Risk scoring and alert episodes: multilingual crises are critical, loud good news never is."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from crisiswatch.detectors.closed import ClosedWindow, TopMention
from crisiswatch.detectors.lexicon import find_crisis_terms_batch
from crisiswatch.detectors.neardup import story_key
from crisiswatch.detectors.risk import BrandRiskMonitor, RiskAssessor, RiskPolicy, RiskWeights
from crisiswatch.detectors.spikes import NegativeSpikeDetector, SpikeResult, VolumeSpikeDetector
from crisiswatch.detectors.window import MentionFacts, WindowAggregate

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
SIZE = 60.0

CRISIS_TEXTS = {
    "english": "Acme leaked our data and hid the breach for weeks, boycott them now",
    "spanish": "Acme filtró nuestros datos, es un fraude y una estafa, boicot ya",
    "french": "Fuite de données chez Acme, un scandale, on porte plainte",
    "german": "Datenleck bei Acme, Betrug an den Kunden, Boykott jetzt",
    "italian": "Truffa di Acme, furto di dati dei clienti, boicottiamo tutti",
    "portuguese": "Vazamento de dados da Acme, é golpe, boicote já",
    "arabic": "تسريب البيانات من شركة أكمي فضيحة واحتيال، قاطعوا منتجاتها",
    "hindi": "एक्मे में डेटा लीक और धोखाधड़ी, बहिष्कार करो",
}


def spike(observed: float, expected: float, score: float, threshold: float = 8.0) -> SpikeResult:
    return SpikeResult(float(observed), float(expected), float(score), 10.0**-score, score >= threshold)


def closed(window: ClosedWindow | WindowAggregate, volume: SpikeResult, negativity: SpikeResult) -> ClosedWindow:
    """A closed window (or an aggregate, closed) with these verdicts."""
    if isinstance(window, WindowAggregate):
        return ClosedWindow.of(window, volume, negativity)
    return window.model_copy(update={"volume": volume, "negativity": negativity})


def summary(
    mentions: int,
    negative: int,
    *,
    start: float = T0,
    stories: int | None = None,
    positive: int = 0,
    reach: int | None = None,
    languages: dict[str, int] | None = None,
    sources: dict[str, int] | None = None,
    terms: dict[str, int] | None = None,
    brand: str = "acme",
) -> ClosedWindow:
    neutral = mentions - negative - positive
    assert neutral >= 0
    return ClosedWindow(
        brand=brand, window_start=datetime.fromtimestamp(start, UTC),
        window_end=datetime.fromtimestamp(start + SIZE, UTC),
        mentions=mentions, negative=negative, neutral=neutral,
        positive=positive, reach=reach if reach is not None else mentions * 500,
        stories=stories if stories is not None else mentions, negative_stories=negative,
        languages=languages or {"en": mentions}, sources=sources or {"twitter": mentions},
        crisis_terms=terms or {},
        top_mentions=[TopMention(id="m1", text="top mention", source="twitter", reach=1_000_000, lang="en",
                                 sentiment="negative", url=None)] if mentions else [],
        volume=spike(0, 0, 0), negativity=spike(0, 0, 0),
    )


def calm(start: float, mentions: int = 30, expected: float = 30.0) -> ClosedWindow:
    negative = round(mentions * 0.12)
    window = summary(mentions, negative, start=start)
    return closed(window, spike(mentions, expected, 0.3), spike(negative, mentions * 0.12, 0.2))


def crisis(
    start: float, mentions: int = 400, negative_share: float = 0.8, expected: float = 30.0, score: float = 40.0
) -> ClosedWindow:
    negative = round(mentions * negative_share)
    window = summary(
        mentions, negative, start=start, stories=int(mentions * 0.9), reach=mentions * 8000,
        languages={"en": mentions // 2, "es": mentions // 4, "fr": mentions - mentions // 2 - mentions // 4},
        sources={"twitter": mentions - 40, "news": 30, "reddit": 10}, terms={"data_leak": mentions // 3},
    )
    return closed(window, spike(mentions * 0.9, expected, score), spike(negative, mentions * 0.12, score))


MATURE = RiskPolicy(maturity_seconds=0)
"""Most tests start right after a short warm-up: their brands count as mature (the maturity rule has its own test)."""


def crisis_run(target: RiskAssessor | BrandRiskMonitor, start: float = T0, **kwargs: Any) -> list[Any]:
    """Crisis windows one after another until one is critical (at most ``persist_of``): the assessments or decisions."""
    out = []
    for i in range(target.policy.crisis.persist_of):
        step = crisis(start + i * SIZE, **kwargs)
        out.append(target.assess(step) if isinstance(target, RiskAssessor) else target.observe(step))
        severity = out[-1].severity if isinstance(target, RiskAssessor) else out[-1].assessment.severity
        if severity == "critical":
            break
    return out


def warm_assessor(policy: RiskPolicy | None = None, brand: str = "acme") -> RiskAssessor:
    """An assessor that has seen the brand's warm-up windows (calm, just before ``T0``)."""
    assessor = RiskAssessor(policy or MATURE)
    for i in range(assessor.policy.warmup_windows, 0, -1):
        assessor.assess(calm(T0 - i * SIZE))
    return assessor


def warm_monitor(policy: RiskPolicy | None = None) -> BrandRiskMonitor:
    """A monitor that has seen the brand's warm-up windows (calm, just before ``T0``)."""
    monitor = BrandRiskMonitor("acme", policy or MATURE)
    for i in range(monitor.policy.warmup_windows, 0, -1):
        assert monitor.observe(calm(T0 - i * SIZE)).alert_kind is None
    return monitor


def warning_window(start: float) -> ClosedWindow:
    window = summary(
        90, 33, start=start, stories=85, reach=90 * 2000, languages={"en": 80, "de": 10},
        sources={"twitter": 80, "news": 10}, terms={"outage": 20},
    )
    return closed(window, spike(85, 30, 5.5), spike(33, 90 * 0.12, 3.5))


@pytest.mark.parametrize("language", sorted(CRISIS_TEXTS))
def test_negative_crisis_in_each_language_is_critical(language: str) -> None:
    """Real texts through the lexicon and near-duplicate folding into a window, then into risk."""
    rng = random.Random(language)
    base = CRISIS_TEXTS[language]
    filler = [w.strip(",") for text in CRISIS_TEXTS.values() for w in text.split()]
    assessor = warm_assessor()
    for minute in range(assessor.policy.crisis.persist):  # the crisis goes on: one window is not enough
        window = WindowAggregate(brand="acme", start=T0 + minute * SIZE, end=T0 + (minute + 1) * SIZE)
        texts = [f"{' '.join(rng.choices(filler, k=12))} {base}" for _ in range(300)]  # distinct voices, one topic
        for i, (text, terms) in enumerate(zip(texts, find_crisis_terms_batch(texts), strict=True)):
            window.add(MentionFacts(
                id=f"m{i}", text=text, source=["twitter", "news", "forum"][i % 3], reach=200 + 37 * i,
                lang=language[:2], sentiment="negative" if i % 5 else "neutral", story=story_key(text),
                crisis_terms=terms,
            ))
        assert window.crisis_terms, "the lexicon must find the crisis in this language"
        assert window.story_count > 150
        volume = spike(window.story_count, 25, 30)
        negativity = spike(window.negative, window.mentions * 0.12, 40)
        assessment = assessor.assess(closed(window, volume, negativity))
    assert assessment.severity == "critical", assessment.explanation
    assert assessment.pause
    assert assessment.risk >= 70


def test_critical_needs_no_lexicon_hit_when_negativity_is_strong() -> None:
    assessor = warm_assessor()
    for i in range(assessor.policy.crisis.persist):
        window = crisis(T0 + i * SIZE)
        window.crisis_terms = {}
        window.languages = {"sw": window.mentions}  # a language the lexicon does not know
        assessment = assessor.assess(window)
    assert assessment.severity == "critical", assessment.explanation


def test_positive_viral_moment_is_never_critical() -> None:
    for terms in ({}, {"explosion": 900, "fire": 900, "death": 900}):  # "explosion of joy", slang…
        window = summary(
            2000, 60, positive=1800, stories=1900, reach=60_000_000, terms=terms,
            languages={"en": 800, "es": 600, "pt": 400, "fr": 200}, sources={"twitter": 1500, "tiktok": 500},
        )
        assessment = warm_assessor().assess(closed(window, spike(1900, 40, 200), spike(60, 300, 0.0)))
        assert assessment.severity != "critical", assessment.explanation
        assert not assessment.pause
    assert warm_assessor().assess(closed(window, spike(1900, 40, 200), spike(60, 300, 0.0))).risk < 70


def test_neutral_news_spike_is_not_critical() -> None:
    window = summary(
        400, 40, positive=20, stories=30, reach=25_000_000, terms={"layoffs": 350, "investigation": 100},
        languages={"en": 300, "de": 100}, sources={"news": 380, "twitter": 20},
    )
    assessment = warm_assessor().assess(closed(window, spike(30, 3, 15), spike(40, 48, 0.0)))
    assert assessment.severity in ("info", "warning")
    assert not assessment.pause


def test_minimum_evidence_blocks_the_pause() -> None:
    assessor = warm_assessor()
    for i in range(assessor.policy.crisis.persist):
        window = summary(15, 14, start=T0 + i * SIZE, stories=15, reach=3_000_000, sources={"twitter": 15},
                         terms={"fraud": 12})
        assessment = assessor.assess(closed(window, spike(15, 0.5, 14), spike(14, 1.8, 12)))
    assert assessment.severity == "critical", assessment.explanation
    assert not assessment.pause
    assert any("not enough evidence" in line for line in assessment.explanation)
    # and with enough mentions but a single source when two are required
    strict = warm_assessor(RiskPolicy(min_sources_to_pause=2, maturity_seconds=0))
    for i in range(strict.policy.crisis.persist):
        window = crisis(T0 + i * SIZE)
        window.sources = {"twitter": window.mentions}
        assessment = strict.assess(window)
    assert assessment.severity == "critical" and not assessment.pause


def test_very_few_mentions_never_alert() -> None:
    window = summary(3, 3, stories=3, reach=5_000_000, sources={"twitter": 2, "news": 1}, terms={"death": 3})
    assessment = warm_assessor().assess(closed(window, spike(3, 0.1, 6), spike(3, 0.3, 4)))
    assert assessment.severity == "info"


def test_sparse_brand_noise_raises_no_alert_with_the_real_detectors() -> None:
    rng = random.Random(5)
    monitor = BrandRiskMonitor("tiny")
    volume, negativity = VolumeSpikeDetector(SIZE), NegativeSpikeDetector(SIZE)
    kinds = []
    for i in range(600):
        start = T0 + i * SIZE
        mentions = sum(rng.random() < 0.3 for _ in range(3))  # 0–3 mentions a minute
        negative = sum(rng.random() < 0.3 for _ in range(mentions))
        window = summary(mentions, negative, start=start, brand="tiny", reach=mentions * rng.randrange(10, 50_000))
        decision = monitor.observe(
            closed(window, volume.update(start, window.stories), negativity.update(start, mentions, negative))
        )
        kinds.append(decision.alert_kind)
        assert not decision.pause
    assert set(kinds) == {None}


def test_crisis_with_the_real_detectors_after_a_calm_baseline() -> None:
    rng = random.Random(9)
    monitor = BrandRiskMonitor("acme", MATURE)
    volume, negativity = VolumeSpikeDetector(SIZE), NegativeSpikeDetector(SIZE)
    decisions = []
    counts = [rng.randrange(20, 40) for _ in range(240)] + [350, 420, 380] + [rng.randrange(20, 40) for _ in range(8)]
    shares = [0.12] * 240 + [0.8, 0.82, 0.75] + [0.12] * 8
    for i, (mentions, share) in enumerate(zip(counts, shares, strict=True)):
        start = T0 + i * SIZE
        negative = round(mentions * share)
        terms = {"breach": mentions // 3} if share > 0.5 else {}
        window = summary(
            mentions, negative, start=start, stories=mentions, reach=mentions * 3000, terms=terms,
            languages={"en": mentions - mentions // 3, "es": mentions // 3},
            sources={"twitter": mentions - 5, "news": 5},
        )
        decisions.append(monitor.observe(
            closed(window, volume.update(start, window.stories), negativity.update(start, mentions, negative))
        ))
    assert all(d.alert_kind is None for d in decisions[:240])
    assert decisions[240].alert_kind == "opened"  # the first crisis window opens the episode…
    critical = next(d for d in decisions[240:] if d.assessment.severity == "critical")
    assert decisions.index(critical) <= 240 + monitor.policy.crisis.persist_of - 1  # …persistence makes it critical
    assert critical.pause and sum(d.pause for d in decisions) == 1
    kinds = [d.alert_kind for d in decisions if d.alert_kind]
    assert kinds[0] == "opened" and kinds[-1] == "resolved" and set(kinds) <= {"opened", "escalated", "resolved"}
    assert len({d.episode_id for d in decisions if d.episode_id}) == 1


def test_one_episode_escalates_warning_to_critical_with_a_single_pause_and_resolves() -> None:
    monitor = warm_monitor()
    steps = [calm(T0), calm(T0 + 60), warning_window(T0 + 120), crisis(T0 + 180), crisis(T0 + 240, mentions=500)]
    steps += [crisis(T0 + 300), calm(T0 + 360)] + [calm(T0 + 420 + 60 * i) for i in range(3)]
    decisions = [monitor.observe(step) for step in steps]
    kinds = [d.alert_kind for d in decisions]
    severities = [d.assessment.severity for d in decisions]
    # one crisis window alone is not critical yet: it must persist (2 of the last 3 windows)
    assert severities[2:6] == ["warning", "warning", "critical", "critical"]
    assert "not persistent yet" in " ".join(decisions[3].assessment.explanation)
    assert kinds == [None, None, "opened", None, "escalated", None, None, None, "resolved", None]
    assert [d.pause for d in decisions] == [False] * 4 + [True] + [False] * 5
    ids = {d.episode_id for d in decisions[2:9]}
    assert len(ids) == 1 and None not in ids
    assert monitor.episode_id is None


def test_cooldown_keeps_one_crisis_one_episode() -> None:
    policy = RiskPolicy(cooldown_seconds=3600, resolve_after=2, maturity_seconds=0)
    monitor = warm_monitor(policy)
    t = T0
    first = crisis_run(monitor, t)
    assert first[0].alert_kind == "opened" and first[-1].pause
    t += len(first) * SIZE
    monitor.observe(calm(t))
    resolved = monitor.observe(calm(t + 60))
    assert resolved.alert_kind == "resolved"
    again = crisis_run(monitor, t + 600)  # the same crisis flaring up within the cool-down
    assert all(d.alert_kind is None and not d.pause for d in again)
    later = crisis_run(monitor, t + 600 + 3600 + 60)
    assert later[0].alert_kind == "opened" and later[0].episode_id != first[0].episode_id


def test_state_round_trips_through_json_mid_episode() -> None:
    monitor = warm_monitor()
    monitor.observe(calm(T0))
    run = crisis_run(monitor, T0 + 60)
    opened = run[-1]
    assert opened.pause
    t = T0 + 60 + len(run) * SIZE
    state = json.loads(json.dumps(monitor.to_state(), allow_nan=False))
    restored = BrandRiskMonitor.from_state(state)
    again = restored.observe(crisis(t))
    assert again.episode_id == opened.episode_id and not again.pause and again.alert_kind is None
    assert again.assessment.severity == "critical"  # the gate's memory survived the round trip
    kinds = [restored.observe(calm(t + 60 + 60 * i)).alert_kind for i in range(3)]
    assert kinds == [None, None, "resolved"]
    windows = restored.to_state()["assessor"]["history"]["acme"]["windows"]
    assert windows == 5 + 1 + len(run) + 1 + 3  # warm-up + this test's
    # a policy given on restore wins over the stored one
    never = BrandRiskMonitor.from_state(state, policy=RiskPolicy(pause_severity="never"))
    assert never.policy.pause_severity == "never"


def test_pause_severity_knob() -> None:
    never = warm_monitor(RiskPolicy(pause_severity="never", maturity_seconds=0))
    decision = crisis_run(never)[-1]
    assert decision.assessment.severity == "critical" and not decision.pause
    eager = warm_monitor(RiskPolicy(pause_severity="warning", min_mentions_to_pause=50, maturity_seconds=0))
    decision = eager.observe(warning_window(T0))
    assert decision.assessment.severity == "warning" and decision.pause and decision.alert_kind == "opened"
    with pytest.raises(ValueError):
        RiskPolicy(pause_severity="sometimes")
    with pytest.raises(ValueError):
        RiskPolicy(warning_at=80, critical_at=70)
    with pytest.raises(ValueError):
        RiskWeights(reach=-1)
    with pytest.raises(ValueError):
        RiskWeights(support=1.5)


def test_policy_from_fields_and_dict() -> None:
    policy = RiskPolicy.from_fields(
        {"pause_severity": "warning", "min_mentions_to_pause": 7, "min_sources_to_pause": 2, "critical_at": 80}
    )
    assert (policy.pause_severity, policy.min_mentions_to_pause, policy.min_sources_to_pause) == ("warning", 7, 2)
    with pytest.raises(ValueError, match="unknown risk policy field"):
        RiskPolicy.from_fields({"critical": 80})
    assert RiskPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy


def test_syndicated_story_counts_once_toward_volume_but_reach_adds_up() -> None:
    window = WindowAggregate(brand="acme", start=T0, end=T0 + SIZE)
    headline = "Acme recalls two million strollers after reports of broken brakes"
    outlets = ["Reuters", "AP", "BBC News", "CNN", "Bloomberg", "Le Monde", "El País", "Spiegel", "NDTV", "Al Jazeera",
               "Yahoo", "Guardian"]
    for i, outlet in enumerate(outlets):
        text = f"{headline} - {outlet} https://example.com/{i}"
        window.add(MentionFacts(id=f"n{i}", text=text, source="news", reach=1_000_000, lang="en",
                                sentiment="neutral", story=story_key(text), crisis_terms=["recall"]))
    assert (window.mentions, window.story_count, window.reach) == (12, 1, 12_000_000)
    # even when the volume detector was fed the 12 copies, the assessor rechecks on stories
    assessment = warm_assessor().assess(closed(window, spike(12, 2, 6), spike(0, 1.4, 0)))
    assert assessment.evidence.stories == 1 and assessment.evidence.reach == 12_000_000
    assert assessment.evidence.components is not None and assessment.evidence.components.volume < 0.2
    assert assessment.evidence.components.reach > 0.5
    assert assessment.severity != "critical"


def test_explanation_summary_and_evidence() -> None:
    assessment = crisis_run(warm_assessor())[-1]
    assert assessment.summary.startswith("acme: 360 stories (400 mentions) vs 30 expected (11.6x), 80% negative vs 12%")
    assert "3 languages" in assessment.summary and "terms: data_leak" in assessment.summary
    text = "\n".join(assessment.explanation)
    for needle in ("Volume:", "Negativity:", "Languages:", "Reach:", "top mention:", "Crisis terms:", "Sources:",
                   "Acceleration:", "Risk ", "Pause: yes"):
        assert needle in text
    evidence = json.loads(json.dumps(assessment.evidence.model_dump(mode="json"), allow_nan=False))
    for key in ("mentions", "stories", "negative_share", "expected_negative_share", "reach", "volume", "negativity",
                "languages", "sources", "crisis_terms", "top_mentions", "components"):
        assert key in evidence
    assert "story" not in evidence["top_mentions"][0]


def test_empty_window_and_garbage_inputs() -> None:
    assessor = RiskAssessor()
    empty = assessor.assess(closed(summary(0, 0), spike(0, 30, 0), spike(0, 0, 0)))
    assert (empty.risk, empty.severity, empty.pause) == (0.0, "info", False)
    assert empty.summary == "acme: no mentions"
    garbage = ClosedWindow.model_construct(  # unvalidated: what the assessor must survive whatever it is given
        brand="acme", window_start=datetime.fromtimestamp(T0, UTC), window_end=datetime.fromtimestamp(T0 + SIZE, UTC),
        mentions=10, negative=50, neutral=-3, positive=0, reach=-5, stories=99, negative_stories=0,
        languages={"": 4, None: 2}, sources={"x": 0}, crisis_terms={"unknown-term": 3}, top_mentions=[],
        negative_mass=None, negative_mass_sq=None, solo_stories=None,
    )
    nan = SpikeResult(math.nan, math.nan, math.nan, math.nan, False)
    inf = SpikeResult(math.inf, math.inf, math.inf, 0.0, True)
    for volume, negativity in ((nan, nan), (inf, inf), (nan, inf)):
        assessment = assessor.assess(closed(garbage, volume, negativity))
        assert 0.0 <= assessment.risk <= 100.0
        json.dumps(assessment.evidence.model_dump(mode="json"), allow_nan=False)


def test_out_of_order_window_is_scored_but_not_learned() -> None:
    assessor = RiskAssessor()
    assessor.assess(calm(T0 + 600))
    before: dict[str, Any] = json.loads(json.dumps(assessor.to_state()))
    assessor.assess(calm(T0))
    assert assessor.to_state() == before


def test_a_new_brand_has_no_baseline_so_its_first_windows_never_pause() -> None:
    """Without a baseline, volume and acceleration say nothing: a new brand can warn, not pause."""
    fresh = RiskAssessor(MATURE)
    first = fresh.assess(crisis(T0))
    assert first.evidence.components is not None
    assert first.evidence.components.volume == 0.0 and first.evidence.components.acceleration == 0.0
    assert first.severity != "critical" and not first.pause
    assert crisis_run(warm_assessor())[-1].severity == "critical"


def test_a_brand_younger_than_its_baseline_warns_and_would_pause_but_never_pauses() -> None:
    """Maturity: less than ``maturity_seconds`` (24 h by default) of history never pauses automatically."""
    young = BrandRiskMonitor("acme")  # the default policy: 24 h
    for i in range(60):
        young.observe(calm(T0 + i * SIZE))
    decisions = crisis_run(young, T0 + 60 * SIZE)
    last = decisions[-1]
    assert last.assessment.severity == "critical" and not last.pause
    assert last.assessment.evidence.would_pause is True
    assert "would pause, but the brand has only 1.0 h of history" in " ".join(last.assessment.explanation)
    mature = BrandRiskMonitor("acme")
    for i in range(0, 25 * 60, 5):  # a day of history (every fifth window is enough to learn from)
        mature.observe(calm(T0 + i * SIZE))
    assert crisis_run(mature, T0 + 25 * 60 * SIZE)[-1].pause


def test_usual_sources_and_languages_are_not_spread() -> None:
    """A brand always discussed on three sources in three languages gets no spread credit for that."""
    sources, languages = {"twitter": 20, "news": 5, "reddit": 5}, {"en": 10, "es": 10, "fr": 10}
    assessor = RiskAssessor()
    for i in range(10):
        assessor.assess(closed(summary(30, 4, start=T0 + i * SIZE, sources=sources, languages=languages),
                               spike(30, 30, 0.3), spike(4, 3.6, 0.2)))
    usual = assessor.assess(closed(summary(30, 4, start=T0 + 10 * SIZE, sources=sources, languages=languages),
                                   spike(30, 30, 0.3), spike(4, 3.6, 0.2)))
    assert usual.evidence.components is not None and usual.evidence.components.spread < 0.05
    wider = assessor.assess(closed(
        summary(40, 4, start=T0 + 11 * SIZE, sources={**sources, "news2": 3, "tiktok": 3, "forum": 3},
                languages={**languages, "de": 3, "it": 3, "pt": 4}),
        spike(40, 30, 0.8), spike(4, 4.8, 0.1)))
    assert wider.evidence.components is not None and wider.evidence.components.spread > 0.5


def test_any_policy_field_is_configuration() -> None:
    from pydantic import ValidationError

    from crisiswatch.settings import Settings

    settings = Settings(risk_policy={"warning_at": 35, "cooldown_seconds": 600}, min_mentions_to_pause=7)
    policy = settings.risk.policy()
    assert (policy.warning_at, policy.cooldown_seconds, policy.min_mentions_to_pause) == (35, 600, 7)
    with pytest.raises(ValidationError, match="unknown risk policy field"):
        Settings(risk_policy={"warn_at": 35})
    with pytest.raises(ValidationError, match="warning_at < critical_at"):
        Settings(risk_policy={"warning_at": 90})


def test_a_test_pooled_over_several_windows_is_not_read_as_this_windows_baseline() -> None:
    """A sparse window whose negativity verdict sums three windows: its usual share stays the brand's own."""
    assessor = warm_assessor()  # calm windows: 12 % negative
    window = summary(2, 0, start=T0)
    volume = spike(2, 30.0, 0.0)
    pooled = SpikeResult(0.0, 2.4, 0.0, 1.0, False, windows=3)  # 0 negatives of 20 pooled mentions
    assessment = assessor.assess(closed(window, volume, pooled))
    assert "vs 12% usual" in assessment.summary, assessment.summary
    assert "over the last 3 windows" in "\n".join(assessment.explanation)
    alone = SpikeResult(0.0, 0.24, 0.0, 1.0, False)  # the same window tested alone: 12 % of 2 mentions
    assert "vs 12% usual" in warm_assessor().assess(closed(window, volume, alone)).summary

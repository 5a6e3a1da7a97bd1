"""The corroborated gate to critical: brand-relative, multi-scale, persistent, corroborated."""

from __future__ import annotations

import json
import random

from crisiswatch.detectors.crisis import CrisisGate, CrisisPolicy

MINUTE = 60.0


def story_probabilities(rng: random.Random, stories: int, negative_share: float) -> list[float]:
    """Negative probabilities as the sentiment model gives them: about 0.55 for negative texts, 0.22 for others."""
    return [
        min(0.98, max(0.02, rng.gauss(0.55, 0.18) if rng.random() < negative_share else rng.gauss(0.22, 0.12)))
        for _ in range(stories)
    ]


def feed(
    gate: CrisisGate, rng: random.Random, minute: int, rate: float, share: float, terms: dict[str, int] | None = None,
    expected: float | None = None,
):
    n = max(0, round(rng.gauss(rate, rate**0.5)))
    ps = story_probabilities(rng, n, share)
    return gate.observe(
        minute * MINUTE, MINUTE, n, sum(ps), sum(p * p for p in ps), rate if expected is None else expected, n,
        terms or {},
    )


def ordinary_days(gate: CrisisGate, rng: random.Random, days: float, rate: float, share: float = 0.25) -> int:
    criticals = 0
    for minute in range(int(days * 1440)):
        criticals += feed(gate, rng, minute, rate, share, {"lawsuit": 1} if minute % 7 == 0 else None).critical
    return criticals


def test_ordinary_days_with_bursts_of_the_usual_mix_never_reach_critical() -> None:
    rng = random.Random(1)
    gate = CrisisGate()
    assert ordinary_days(gate, rng, 2, rate=20) == 0
    start = 2 * 1440
    # a five-fold burst with the usual sentiment mix and ordinary crisis words
    verdicts = [feed(gate, rng, start + i, 100, 0.25, {"lawsuit": 5}, expected=20) for i in range(30)]
    assert not any(v.critical for v in verdicts)


def test_a_negative_explosion_is_critical_within_three_windows_and_says_why() -> None:
    rng = random.Random(2)
    gate = CrisisGate()
    ordinary_days(gate, rng, 1, rate=10)
    start = 1440
    verdicts = [feed(gate, rng, start + i, 80, 0.75, {"breach": 30}, expected=10) for i in range(5)]
    first = next(i for i, v in enumerate(verdicts) if v.critical)
    assert first <= 2
    reasons = " ".join(verdicts[first].reasons)
    assert "sd above the brand's usual" in reasons and "breach" in reasons


def test_a_slow_burn_at_modest_volume_is_critical_before_it_peaks() -> None:
    rng = random.Random(3)
    gate = CrisisGate()
    ordinary_days(gate, rng, 1, rate=10)
    start = 1440
    critical_at = None
    for i in range(120):  # negative share climbs from 25% to 85% over two hours at twice the volume
        share = 0.25 + 0.6 * i / 120
        if feed(gate, rng, start + i, 20, share, {"recall": 4}, expected=10).critical and critical_at is None:
            critical_at = i
    assert critical_at is not None and critical_at < 90


def test_crisis_words_the_brand_always_has_are_not_unusual_for_it() -> None:
    rng = random.Random(4)
    insurer = CrisisGate()
    for minute in range(1440):
        feed(insurer, rng, minute, 20, 0.25, {"accident": 4})
    verdict = feed(insurer, rng, 1440, 20, 0.25, {"accident": 5, "fraud": 5})
    assert "fraud" in verdict.unusual_terms and "accident" not in verdict.unusual_terms


def test_state_round_trips_through_json() -> None:
    rng = random.Random(5)
    gate = CrisisGate(CrisisPolicy(persist=3, persist_of=4))
    ordinary_days(gate, rng, 0.2, rate=5)
    copy = CrisisGate.from_state(json.loads(json.dumps(gate.to_state())), gate.policy)
    a = feed(gate, random.Random(9), 400, 40, 0.8, {"breach": 9})
    b = feed(copy, random.Random(9), 400, 40, 0.8, {"breach": 9})
    assert a == b

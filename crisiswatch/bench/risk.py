"""Risk benchmark: synthetic crisis scenarios end to end through windows, detectors and risk; lexicon and
near-duplicate quality; throughput of `find_crisis_terms_batch` and `story_key`.

Every scenario runs the production path without Kafka: mentions → `detectors.lexicon` and
`detectors.neardup` → `stream.windowing.BrandWindows` (one-minute windows, the real volume and negativity
detectors) → `detectors.risk.BrandRiskMonitor`. Texts are the demo's templates in eight languages, each
prefixed with random words so that different people's posts are different texts, plus retweets and
syndicated copies. Sentiment labels come from the generator (this benchmark measures risk, not the
sentiment model). Deterministic (seeded).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crisiswatch import demo
from crisiswatch.contracts.vocabulary import SEVERITY_RANK
from crisiswatch.detectors.lexicon import find_crisis_terms, find_crisis_terms_batch, lexicon_stats
from crisiswatch.detectors.neardup import story_key
from crisiswatch.detectors.risk import BrandRiskMonitor, RiskPolicy
from crisiswatch.detectors.window import MentionFacts, WindowAggregate
from crisiswatch.stream.windowing import BrandWindows

WINDOW = 60.0
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC).timestamp()
BASELINE_MINUTES = 180
SCENARIO_POLICY = RiskPolicy(maturity_seconds=BASELINE_MINUTES * 60.0)
"""The default policy, with maturity reached after the scenarios' calm baseline."""
LANGUAGE_NAMES = {
    "en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian", "pt": "Portuguese",
    "ar": "Arabic", "hi": "Hindi",
}
NEUTRAL_NEWS = [
    "{b} announces restructuring of its European business and job cuts at two plants",
    "{b} to cut 500 jobs as part of a cost programme, says chief executive",
    "Analysts react to {b} layoffs announcement and new quarterly guidance",
    "{b} confirms plant closures and layoffs in quarterly report",
    "What the {b} restructuring means for customers and suppliers",
]

Mention = tuple[str, str, str, str, int]
"""(text, lang, sentiment, source, reach)"""


class Voices:
    """Distinct posts in one language: a template prefixed with a few random words of that language."""

    def __init__(self, rng: random.Random, brand_name: str):
        self.rng = rng
        self.name = brand_name
        self.words: dict[str, list[str]] = {}
        for lang, moods in demo.CALM.items():
            words = [w.strip(",.!?¿¡:;،") for texts in moods.values() for t in texts for w in t.split()]
            self.words[lang] = [w for w in words if w and "{b}" not in w]

    def post(self, template: str, lang: str, prefix_words: int = 5) -> str:
        prefix = " ".join(self.rng.choices(self.words.get(lang, self.words["en"]), k=prefix_words))
        return f"{prefix} {template.format(b=self.name)}"

    def calm(self, lang: str) -> tuple[str, str]:
        mood = self.rng.choices(["positive", "neutral", "negative"], [0.35, 0.5, 0.15])[0]
        return self.post(self.rng.choice(demo.CALM[lang][mood]), lang), mood


def _reach(rng: random.Random) -> int:
    return max(1, int(rng.lognormvariate(5, 1.5)))


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def simulate(
    name: str,
    minutes: int,
    rate: Callable[[int], float],
    mention: Callable[[int, random.Random], Mention],
    event_start: int | None = None,
    seed: int = 1,
    extra: Callable[[int], list[Mention]] | None = None,
    brand: str = "globex",
) -> dict[str, Any]:
    """Run one scenario; returns the alerts it raised and the numbers of its peak window."""
    rng = random.Random(f"{name}:{seed}")
    windows = BrandWindows(brand, WINDOW, 0.0)
    # The scenarios give each brand 3 h of history, not the default day: count that as mature so that the
    # pause path is exercised (the maturity rule itself is tested in tests/test_risk.py and on the broker).
    monitor = BrandRiskMonitor(brand, SCENARIO_POLICY)
    alerts: list[dict[str, Any]] = []
    peak: dict[str, Any] = {"risk": -1.0}
    mentions_total = 0
    for minute in range(minutes + 1):
        items = [mention(minute, rng) for _ in range(_poisson(rng, rate(minute)))] if minute < minutes else []
        if extra is not None and minute < minutes:
            items += extra(minute)
        terms = find_crisis_terms_batch([text for text, *_ in items])
        start = T0 + minute * WINDOW
        for i, ((text, lang, sentiment, source, reach), found) in enumerate(zip(items, terms, strict=True)):
            mentions_total += 1
            windows.add(start + rng.uniform(0, WINDOW - 0.001), MentionFacts(
                id=f"{name}:{minute}:{i}", text=text, source=source, reach=reach, lang=lang, sentiment=sentiment,
                story=story_key(text), crisis_terms=found,
            ))
        for closed in windows.close_until(start + 0.001):
            decision = monitor.observe(closed)
            a = decision.assessment
            at = round((closed.start - T0) / WINDOW)
            if a.risk > peak["risk"]:
                peak = {"risk": a.risk, "minute": at, "severity": a.severity, "mentions": closed.mentions,
                        "stories": closed.stories, "summary": a.summary}
            if decision.alert_kind or decision.pause:
                alerts.append({
                    "minute": at, "minutes_after_start": None if event_start is None else at - event_start,
                    "kind": decision.alert_kind, "severity": a.severity, "risk": a.risk, "pause": decision.pause,
                    "episode": decision.episode_id, "summary": a.summary,
                })
    severities = [a["severity"] for a in alerts if a["kind"] != "resolved"]
    critical = [a for a in alerts if a["severity"] == "critical" and a["kind"] != "resolved"]
    return {
        "mentions": mentions_total,
        "alerts": alerts,
        "episodes": len({a["episode"] for a in alerts if a["episode"]}),
        "pauses": sum(a["pause"] for a in alerts),
        "max_severity": max(severities, key=SEVERITY_RANK.__getitem__) if severities else "none",
        "first_critical_minutes_after_start": critical[0]["minutes_after_start"] if critical else None,
        "resolved": any(a["kind"] == "resolved" for a in alerts),
        "peak_window": peak,
    }


def _calm_mention(voices: Voices, langs: list[str], weights: list[float]) -> Callable[[int, random.Random], Mention]:
    def make(minute: int, rng: random.Random) -> Mention:
        lang = rng.choices(langs, weights)[0]
        text, mood = voices.calm(lang)
        return text, lang, mood, rng.choice(demo.SOURCES), _reach(rng)
    return make


def crisis_scenario(lang: str, seed: int = 1) -> dict[str, Any]:
    """A negative crisis in one language: 3 h calm, 30 min crisis ramping to ~10x, 60 min calm."""
    voices = Voices(random.Random(f"voices:{lang}:{seed}"), "Globex")
    calm = _calm_mention(voices, [lang, "en"], [0.7, 0.3])
    start, length = BASELINE_MINUTES, 30
    loudest = f"RT @angrycustomer: {demo.CRISIS_TEXTS[lang][0].format(b='Globex')}"

    def rate(minute: int) -> float:
        if start <= minute < start + length:
            return 20.0 + min(180.0, 15.0 * (minute - start + 1))
        return 20.0

    def mention(minute: int, rng: random.Random) -> Mention:
        if not start <= minute < start + length or rng.random() < 20.0 / rate(minute):
            return calm(minute, rng)
        text = loudest if rng.random() < 0.25 else voices.post(rng.choice(demo.CRISIS_TEXTS[lang]), lang)
        sentiment = rng.choices(["negative", "neutral", "positive"], [0.8, 0.15, 0.05])[0]
        return text, lang, sentiment, rng.choice(["twitter", "twitter", "reddit", "forum", "reviews"]), _reach(rng)

    def news(minute: int) -> list[Mention]:
        if minute != start + 6:
            return []
        headline = demo.NEWS_HEADLINE.format(b="Globex")
        return [(f"{headline} - {outlet} https://news.example/{i}", "en", "negative", "news", 500_000)
                for i, outlet in enumerate(demo.OUTLETS)]

    return simulate(f"crisis-{lang}", start + length + 60, rate, mention, start, seed, news)


def viral_scenario(seed: int = 1) -> dict[str, Any]:
    """A loud positive moment: 3 h calm, 20 min at up to ~15x, overwhelmingly positive."""
    voices = Voices(random.Random(f"voices:viral:{seed}"), "Acme")
    calm = _calm_mention(voices, list(demo.CALM), [1.0] * len(demo.CALM))
    start, length = BASELINE_MINUTES, 20

    def rate(minute: int) -> float:
        if start <= minute < start + length:
            return 20.0 + 280.0 * math.sin(math.pi * (minute - start + 0.5) / length)
        return 20.0

    def mention(minute: int, rng: random.Random) -> Mention:
        if not start <= minute < start + length or rng.random() < 20.0 / rate(minute):
            return calm(minute, rng)
        lang = rng.choices(list(demo.VIRAL_TEXTS), [0.6, 0.15, 0.15, 0.1])[0]
        text = voices.post(rng.choice(demo.VIRAL_TEXTS[lang]), lang)
        sentiment = rng.choices(["positive", "neutral", "negative"], [0.88, 0.09, 0.03])[0]
        return text, lang, sentiment, rng.choice(["twitter", "twitter", "tiktok", "instagram"]), 20 * _reach(rng)

    return simulate("viral", start + length + 60, rate, mention, start, seed, brand="acme")


def neutral_news_scenario(seed: int = 1) -> dict[str, Any]:
    """Neutral business news (layoffs, restructuring) syndicated widely: 3 h calm, 30 min at ~8x."""
    voices = Voices(random.Random(f"voices:news:{seed}"), "Globex")
    calm = _calm_mention(voices, list(demo.CALM), [1.0] * len(demo.CALM))
    start, length = BASELINE_MINUTES, 30

    def rate(minute: int) -> float:
        return 160.0 if start <= minute < start + length else 20.0

    def mention(minute: int, rng: random.Random) -> Mention:
        if not start <= minute < start + length or rng.random() < 20.0 / rate(minute):
            return calm(minute, rng)
        headline = rng.choice(NEUTRAL_NEWS).format(b="Globex")
        if rng.random() < 0.5:  # syndicated copy
            text = f"{headline} - {rng.choice(demo.OUTLETS)} https://news.example/{rng.randrange(10**6)}"
            return text, "en", "neutral", "news", rng.randrange(50_000, 2_000_000)
        text = voices.post(headline, "en", prefix_words=6)
        sentiment = rng.choices(["neutral", "negative", "positive"], [0.8, 0.13, 0.07])[0]
        return text, "en", sentiment, rng.choice(["twitter", "reddit", "blog"]), _reach(rng)

    return simulate("neutral-news", start + length + 60, rate, mention, start, seed)


def sparse_scenario(seed: int = 1) -> dict[str, Any]:
    """A small brand: 0.3 mentions a minute for a day, a third of them negative, random reach."""
    voices = Voices(random.Random(f"voices:sparse:{seed}"), "Initech")

    def mention(minute: int, rng: random.Random) -> Mention:
        lang = rng.choice(list(demo.CALM))
        text, _ = voices.calm(lang)
        sentiment = rng.choices(["negative", "neutral", "positive"], [0.33, 0.34, 0.33])[0]
        return text, lang, sentiment, rng.choice(demo.SOURCES), _reach(rng) * rng.choice([1, 1, 1, 100])

    return simulate("sparse", 24 * 60, lambda minute: 0.3, mention, None, seed, brand="initech")


def syndication_check() -> dict[str, Any]:
    """One wire story copied by twelve outlets in one window: one story, twelve times the reach."""
    window = WindowAggregate(brand="globex", start=T0, end=T0 + WINDOW)
    headline = demo.NEWS_HEADLINE.format(b="Globex")
    for i, outlet in enumerate(demo.OUTLETS):
        text = f"{headline} - {outlet} https://news.example/{outlet.replace(' ', '-').lower()}/{i}"
        if i % 3 == 0:
            text = f"RT @{outlet.replace(' ', '')}: {text} #breaking"
        window.add(MentionFacts(id=f"s{i}", text=text, source="news", reach=250_000, lang="en",
                                sentiment="negative", story=story_key(text), crisis_terms=find_crisis_terms(text)))
    return {"copies": window.mentions, "stories": window.story_count, "reach": window.reach,
            "reach_per_copy": 250_000, "crisis_terms": dict(window.crisis_terms)}


def neardup_quality(seed: int = 5) -> dict[str, Any]:
    """How often copies fold (should: retweets, syndication, small edits) and distinct posts don't."""
    rng = random.Random(seed)
    voices = Voices(random.Random(seed + 1), "Globex")
    originals = [voices.post(rng.choice(demo.CRISIS_TEXTS[lang]), lang, 8)
                 for lang in demo.CRISIS_TEXTS for _ in range(60)]
    retweet = sum(story_key(f"RT @user{i}: {t} 😡") == story_key(t) for i, t in enumerate(originals))
    suffixes = [f" - {o}" for o in demo.OUTLETS[:4]] + [f" | {o}" for o in demo.OUTLETS[4:8]] + [" via @wire"] * 4
    syndicated = sum(story_key(t + rng.choice(suffixes) + f" https://x.example/{rng.randrange(10**6)}")
                     == story_key(t) for t in originals)
    edited = 0
    for t in originals:
        words = t.split()
        words[rng.randrange(len(words))] = rng.choice(["really", "so", "totally"])
        edited += story_key(" ".join(words)) == story_key(t)
    campaigns = []
    for t in originals[::40]:
        keys = set()
        for _ in range(100):
            words = t.split()
            for _ in range(rng.choice([1, 1, 2])):
                words[rng.randrange(len(words))] = rng.choice(["really", "so", "totally", "honestly"])
            keys.add(story_key(" ".join(words) + rng.choice(["", " #boycott", " @globex", " 😡"])))
        campaigns.append(len(keys) / 100)
    phrase_runs = []
    for phrase in ("globex data breach", "boycott globex now", "globex leaked my data", "#boycottglobex"):
        posts = []
        for _ in range(300):
            lang = rng.choice(list(demo.CALM))
            words = voices.post(rng.choice(demo.CALM[lang]["negative"]), lang, 8).split()
            i = rng.randrange(len(words) + 1)
            posts.append(" ".join([*words[:i], phrase, *words[i:]]))
        phrase_runs.append(len({story_key(p) for p in posts}) / len(posts))
    n = len(originals)
    return {
        "texts": n,
        "retweets_folded": round(retweet / n, 3),
        "syndicated_copies_folded": round(syndicated / n, 3),
        "one_word_edit_folded": round(edited / n, 3),
        "campaign_stories_per_copy": round(sum(campaigns) / len(campaigns), 3),
        "campaign_runs": len(campaigns),
        "distinct_posts_sharing_a_phrase_kept_distinct": round(sum(phrase_runs) / len(phrase_runs), 3),
        "worst_phrase_kept_distinct": round(min(phrase_runs), 3),
    }


def _corpus(size: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    voices = Voices(random.Random(seed), "Acme")
    texts = []
    for _ in range(size):
        lang = rng.choice(list(demo.CALM))
        roll = rng.random()
        if roll < 0.05:
            texts.append(voices.post(rng.choice(demo.CRISIS_TEXTS[lang]), lang))
        elif roll < 0.15:
            texts.append(rng.choice(demo.CHATTER))
        else:
            text, _ = voices.calm(lang)
            texts.append(text + rng.choice(["", " https://t.co/abc123", " #acme", " @acme 😍"]))
    return texts


def _best_rate(size: int, fn: Callable[[], Any], repeats: int = 3) -> float:
    best = math.inf
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return size / best


def throughput(size: int = 20_000) -> dict[str, Any]:
    """Texts per second on one core (best of three), on demo-like multilingual mentions."""
    texts = _corpus(size)
    find_crisis_terms_batch(texts[:10])  # build the matcher outside the timing
    chunks = [texts[i : i + 1000] for i in range(0, len(texts), 1000)]
    return {
        "texts": size,
        "mean_chars": round(sum(map(len, texts)) / size, 1),
        "find_crisis_terms_batch_per_second": round(
            _best_rate(size, lambda: [find_crisis_terms_batch(c) for c in chunks])
        ),
        "find_crisis_terms_per_second": round(_best_rate(size, lambda: [find_crisis_terms(t) for t in texts])),
        "story_key_per_second": round(_best_rate(size, lambda: [story_key(t) for t in texts])),
        "hit_rate": round(sum(1 for r in find_crisis_terms_batch(texts) if r) / size, 3),
    }


def run() -> dict[str, Any]:
    """Every measurement of this benchmark, as a JSON-serialisable dict."""
    began = time.perf_counter()
    scenarios: dict[str, Any] = {f"crisis_{lang}": crisis_scenario(lang) for lang in demo.CRISIS_TEXTS}
    scenarios["viral_positive"] = viral_scenario()
    scenarios["neutral_news"] = neutral_news_scenario()
    scenarios["sparse_noise"] = sparse_scenario()
    checks = {
        **{f"crisis_{lang}_critical_and_one_pause": scenarios[f"crisis_{lang}"]["max_severity"] == "critical"
           and scenarios[f"crisis_{lang}"]["pauses"] == 1 and scenarios[f"crisis_{lang}"]["episodes"] == 1
           for lang in demo.CRISIS_TEXTS},
        "viral_positive_never_critical": scenarios["viral_positive"]["max_severity"] != "critical"
        and scenarios["viral_positive"]["pauses"] == 0,
        "neutral_news_not_critical": scenarios["neutral_news"]["max_severity"] != "critical",
        "sparse_noise_no_alerts": not scenarios["sparse_noise"]["alerts"],
    }
    syndication = syndication_check()
    checks["syndicated_x12_is_one_story_with_12x_reach"] = (
        syndication["stories"] == 1 and syndication["reach"] == 12 * syndication["reach_per_copy"]
    )
    return {
        "policy": SCENARIO_POLICY.to_dict(),
        "checks": checks,
        "all_checks_pass": all(checks.values()),
        "scenarios": scenarios,
        "syndication": syndication,
        "neardup": neardup_quality(),
        "throughput": throughput(),
        "lexicon": lexicon_stats(),
        "seconds": round(time.perf_counter() - began, 1),
    }


def markdown(result: dict[str, Any]) -> str:
    """The report as Markdown."""
    checks = result["checks"]
    passed = sum(checks.values())
    lines = [
        "# Risk benchmark",
        "",
        f"Checks: **{passed}/{len(checks)} pass**. Scenarios run mentions → lexicon + story keys → one-minute "
        "windows with the real volume and negativity detectors → `BrandRiskMonitor` (default policy: warning "
        "≥ 40, critical ≥ 70, pause at critical with ≥ 20 mentions). 3 h of calm baseline precede each event.",
        "",
        "| scenario | mentions | max severity | first critical (min after start) | episodes | pauses | resolved "
        "| peak window |",
        "|---|---:|---|---:|---:|---:|---|---|",
    ]
    for name, s in result["scenarios"].items():
        peak = s["peak_window"]
        first = s["first_critical_minutes_after_start"]
        lines.append(
            f"| {name} | {s['mentions']:,} | {s['max_severity']} | {'-' if first is None else first} "
            f"| {s['episodes']} | {s['pauses']} | {'yes' if s['resolved'] else 'no'} "
            f"| risk {peak['risk']:.0f}: {peak.get('summary', '')} |"
        )
    lines += ["", "| check | result |", "|---|---|"]
    lines += [f"| {name} | {'pass' if ok else '**FAIL**'} |" for name, ok in checks.items()]
    s = result["syndication"]
    n = result["neardup"]
    t = result["throughput"]
    lex = result["lexicon"]
    lines += [
        "",
        "## Near-duplicates",
        "",
        f"- One wire story copied by {s['copies']} outlets (different URLs, handles, credits): "
        f"**{s['stories']} story**, reach {s['reach']:,} ({s['copies']}x {s['reach_per_copy']:,}).",
        f"- Retweets folded: {n['retweets_folded']:.0%}; syndicated copies (credit line, link): "
        f"{n['syndicated_copies_folded']:.0%}; one word edited: {n['one_word_edit_folded']:.0%} "
        f"({n['texts']} texts in 8 languages).",
        f"- Copy-paste campaigns (100 copies, 1–2 words edited, tags/handles/emoji added): "
        f"**{n['campaign_stories_per_copy']:.2f} stories per copy** ({n['campaign_runs']} campaigns).",
        f"- Distinct posts that share a phrase (\"globex data breach\", \"#boycottglobex\", …): "
        f"**{n['distinct_posts_sharing_a_phrase_kept_distinct']:.1%} kept distinct** "
        f"(worst phrase {n['worst_phrase_kept_distinct']:.1%}).",
        "",
        "## Throughput (one core, best of three)",
        "",
        f"{t['texts']:,} demo-like multilingual mentions, {t['mean_chars']} characters on average, "
        f"{t['hit_rate']:.1%} with a crisis term.",
        "",
        "| function | texts/s |",
        "|---|---:|",
        f"| `find_crisis_terms_batch` (batches of 1,000) | {t['find_crisis_terms_batch_per_second']:,} |",
        f"| `find_crisis_terms` (one call per text) | {t['find_crisis_terms_per_second']:,} |",
        f"| `story_key` | {t['story_key_per_second']:,} |",
        "",
        f"Lexicon: {lex['concepts']} concepts, {lex['languages']} languages (with Hinglish), "
        f"{lex['exact_forms']:,} whole-word and {lex['stem_forms']:,} stem forms after variants; one regex of "
        f"{lex['pattern_chars']:,} characters.",
        "",
        f"Benchmark time: {result['seconds']} s.",
        "",
    ]
    return "\n".join(lines)


def write_report(out: Path) -> str:
    """Run, write ``bench-risk.md`` and ``.json`` under ``out``; returns the Markdown."""
    result = run()
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench-risk.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    text = markdown(result)
    (out / "bench-risk.md").write_text(text)
    return text

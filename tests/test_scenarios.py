"""The scenario corpus generator (crisiswatch/scenarios) and gzipped replay files.

Tests that need ../shared/data (NAB series, UMSAB tweets) take the ``shared_data`` fixture and are
skipped with a message where it is absent.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from crisiswatch.connectors.replay import read_items
from crisiswatch.contracts.records import Mention
from crisiswatch.detectors.brands import BrandMatcher, parse_brands
from crisiswatch.detectors.lexicon import find_crisis_terms
from crisiswatch.scenarios import phrases
from crisiswatch.scenarios.generate import MENTIONS_FILE, generate_corpus, plan_corpus
from crisiswatch.scenarios.labels import CRISIS_NAMES, DECOY_NAMES, load_labels
from crisiswatch.scenarios.profiles import NAMES
from crisiswatch.scenarios.seeds import SPLITS
from crisiswatch.scenarios.texts import FOLDERS, load_pools
from crisiswatch.scenarios.volume import gap_minutes, load_series, minute_rates

SMALL = {"split": "tune", "days": 2, "brands": 3}


@pytest.fixture(scope="module")
def small(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A 2-day, 3-brand tune corpus and the seconds it took."""
    out = tmp_path_factory.mktemp("corpus")
    began = time.perf_counter()
    generate_corpus(out, data=shared_data, **SMALL)  # type: ignore[arg-type]
    return out, time.perf_counter() - began


@pytest.fixture(scope="module")
def parsed(small: tuple[Path, float]) -> list[dict]:
    with gzip.open(small[0] / MENTIONS_FILE, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- replay of gzipped files (no shared data needed) ----------------------------------------------------
def test_replay_reads_gzipped_jsonl_like_plain(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "t:1", "source": "twitter", "text": "Acme ok", "created_at": "2026-09-01T00:00:01Z"}),
        "not json",
        json.dumps({"id": "t:2", "source": "twitter", "text": "Acme ü", "created_at": "2026-09-01T00:00:02.5Z"}),
    ]
    body = ("\n".join(lines) + "\n").encode()
    plain = tmp_path / "m.jsonl"
    plain.write_bytes(body)
    packed = tmp_path / "m.jsonl.gz"
    packed.write_bytes(gzip.compress(body))
    csv_packed = tmp_path / "m.csv.gz"
    csv_packed.write_bytes(gzip.compress(b"id,source,text,created_at\nc:1,rss,Acme,2026-09-01T00:00:03Z\n"))
    assert list(read_items(packed)) == list(read_items(plain))
    items = list(read_items(packed))
    assert [i.key for i in items] == [b"t:1", None, b"t:2"]
    assert items[2].event_time == _when("2026-09-01T00:00:02.5Z").timestamp()
    (row,) = read_items(csv_packed)
    assert row.key == b"c:1" and json.loads(row.value)["source"] == "rss"


# --- phrases and names (no shared data needed) ----------------------------------------------------------
def test_every_crisis_phrase_carries_a_term_the_lexicon_recognises() -> None:
    for story, by_lang in phrases.STORY_NOUNS.items():
        wanted = set(phrases.STORY_CONCEPT[story])
        assert set(by_lang) == set(phrases.LANGS)
        for lang, nouns in by_lang.items():
            for noun in nouns:
                for template in phrases.CRISIS[lang]:
                    text = template.format(b="Zentrix", n=noun)
                    assert wanted & set(find_crisis_terms(text)), (story, lang, text)
                for template in phrases.COMPETITOR[lang]:
                    text = template.format(x="Zentrix", y="Corvanta", n=noun)
                    assert wanted & set(find_crisis_terms(text)), (story, lang, text)
    for sector, by_lang in phrases.SECTOR.items():
        for templates in by_lang.values():
            for template in templates:
                assert phrases.SECTOR_CONCEPT[sector] in find_crisis_terms(template.format(b="Zentrix")), template
    for templates in phrases.CHATTER.values():
        for template in templates:
            assert find_crisis_terms(template.format(b="Zentrix")), template
    for table in (phrases.VIRAL, phrases.LAUNCH):
        for templates in table.values():
            for template in templates:
                assert not find_crisis_terms(template.format(b="Zentrix", p="Pro")), template


def test_brand_names_are_invented() -> None:
    assert len(set(NAMES)) == len(NAMES)
    for name in NAMES:
        assert not find_crisis_terms(name) and not find_crisis_terms(name.lower()), name
    tune, check = set(NAMES[SPLITS["tune"].brand_names]), set(NAMES[SPLITS["check"].brand_names])
    assert tune and check and not tune & check


def test_brand_names_occur_in_no_tweet(shared_data: Path) -> None:
    words = re.compile("|".join(n.lower() for n in NAMES))
    for folder in FOLDERS.values():
        for part in ("train", "val"):
            text = (shared_data / "sentiment-umsab" / folder / f"{part}_text.txt").read_text(encoding="utf-8")
            assert not words.search(text.lower()), (folder, part)


# --- splits --------------------------------------------------------------------------------------------
def test_splits_share_no_series_and_no_texts(shared_data: Path) -> None:
    assert not set(SPLITS["tune"].series) & set(SPLITS["check"].series)
    assert SPLITS["tune"].texts != SPLITS["check"].texts
    train, val = load_pools(shared_data, "train"), load_pools(shared_data, "val")
    norm = lambda texts: {" ".join(t.split()).casefold() for t in texts}  # noqa: E731
    assert not norm(train.all_texts()) & norm(val.all_texts())
    assert not set(train.files) & set(val.files)
    for split in SPLITS.values():
        plan = plan_corpus(split.name, 14, 8, split.seed, shared_data)
        assert {b.series for b in plan.brands} <= set(split.series)
        assert len({b.series for b in plan.brands}) >= 2


def test_default_plan_has_every_event_kind_and_the_brands_it_needs(shared_data: Path) -> None:
    for split in SPLITS.values():
        plan = plan_corpus(split.name, 14, 8, split.seed, shared_data)
        assert not plan.skipped
        rates = sorted(b.rate for b in plan.brands)
        assert rates[0] == 1 and rates[-1] == 50
        assert sum(b.first_minute >= 2 * 1440 for b in plan.brands) == 1, "one brand starts on day 3"
        names = Counter((e.kind, e.name) for e in plan.events)
        for name in CRISIS_NAMES:
            assert names[("crisis", name)] >= 1, name
        for name in DECOY_NAMES:
            if name != "nab_burst":
                assert names[("decoy", name)] >= 1, name
        assert sum(names[("crisis", n)] for n in CRISIS_NAMES) >= 8
        by_index = {b.index: b for b in plan.brands}
        for e in plan.events:
            if e.name == "sparse_crisis":
                assert by_index[e.brand].rate <= 2
            if e.name == "one_language":
                assert e.languages in (["ar"], ["de"])
            if e.name == "slow_burn":
                assert by_index[e.brand].rate >= 3
        starts = sorted(e.start % 1440 for e in plan.events)
        assert starts[0] < 6 * 60 and starts[-1] > 18 * 60, "events at varied hours, night included"
    first, other = (plan_corpus("check", 14, 8, s, shared_data) for s in (1, 2))
    assert [e.start for e in first.events] != [e.start for e in other.events], "placement follows the seed"


# --- a small corpus ---------------------------------------------------------------------------------------
def test_small_corpus_generates_fast(small: tuple[Path, float]) -> None:
    out, seconds = small
    assert seconds < 60, f"{seconds:.1f} s for a 2-day, 3-brand corpus"
    assert {p.name for p in out.iterdir()} >= {MENTIONS_FILE, "brands.yaml", "labels.json", "manifest.json"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["split"] == "tune" and manifest["seed"] == SPLITS["tune"].seed
    assert manifest["series_files"] == sorted(f"nab-tweets/{s}.csv" for s in SPLITS["tune"].series)
    assert all("/train_" in f for f in manifest["text_files"])
    assert manifest["mentions"] == sum(b["mentions"] for b in manifest["brands"].values())


def test_same_seed_same_bytes_other_seed_other_bytes(shared_data: Path, tmp_path: Path) -> None:
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        generate_corpus(tmp_path / name, "check", days=2, brands=2, seed=seed, data=shared_data)
        runs[name] = {f: (tmp_path / name / f).read_bytes() for f in (MENTIONS_FILE, "labels.json", "brands.yaml")}
    assert runs["a"] == runs["b"]
    assert runs["a"][MENTIONS_FILE] != runs["c"][MENTIONS_FILE]


def test_mentions_are_valid_sorted_and_each_names_a_brand(small: tuple[Path, float], parsed: list[dict]) -> None:
    out, _ = small
    matcher = BrandMatcher(parse_brands(yaml.safe_load((out / "brands.yaml").read_text())))
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(parsed) == manifest["mentions"]
    assert len({m["id"] for m in parsed}) == len(parsed)
    stamps = [m["created_at"] for m in parsed]
    assert stamps == sorted(stamps) and all(s.endswith("Z") for s in stamps)
    for m in parsed[:: max(1, len(parsed) // 2000)]:
        Mention.model_validate(m)
    counts: Counter[str] = Counter()
    for m in parsed:
        found = matcher.brands.match(m["text"])
        assert found, m["text"]
        counts.update(found)
    for brand, info in manifest["brands"].items():
        assert counts[brand] >= info["mentions"]
    sources = Counter(m["source"] for m in parsed)
    assert sources["twitter"] > len(parsed) / 2 and {"reddit", "news", "forum", "reviews"} <= set(sources)
    assert 0.02 < sum("reach" in m["metrics"] for m in parsed) / len(parsed) < 0.3, "reach is often absent"
    assert sum("lang" in m for m in parsed) / len(parsed) < 0.15, "lang is mostly absent"
    followers = np.array([m["author"]["followers"] for m in parsed if m["author"].get("followers") is not None])
    assert np.median(followers) < 1000 < np.percentile(followers, 99), "heavy-tailed followers"
    with_terms = sum(bool(find_crisis_terms(m["text"])) for m in parsed[::10]) / len(parsed[::10])
    assert 0.02 < with_terms < 0.5, with_terms


def test_event_labels_lie_in_the_corpus_and_crises_wait_for_maturity(small: tuple[Path, float]) -> None:
    labels = load_labels(small[0] / "labels.json")
    assert labels.end - labels.start == timedelta(days=SMALL["days"])
    assert len(labels.brands) == SMALL["brands"]
    assert labels.crises(), "the small corpus has crises"
    by_brand = defaultdict(list)
    for event in labels.events:
        assert labels.start <= event.start < event.end <= labels.end, event
        assert event.brand in labels.brands
        assert event.expect_pause == (event.kind == "crisis")
        assert event.name in (CRISIS_NAMES if event.kind == "crisis" else DECOY_NAMES)
        if event.kind == "crisis":
            assert event.start >= labels.brands[event.brand].first_mention + timedelta(hours=26), event
        if event.name != "nab_burst":
            by_brand[event.brand].append(event)
    for events in by_brand.values():
        events.sort(key=lambda e: e.start)
        for before, after in itertools.pairwise(events):
            assert after.start - before.end >= timedelta(hours=6), (before, after)
    first = {b: info.first_mention for b, info in labels.brands.items()}
    assert any(f > labels.start + timedelta(hours=6) for f in first.values()), "one brand starts later"


def test_rates_roughly_match(small: tuple[Path, float], parsed: list[dict]) -> None:
    out, _ = small
    labels = load_labels(out / "labels.json")
    matcher = BrandMatcher(parse_brands(yaml.safe_load((out / "brands.yaml").read_text())))
    start = labels.start
    buckets: dict[str, Counter[int]] = defaultdict(Counter)
    for m in parsed:
        t = _when(m["created_at"])
        for brand in matcher.brands.match(m["text"]):
            buckets[brand][int((t - start).total_seconds() // 300)] += 1
    for brand, info in labels.brands.items():
        first = int((info.first_mention - start).total_seconds() // 300) + 1
        busy = {
            k
            for e in labels.events
            if e.brand == brand and e.name != "nab_burst"
            for k in range(
                int((e.start - start).total_seconds() // 300), int((e.end - start).total_seconds() // 300) + 1
            )
        }
        total = int((labels.end - start).total_seconds() // 300)
        counts = [buckets[brand][k] for k in range(first, total) if k not in busy]
        assert np.median(counts) / 5 == pytest.approx(info.rate_per_minute, rel=0.3), brand


def test_gaps_in_the_series_stay_gaps(shared_data: Path, tmp_path: Path) -> None:
    series = load_series(shared_data, "Twitter_volume_AAPL")
    zero = np.flatnonzero(series.values == 0)
    runs = np.split(zero, np.flatnonzero(np.diff(zero) > 1) + 1)
    gap = max(runs, key=len)  # the 2-hour collection gap of 2015-03-11
    assert len(gap) >= 12
    start_row = int(gap[0]) - 100
    rates = minute_rates(series, start_row, 2 * 1440, 20.0)
    gaps = gap_minutes(series, start_row, 2 * 1440)
    inside = slice((int(gap[0]) - start_row) * 5, (int(gap[-1]) + 1 - start_row) * 5)
    assert rates[inside].sum() == 0 and gaps[inside].all()
    assert np.random.default_rng(1).poisson(rates)[inside].sum() == 0
    assert rates[: inside.start].min() >= 0 and np.median(rates[~gaps]) == pytest.approx(20.0, rel=0.1)
    # a missing timestamp is a gap too, and bursts are kept as they are (not smoothed)
    folder = tmp_path / "nab-tweets"
    folder.mkdir()
    t0 = datetime(2015, 3, 1, tzinfo=UTC)
    rows = ["timestamp,value"]
    for i in range(300):
        if i in (100, 101, 102):
            continue
        value = 500 if i == 200 else 10
        rows.append(f"{(t0 + timedelta(minutes=5 * i)):%Y-%m-%d %H:%M:%S},{value}")
    (folder / "X.csv").write_text("\n".join(rows) + "\n")
    synthetic = load_series(tmp_path, "X")
    assert np.isnan(synthetic.values[100:103]).all()
    rates = minute_rates(synthetic, 0, 300 * 5, 2.0)
    assert rates[500:515].sum() == 0 and gap_minutes(synthetic, 0, 1500)[500:515].all()
    assert rates[1000] == pytest.approx(100.0) and rates[0] == pytest.approx(2.0)


def test_nab_gaps_in_a_corpus_have_no_mentions(shared_data: Path, tmp_path: Path) -> None:
    plan = plan_corpus("tune", 14, 8, SPLITS["tune"].seed, shared_data)
    for b in plan.brands:
        rates = plan.rates[b.index][b.first_minute :]
        gaps = gap_minutes(plan.series[b.series], b.start_row, rates.size)
        assert (rates[gaps] == 0).all()

"""Near-duplicate story keys: retweets, syndicated copies and edit campaigns fold; different texts don't."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from crisiswatch.detectors.neardup import story_body, story_key, story_tokens
from crisiswatch.detectors.window import DistinctCounter

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = "Acme recalls two million strollers after reports of broken brakes and injured toddlers"
OUTLETS = [
    "Reuters", "AP News", "BBC News", "The Guardian", "CNN", "Bloomberg", "Le Monde", "El País",
    "Der Spiegel", "Times of India", "Al Jazeera", "Yahoo Finance",
]

_VOCABULARY = (
    "acme customer service phone battery refund store order delivery late broken screen support agent waited "
    "hours nobody answered email again never bought worst product company update app crashed login password "
    "account locked charged twice money back manager promised call tomorrow weekend friend recommended price "
    "quality shipping box damaged replacement warranty expired policy"
).split()


def _sentence(rng: random.Random, words: int = 14) -> str:
    return " ".join(rng.choice(_VOCABULARY) for _ in range(words))


def test_retweets_fold_into_the_original() -> None:
    original = "Acme's new update bricked my phone and support just hung up on me"
    key = story_key(original)
    assert story_key(f"RT @angry_user: {original}") == key
    assert story_key(f"RT @a: RT @b: {original}") == key
    assert story_key(f"rt @a {original}") == key
    assert story_key(f"via @someone: {original}") == key
    assert story_key(original.upper() + "!!! 😡😡") == key


def test_truncated_retweet_folds_into_the_original() -> None:
    original = "Acme's new update bricked my phone and support just hung up on me, unbelievable"
    truncated = "RT @angry_user: Acme's new update bricked my phone and support just hung up on m… https://t.co/xyz"
    assert story_key(truncated) == story_key(original)


def test_syndicated_copies_of_one_article_are_one_story() -> None:
    keys = set()
    for i, outlet in enumerate(OUTLETS):
        separator = [" - ", " | ", " — ", " · "][i % 4]
        copy = f"{HEADLINE}{separator}{outlet} https://news.example/{outlet.replace(' ', '-').lower()}/{i}"
        if i % 3 == 0:
            copy = f"@{outlet.replace(' ', '')} {copy} #Acme #recall"
        keys.add(story_key(copy))
    assert keys == {story_key(HEADLINE)}


def test_story_body_strips_noise_but_keeps_content() -> None:
    assert story_body(f"RT @x: {HEADLINE} - Reuters") == HEADLINE
    assert story_body(f"{HEADLINE} via @cnn https://t.co/abc #breaking") == HEADLINE
    short = "Acme down - again"  # a dash in a short text is content, not an outlet credit
    assert story_body(short) == short
    assert story_tokens("@acme #Boycott now, 100% done") == ["boycott", "now", "done"]


def test_word_edits_often_fold_and_unrelated_texts_do_not() -> None:
    rng = random.Random(7)
    templates = [_sentence(rng) for _ in range(300)]
    same = 0
    for template in templates:
        words = template.split()
        edit = rng.choice(["substitute", "insert", "delete"])
        i = rng.randrange(len(words))
        if edit == "substitute":
            words[i] = "honestly"
        elif edit == "insert":
            words.insert(i, "really")
        else:
            del words[i]
        same += story_key(" ".join(words)) == story_key(template)
    # bottom-2 MinHash: P(same key) ~ Jaccard(trigrams)^2, about 0.5 for one edited word in 14
    assert same / len(templates) >= 0.35
    # different texts (even from the same small vocabulary, all about one brand) get different keys
    keys = [story_key(t) for t in templates]
    assert len(set(keys)) >= 0.97 * len(templates)


def test_noise_edits_always_fold() -> None:
    rng = random.Random(8)
    for _ in range(100):
        template = _sentence(rng)
        for variant in (f"@acme {template}", f"{template} #fail", f"{template} 😡 https://t.co/x", template.title()):
            assert story_key(variant) == story_key(template)


def test_distinct_posts_sharing_a_phrase_stay_distinct() -> None:
    """The failure mode of a single MinHash: one low-hashing shared phrase folds a whole crisis."""
    for seed in range(5):
        rng = random.Random(seed)
        posts = []
        for _ in range(300):
            words = _sentence(rng, rng.randrange(6, 20)).split()
            i = rng.randrange(len(words) + 1)
            posts.append(" ".join([*words[:i], *"acme data breach is a disgrace".split(), *words[i:]]))
        assert len({story_key(p) for p in posts}) >= 0.95 * len(posts)


def test_copy_paste_campaign_counts_as_few_stories() -> None:
    rng = random.Random(3)
    base = "I am done with Acme, they leaked my personal data and lied about it for months. Never again"
    copies = []
    for _ in range(200):
        words = base.split()
        words[rng.randrange(len(words))] = rng.choice(["seriously", "honestly", "literally"])
        copies.append(" ".join(words) + rng.choice(["", " #boycott", " @acme", " 😡"]))
    stories = DistinctCounter()
    for copy in copies:
        stories.add(story_key(copy))
    assert stories.count() <= 40  # 200 copies: a few stories, not 200


def test_keys_are_uniform_64_bit_integers() -> None:
    rng = random.Random(11)
    keys = [story_key(_sentence(rng, rng.randrange(1, 30))) for _ in range(3000)]
    assert all(0 <= k < 2**64 for k in keys)
    mean = sum(k / 2**64 for k in set(keys)) / len(set(keys))
    assert 0.45 < mean < 0.55  # a min-hash alone would sit near 0 and break the KMV estimate
    counter = DistinctCounter(k=256)
    for k in keys:
        counter.add(k)
    assert abs(counter.count() - len(set(keys))) / len(set(keys)) < 0.2


def test_short_empty_and_garbage_texts() -> None:
    assert story_key("") == story_key("   ")
    assert story_key("😡😡") != story_key("😍")
    assert story_key("Acme sucks") == story_key("acme SUCKS!!")
    assert story_key("Acme sucks") != story_key("Acme rocks")
    assert story_key("\x00\ud800 garbage \x07") >= 0
    assert story_key("x " * 50_000) >= 0
    assert story_key("ﻓﻀﻴﺤﺔ كبرى في شركة أكمي اليوم") == story_key("فضيحة كبرى في شركة أكمي اليوم")


def test_keys_are_stable_across_processes() -> None:
    texts = [HEADLINE, "RT @x: " + HEADLINE, "एक्मे में डेटा लीक और धोखाधड़ी का मामला", "short one"]
    script = "import sys; from detectors.neardup import story_key; print([story_key(t) for t in sys.argv[1:]])"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", script, *texts], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    assert out.stdout.strip() == str([story_key(t) for t in texts])

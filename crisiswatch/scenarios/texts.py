"""Real tweets (UMSAB) as the text of the corpus: pools per language and label, and light variation.

A split draws only from its own UMSAB files (``train_*`` for tune, ``val_*`` for check); a tweet that
occurs in both files is left out of both, so no text is shared between the splits. Each mention names
its brand (an ``@user`` becomes the brand's handle, or the name or ``#name`` is put at a word boundary)
and is varied lightly (emoji, a hashtag, casing), so a tweet used again is not an exact copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from crisiswatch.contracts.vocabulary import SENTIMENTS
from crisiswatch.scenarios.phrases import EMOJI, HASHTAGS, LANGS

FOLDERS = {
    "en": "english",
    "es": "spanish",
    "fr": "french",
    "de": "german",
    "it": "italian",
    "pt": "portuguese",
    "ar": "arabic",
    "hi": "hindi",
}
LABELS = SENTIMENTS
MAX_CHARS = 260
_USER = re.compile(r"@user\b", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def _read(data: Path, lang: str, part: str) -> tuple[list[str], list[int]]:
    folder = data / "sentiment-umsab" / FOLDERS[lang]
    texts = (folder / f"{part}_text.txt").read_text(encoding="utf-8").split("\n")
    labels = [int(x) for x in (folder / f"{part}_labels.txt").read_text().split()]
    return texts[: len(labels)], labels


def _clean(text: str) -> str:
    text = _SPACE.sub(" ", text).strip()
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return text


@dataclass(frozen=True)
class TextPools:
    """``pools[lang][label]``: the tweets of one split, label 0 negative, 1 neutral, 2 positive."""

    part: str
    pools: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]
    files: tuple[str, ...]

    def all_texts(self) -> set[str]:
        return {t for by_label in self.pools.values() for pool in by_label for t in pool}


def load_pools(data: Path, part: str) -> TextPools:
    """The UMSAB tweets of ``part`` (``train`` or ``val``), minus any that also occur in the other part."""
    other = "val" if part == "train" else "train"
    pools = {}
    files = []
    for lang in LANGS:
        texts, labels = _read(data, lang, part)
        others = {_norm(t) for t in _read(data, lang, other)[0]}
        by_label: list[list[str]] = [[], [], []]
        seen: set[str] = set()
        for text, label in zip(texts, labels, strict=True):
            key = _norm(text)
            if not key or key in others or key in seen or label not in (0, 1, 2):
                continue
            seen.add(key)
            by_label[label].append(_clean(text))
        pools[lang] = (tuple(by_label[0]), tuple(by_label[1]), tuple(by_label[2]))
        files += [
            f"sentiment-umsab/{FOLDERS[lang]}/{part}_text.txt",
            f"sentiment-umsab/{FOLDERS[lang]}/{part}_labels.txt",
        ]
    return TextPools(part, pools, tuple(files))


def name_brand(text: str, name: str, handle: str, u: float, v: float) -> str:
    """``text`` naming the brand, placed by the uniforms ``u`` (how) and ``v`` (where)."""
    if u < 0.45 and "@" in text and _USER.search(text):
        return _USER.sub(handle, text, count=1)
    shown = name.lower() if v < 0.2 else name.upper() if v > 0.98 else name
    if u < 0.55:
        return f"{shown} {text}"
    if u < 0.62:
        return f"#{shown} {text}"
    if u < 0.85:  # inside, at a word boundary
        words = text.split(" ")
        if len(words) > 2:
            at = 1 + int(v * 997) % (len(words) - 1)
            return " ".join([*words[:at], shown, *words[at:]])
        return f"{text} {shown}"
    if u < 0.93:
        return f"{text} #{shown}"
    return f"{text} {handle}"


def vary(text: str, u: float, v: float) -> str:
    """Light variation: an emoji, a hashtag, lower case, or nothing."""
    if u < 0.18:
        return f"{text} {EMOJI[int(v * 1e6) % len(EMOJI)]}"
    if u < 0.27:
        return f"{text} {HASHTAGS[int(v * 1e6) % len(HASHTAGS)]}"
    if u < 0.32:
        return text.lower()
    if u < 0.35:
        return f"{EMOJI[int(v * 1e6) % len(EMOJI)]} {text}"
    return text


def join(phrase: str, tweet: str, u: float) -> str:
    """A phrase and a real tweet as one post (the phrase first or last)."""
    if u < 0.6:
        return f"{phrase} {tweet}"
    return f"{tweet} {phrase}"

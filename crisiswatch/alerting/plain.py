"""One plain-language sentence a PR person reads in ten seconds, from a window's evidence.

"Mentions of Globex are 8 times the usual, two thirds negative, in 8 languages, about a data breach."

The evidence is the risk stage's (`detectors.evidence.Evidence`, also an alert's ``evidence``): a fact it
does not carry (``None``) simply drops its clause. The page, e-mail, Slack and the webhook all use
`plain_headline`, so everybody reads the same words. No p-values, no formulas, no term ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crisiswatch.detectors.evidence import Evidence
from crisiswatch.detectors.lexicon import concept_weight

TOPICS: dict[str, str] = {
    "data_leak": "a data breach",
    "breach": "a data breach",
    "hack": "a hack",
    "privacy": "a privacy violation",
    "leak": "a leak",
    "outage": "an outage",
    "recall": "a product recall",
    "lawsuit": "a lawsuit",
    "boycott": "a boycott",
    "scam": "a scam",
    "fraud": "fraud",
    "racism": "racism",
    "discrimination": "discrimination",
    "harassment": "harassment",
    "strike": "a strike",
    "bankruptcy": "bankruptcy",
    "contamination": "contamination",
    "injury": "injuries",
    "death": "deaths",
    "explosion": "an explosion",
    "fire": "a fire",
    "layoffs": "layoffs",
    "scandal": "a scandal",
    "ban": "a ban",
    "penalty": "a fine",
    "investigation": "an investigation",
    "protest": "a protest",
    "corruption": "corruption",
    "accident": "an accident",
    "defect": "a product defect",
    "abuse": "abuse",
    "outrage": "a backlash",
    "deception": "misleading claims",
    "arrest": "an arrest",
    "resignation": "a resignation",
}
"""Crisis concept id (`detectors.lexicon.CONCEPTS`) -> what people would call it in a sentence."""

FAMILIES = {"data_leak": "cyber", "breach": "cyber", "hack": "cyber", "privacy": "cyber", "leak": "cyber",
            "injury": "harm", "death": "harm", "accident": "harm", "explosion": "harm", "fire": "harm",
            "scam": "fraud", "fraud": "fraud", "deception": "fraud", "corruption": "fraud"}  # fmt: skip
"""Concepts that name one story: only the first of a family is said ("a data breach", not "… and a hack")."""

GENERIC_TOPICS = {"scandal", "outrage", "boycott", "lawsuit", "investigation", "protest"}
"""Reactions rather than causes: named after a cause ("about a data breach and a boycott")."""

LANGUAGE_NAMES = {
    "en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian", "pt": "Portuguese",
    "ar": "Arabic", "hi": "Hindi", "nl": "Dutch", "ja": "Japanese", "zh": "Chinese", "ru": "Russian",
    "tr": "Turkish", "pl": "Polish", "sv": "Swedish", "ko": "Korean",
}  # fmt: skip

MIN_MENTIONS_FOR_SHARE = 8
"""Below this many mentions in the window, a share ("two thirds negative") says more about chance than mood."""

_NUMBER_WORDS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def display_name(brand: str) -> str:
    """A brand id as a name when there is no better one: ``globex`` -> ``Globex``."""
    return brand[:1].upper() + brand[1:] if brand.islower() else brand


def times_usual(ratio: float) -> str:
    """``8.2`` -> ``8 times the usual``; ``1.5`` -> ``50% above the usual``; below 1.15: ``about the usual``."""
    if ratio >= 1.95:
        return f"{round(ratio):,} times the usual"
    if ratio >= 1.15:
        return f"{round((ratio - 1) * 100):d}% above the usual"
    if ratio <= 0.6:
        return "below the usual"
    return "about the usual"


def share_words(share: float) -> str:
    """A fraction as people say it: 0.66 -> ``two thirds``, 0.5 -> ``half``, 0.1 -> ``one in ten``."""
    if share >= 0.93:
        return "nearly all"
    for at_least, words in ((0.8, "four in five"), (0.7, "three quarters"), (0.6, "two thirds"),
                            (0.54, "more than half"), (0.45, "half"), (0.37, "two in five"), (0.29, "a third"),
                            (0.22, "a quarter")):  # fmt: skip
        if share >= at_least:
            return words
    if share <= 0.005:
        return "none"
    n = max(2, round(1 / share))
    return f"one in {_NUMBER_WORDS[n] if n <= 10 else n}"


def topic_phrase(crisis_terms: Mapping[str, Any] | list[str] | None, limit: int = 2) -> str | None:
    """The main crisis topics in words (``a data breach and a boycott``), or None without any."""
    if not crisis_terms:
        return None
    if isinstance(crisis_terms, Mapping):
        counts = {str(k): float(v) for k, v in crisis_terms.items() if _num(v)}
    else:
        counts = {str(t): 1.0 for t in crisis_terms}
    ranked = sorted(counts, key=lambda t: (t in GENERIC_TOPICS, -counts[t], t))
    phrases: list[str] = []
    families: set[str] = set()
    top = counts[ranked[0]] if ranked else 0.0
    for term in ranked:
        family = FAMILIES.get(term, term)
        # a family is named after its gravest member present ("a data breach" rather than "a hack")
        gravest = max((t for t in counts if FAMILIES.get(t, t) == family), key=lambda t: (concept_weight(t), t))
        phrase = TOPICS.get(gravest, gravest.replace("_", " "))
        if phrases and counts[term] < top / 2:
            continue  # a side note, not what the story is about
        if phrase not in phrases and family not in families:
            phrases.append(phrase)
            families.add(family)
        if len(phrases) == limit:
            break
    return " and ".join(phrases) if phrases else None


def languages_phrase(languages: Mapping[str, Any] | None) -> str | None:
    """``in 8 languages``, ``in English and Spanish``, ``in German`` (unknown languages not counted)."""
    if not languages:
        return None
    names = [k for k, v in sorted(languages.items(), key=lambda kv: -float(kv[1] or 0)) if _num(v) and k != "und"]
    if not names:
        return None
    if len(names) <= 2 and all(n in LANGUAGE_NAMES for n in names):
        return "in " + " and ".join(LANGUAGE_NAMES[n] for n in names)
    return f"in {len(names)} languages"


def plain_headline(brand: str, evidence: Evidence | None, name: str | None = None) -> str:
    """The sentence for one window's evidence, e.g. for the latest window of a firing alert."""
    ev = evidence if evidence is not None else Evidence()
    who = name or display_name(brand)
    ratio, mentions = ev.ratio, ev.mentions
    if mentions == 0:
        return f"No mentions of {who} in this window"
    clauses = [f"Mentions of {who} are {times_usual(ratio)}" if ratio is not None else f"Mentions of {who}"]
    if mentions is not None and ratio is None:
        clauses[0] = f"{int(mentions):,} mentions of {who}"
    share, positive = ev.share, ev.positive
    if share is not None and mentions and mentions >= MIN_MENTIONS_FOR_SHARE:
        usual = ev.expected_negative_share
        if positive is not None and positive / mentions >= 0.5 and share < 0.2:
            clauses.append(f"{share_words(positive / mentions)} positive")
        elif usual is not None and share <= usual * 1.2 and share < 0.3:
            clauses.append("no more negative than usual")
        else:
            clauses.append(f"{share_words(share)} negative")
    langs = languages_phrase(ev.languages)
    if langs:
        clauses.append(langs)
    topic = topic_phrase(ev.crisis_terms)
    text = ", ".join(clauses)
    if topic:
        text += f", about {topic}"
    return text


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)

"""Brand and topic matching: which brands (and topics) does a text talk about?

Matching is case-insensitive, whole-word and Unicode-aware, and works for hashtags and @handles:
the term ``acme`` matches "Acme", "ACME!" and "#acme" but not "acmeville"; ``#acme`` matches only
the hashtag; ``@acme`` only the handle. A brand's ``exclude`` phrases veto matches inside them
("acme tools" is another company). A text is tokenised once and terms are found by dictionary
look-up, so matching costs the same whatever the number of brands.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class BrandsFileError(ValueError):
    """The brands configuration is malformed."""


@dataclass(frozen=True)
class TermSet:
    """A brand or topic: an id, the terms that name it, and phrases that veto a match."""

    id: str
    terms: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    name: str | None = None


@dataclass(frozen=True)
class BrandsConfig:
    """The parsed brands file."""

    brands: tuple[TermSet, ...]
    topics: tuple[TermSet, ...] = field(default_factory=tuple)
    policies: Mapping[str, Any] = field(default_factory=dict)
    """Brand id -> its `detectors.risk.BrandPolicy`, for brands whose entry has a ``policy`` mapping."""


def _term_sets(items: Any, kind: str) -> tuple[TermSet, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise BrandsFileError(f"'{kind}' must be a list")
    seen: set[str] = set()
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) or not item["id"].strip():
            raise BrandsFileError(f"{kind}[{i}] needs a non-empty string 'id'")
        ident = item["id"].strip()
        if ident in seen:
            raise BrandsFileError(f"{kind}[{i}]: duplicate id {ident!r}")
        seen.add(ident)
        terms = item.get("terms") or [ident]
        exclude = item.get("exclude") or []
        for name, values in (("terms", terms), ("exclude", exclude)):
            if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
                raise BrandsFileError(f"{kind}[{i}] ({ident}): '{name}' must be a list of non-empty strings")
        terms_t = tuple(t.strip() for t in terms)
        out.append(TermSet(ident, terms_t, tuple(e.strip() for e in exclude), item.get("name")))
    return tuple(out)


def parse_brands(data: Any) -> BrandsConfig:
    """Validate a loaded brands document: ``{brands: [{id, terms, exclude, policy}], topics: [...]}``."""
    if not isinstance(data, Mapping) or "brands" not in data:
        raise BrandsFileError("a brands file is a mapping with a 'brands' list")
    brands = _term_sets(data["brands"], "brands")
    if not brands:
        raise BrandsFileError("the brands list is empty")
    return BrandsConfig(
        brands=brands, topics=_term_sets(data.get("topics"), "topics"), policies=_policies(data["brands"])
    )


def _policies(items: list[Any]) -> dict[str, Any]:
    """The ``policy`` mapping of each brand entry that has one, validated (`detectors.risk.BrandPolicy`)."""
    from crisiswatch.detectors.risk import BrandPolicy  # the matching alone needs none of the risk code

    policies = {}
    for item in items:
        if item.get("policy") is None:
            continue
        ident = item["id"].strip()
        try:
            policies[ident] = BrandPolicy.parse(item["policy"], ident)
        except ValueError as exc:
            raise BrandsFileError(str(exc)) from None
    return policies


_TOKEN = re.compile(r"[#@]?\w+")
_BARE = re.compile(r"\w+")  # the same words as _TOKEN, without the # or @ (the two lists align)


def _words(phrase: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(phrase.casefold()))


class TermMatcher:
    """Finds which term sets a text mentions, honouring each set's exclusions.

    The text is split once into word tokens (``\\w+``, optionally prefixed by ``#`` or ``@``); terms
    are looked up by their first word, so the cost does not grow with the number of terms.
    """

    def __init__(self, sets: Sequence[TermSet]):
        # first bare word -> [(words of the term, required prefix or "", set id)]
        self._by_first: dict[str, list[tuple[tuple[str, ...], str, str]]] = {}
        self._exclude: dict[str, list[tuple[str, ...]]] = {}
        for ts in sets:
            for term in ts.terms:
                words = _words(term)
                if not words:
                    raise BrandsFileError(f"{ts.id}: term {term!r} has no word characters")
                prefix = words[0][0] if words[0][0] in "#@" else ""
                bare = (words[0].lstrip("#@"), *words[1:])
                self._by_first.setdefault(bare[0], []).append((bare, prefix, ts.id))
            self._exclude[ts.id] = [w for w in (_words(p) for p in ts.exclude) if w]
        self._first_words = frozenset(self._by_first)

    @staticmethod
    def _spans(tokens: list[str], bare: list[str], words: tuple[str, ...]) -> list[tuple[int, int]]:
        n = len(words)
        return [(i, i + n) for i in range(len(tokens) - n + 1) if tuple(bare[i : i + n]) == words]

    def match(self, text: str) -> list[str]:
        """Ids of the sets that ``text`` mentions, in first-mention order."""
        return self.match_tokens(*tokenise(text))

    def match_tokens(self, tokens: list[str], bare: list[str]) -> list[str]:
        """`match` on a text already split by `tokenise` (so several matchers can share one split)."""
        if self._first_words.isdisjoint(bare):  # the usual case for most term sets: one set operation
            return []
        found: list[str] = []
        for i, word in enumerate(bare):
            candidates = self._by_first.get(word)
            if not candidates:
                continue
            for words, prefix, ident in candidates:
                if ident in found or (prefix and not tokens[i].startswith(prefix)):
                    continue
                n = len(words)
                if n > 1 and tuple(bare[i : i + n]) != words:
                    continue
                vetoes = [
                    span
                    for phrase in self._exclude.get(ident, ())
                    for span in self._spans(tokens, bare, tuple(w.lstrip("#@") for w in phrase))
                ]
                if any(s <= i and i + n <= e for s, e in vetoes):
                    continue
                found.append(ident)
        return found

    def match_batch(self, texts: Iterable[str]) -> list[list[str]]:
        return [self.match_tokens(*tokenise(t)) for t in texts]


def tokenise(text: str) -> tuple[list[str], list[str]]:
    """The word tokens of a text as matching sees them (case-folded, ``#``/``@`` kept) and without ``#``/``@``."""
    folded = text.casefold()
    return _TOKEN.findall(folded), _BARE.findall(folded)


class BrandMatcher:
    """Matches texts to brands and topics of a `BrandsConfig`."""

    def __init__(self, config: BrandsConfig):
        self.config = config
        self.brands = TermMatcher(config.brands)
        self.topics = TermMatcher(config.topics)

    def match_batch(self, texts: Sequence[str]) -> tuple[list[list[str]], list[list[str]]]:
        """(brands per text, topics per text); each text is split into words once for both."""
        brands, topics = [], []
        for text in texts:
            tokens, bare = tokenise(text)
            brands.append(self.brands.match_tokens(tokens, bare))
            topics.append(self.topics.match_tokens(tokens, bare))
        return brands, topics

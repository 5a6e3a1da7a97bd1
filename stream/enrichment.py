"""Enrichment of a batch of mentions: language, sentiment, brands, topics and crisis terms.

`Enricher` only composes the detectors, batch by batch, so every detector call is vectorised over
the batch; it does no I/O beyond loading the brands file once. `Enrichment.to_json` writes the
``mentions.enriched`` record (the `EnrichedMention` contract) straight from the mention's fields and
the enrichment, without building a model per record (measured: 5 µs instead of 13 µs a record).

Owned media: a mention whose ``owner`` is a known brand (a comment under that brand's own video, post or
ad) is routed to its owner as well as to the brands its text names; an unknown owner is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from crisiswatch.contracts.records import EnrichedMention, Mention
from crisiswatch.contracts.vocabulary import SENTIMENTS, utcnow
from crisiswatch.detectors import language, lexicon, sentiment
from crisiswatch.detectors.brands import BrandMatcher, BrandsConfig
from crisiswatch.detectors.neardup import story_key

LABELS = SENTIMENTS
_MENTION_FIELDS = tuple(name for name in Mention.model_fields if name != "lang")
_JSON = TypeAdapter(dict[str, Any])


@dataclass(slots=True)
class Enrichment:
    """What enrichment adds to one mention (see `EnrichedMention` for the record it becomes)."""

    mention: Mention
    lang: str
    sentiment: str
    scores: dict[str, float]
    brands: list[str]
    topics: list[str]
    crisis_terms: list[str]
    reach_estimate: int
    story: int
    enriched_at: datetime

    @property
    def id(self) -> str:
        return self.mention.id

    def to_json(self, brand: str | None) -> bytes:
        """The ``mentions.enriched`` record routed for ``brand`` (one of `brands`, or None when unmatched)."""
        record = {name: getattr(self.mention, name) for name in _MENTION_FIELDS}
        record.update(
            lang=self.lang,
            sentiment=self.sentiment,
            scores=self.scores,
            brand=brand,
            brands=self.brands,
            topics=self.topics,
            crisis_terms=self.crisis_terms,
            reach_estimate=self.reach_estimate,
            story=self.story,
            enriched_at=self.enriched_at,
        )
        return _JSON.dump_json(record)

    def to_model(self, brand: str | None) -> EnrichedMention:
        """The same record as a validated model."""
        return EnrichedMention.model_validate_json(self.to_json(brand))


class Enricher:
    """Turns validated mentions into enriched mentions, a whole batch at a time."""

    def __init__(self, brands: BrandsConfig, language_backend: str = "fast"):
        self.matcher = BrandMatcher(brands)
        self.brand_ids = frozenset(brand.id for brand in brands.brands)
        self.detector = language.LanguageDetector(backend=language_backend)
        self.model = sentiment.load_default()

    def enrich(self, mentions: Sequence[Mention]) -> list[Enrichment]:
        texts = [m.text for m in mentions]
        unknown = [i for i, m in enumerate(mentions) if not m.lang]
        langs = [m.lang or "" for m in mentions]
        for i, code in zip(unknown, self.detector.detect_batch([texts[i] for i in unknown]), strict=True):
            langs[i] = code
        probs = self.model.predict_proba(texts).tolist() if texts else []
        brands, topics = self.matcher.match_batch(texts)
        for i, m in enumerate(mentions):  # owned media go to their (known) owner even when the text names no brand
            if m.owner in self.brand_ids and m.owner not in brands[i]:
                brands[i] = [m.owner, *brands[i]]
        terms = lexicon.find_crisis_terms_batch(texts)
        now = utcnow()
        return [
            Enrichment(
                mention=m,
                lang=lang,
                sentiment=LABELS[p.index(max(p))],
                scores={"negative": p[0], "neutral": p[1], "positive": p[2]},
                brands=b,
                topics=t,
                crisis_terms=crisis,
                reach_estimate=m.reach(),
                story=story_key(m.text),
                enriched_at=now,
            )
            for m, lang, p, b, t, crisis in zip(mentions, langs, probs, brands, topics, terms, strict=True)
        ]

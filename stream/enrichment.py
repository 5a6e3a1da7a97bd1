"""Enrichment of a batch of mentions: language, sentiment, brands, topics and crisis terms.

`Enricher` only composes the detectors, batch by batch, so every detector call is vectorised over
the batch; it does no I/O beyond loading the brands file once.
"""

from __future__ import annotations

from collections.abc import Sequence

from detectors import language, lexicon, sentiment
from detectors.brands import BrandMatcher, BrandsConfig
from stream.records import EnrichedMention, Mention, SentimentScores, utcnow

LABELS = ("negative", "neutral", "positive")
_MENTION_FIELDS = tuple(name for name in Mention.model_fields if name != "lang")


class Enricher:
    """Turns validated mentions into enriched mentions, a whole batch at a time."""

    def __init__(self, brands: BrandsConfig, language_backend: str = "fast"):
        self.matcher = BrandMatcher(brands)
        self.detector = language.LanguageDetector(backend=language_backend)
        self.model = sentiment.load_default()

    def enrich(self, mentions: Sequence[Mention]) -> list[EnrichedMention]:
        texts = [m.text for m in mentions]
        unknown = [i for i, m in enumerate(mentions) if not m.lang]
        langs = [m.lang or "" for m in mentions]
        for i, code in zip(unknown, self.detector.detect_batch([texts[i] for i in unknown]), strict=True):
            langs[i] = code
        probs = self.model.predict_proba(texts) if texts else []
        brands, topics = self.matcher.match_batch(texts)
        terms = lexicon.find_crisis_terms_batch(texts)
        now = utcnow()
        out = []
        for m, lang, p, b, t, crisis in zip(mentions, langs, probs, brands, topics, terms, strict=True):
            scores = SentimentScores.model_construct(negative=float(p[0]), neutral=float(p[1]), positive=float(p[2]))
            out.append(
                EnrichedMention.model_construct(
                    **{name: getattr(m, name) for name in _MENTION_FIELDS},
                    lang=lang,
                    sentiment=LABELS[int(p.argmax())],
                    scores=scores,
                    brand=b[0] if b else None,
                    brands=b,
                    topics=t,
                    crisis_terms=crisis,
                    reach_estimate=m.reach(),
                    enriched_at=now,
                )
            )
        return out

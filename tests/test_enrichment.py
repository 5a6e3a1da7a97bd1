"""The enriched record written by the enrich stage honours the `EnrichedMention` contract."""

from __future__ import annotations

import json

from crisiswatch.contracts.records import EnrichedMention, Mention
from crisiswatch.detectors.brands import parse_brands
from crisiswatch.stream.enrichment import Enricher

BRANDS = parse_brands({
    "brands": [{"id": "acme", "terms": ["acme"]}, {"id": "globex", "terms": ["globex"]}],
    "topics": [{"id": "security", "terms": ["breach"]}],
})


def mention(i: int, text: str, **extra: object) -> Mention:
    return Mention.model_validate({
        "id": f"t:{i}", "source": "twitter", "text": text, "created_at": "2026-03-02T12:04:05+01:00", **extra,
    })


def test_enriched_records_validate_and_route_per_brand() -> None:
    mentions = [
        mention(1, "Acme and Globex hit by a data breach, boycott them", author={"followers": 1200}),
        mention(2, "nothing to see here", lang="en", metrics={"reach": 99}),
    ]
    both, none = Enricher(BRANDS).enrich(mentions)
    assert (both.brands, both.topics, both.id) == (["acme", "globex"], ["security"], "t:1")
    assert both.lang == "en" and both.sentiment in ("negative", "neutral", "positive") and both.crisis_terms
    for brand in both.brands:
        raw = both.to_json(brand)
        record = EnrichedMention.model_validate_json(raw)
        assert record.brand == brand and record.brands == ["acme", "globex"]
        assert json.loads(raw)["created_at"] == "2026-03-02T11:04:05Z"  # UTC on the wire
        assert record.author is not None and record.author.followers == 1200 and record.reach_estimate == 1200
        assert abs(sum(record.scores.model_dump().values()) - 1) < 1e-9
    unmatched = none.to_model(None)
    assert (unmatched.brand, unmatched.brands, unmatched.lang, unmatched.reach_estimate) == (None, [], "en", 99)
    assert json.loads(none.to_json(None))["enriched_at"].endswith("Z")

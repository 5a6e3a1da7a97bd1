"""Brand and topic matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from crisiswatch.brands_file import load_brands
from crisiswatch.detectors.brands import BrandMatcher, BrandsFileError, parse_brands

CONFIG = {
    "brands": [
        {"id": "acme", "terms": ["acme", "#acme", "@acme"], "exclude": ["acme tools"]},
        {"id": "globex", "terms": ["Globex Corp", "globex"]},
        {"id": "tagonly", "terms": ["#launchday"]},
        {"id": "muenchen", "terms": ["Müller Bräu"]},
    ],
    "topics": [{"id": "outage", "terms": ["outage", "down"]}],
}


@pytest.fixture
def matcher() -> BrandMatcher:
    return BrandMatcher(parse_brands(CONFIG))


@pytest.mark.parametrize(
    ("text", "brands"),
    [
        ("I love ACME!", ["acme"]),
        ("acmeville is a town", []),
        ("#acme rocks", ["acme"]),
        ("@Acme please help", ["acme"]),
        ("bought acme tools yesterday", []),
        ("acme tools are fine but acme soap is not", ["acme"]),
        ("GLOBEX corp and acme", ["globex", "acme"]),
        ("it's #LaunchDay", ["tagonly"]),
        ("launchday without the hashtag", []),
        ("Prost! MÜLLER BRÄU ist super", ["muenchen"]),
        ("", []),
    ],
)
def test_whole_word_case_insensitive_unicode(matcher: BrandMatcher, text: str, brands: list[str]) -> None:
    assert matcher.match_batch([text])[0][0] == brands


def test_topics_are_matched_alongside_brands(matcher: BrandMatcher) -> None:
    brands, topics = matcher.match_batch(["globex is down again", "nothing here"])
    assert brands == [["globex"], []]
    assert topics == [["outage"], []]


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"brands": []},
        {"brands": [{"terms": ["x"]}]},
        {"brands": [{"id": "a", "terms": "acme"}]},
        {"brands": [{"id": "a"}, {"id": "a"}]},
        {"brands": [{"id": "a", "terms": ["!!!"]}]},
    ],
)
def test_malformed_config_is_a_clear_error(bad: dict) -> None:
    with pytest.raises(BrandsFileError):
        BrandMatcher(parse_brands(bad))


def test_brands_file_loads_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "brands.yaml"
    path.write_text('brands: [{id: acme, terms: ["acme", "#acme"], exclude: ["acme tools"]}]\n')
    config = load_brands(path)
    assert config.brands[0].id == "acme" and config.brands[0].exclude == ("acme tools",)
    (tmp_path / "broken.yaml").write_text("brands: [unclosed")
    with pytest.raises(BrandsFileError, match="cannot read"):
        load_brands(tmp_path / "broken.yaml")

"""The JSON Schema files are in sync with the record models, and the models round-trip."""

from __future__ import annotations

import json

import jsonschema

from stream.records import Mention
from stream.schema_files import SCHEMA_DIR, registry, render


def test_schema_files_match_the_models() -> None:
    for name, model in registry().items():
        path = SCHEMA_DIR / name
        assert path.is_file(), f"{name} missing: run python -m stream.schema_files"
        assert path.read_text(encoding="utf-8") == render(name, model), f"{name} is stale"


def test_a_serialised_mention_validates_against_its_schema() -> None:
    mention = Mention(
        id="x:1", source="rss", text="hé", created_at="2026-03-02T10:00:00+01:00",
        author={"handle": "@a", "followers": 3}, metrics={"likes": 1},
    )
    document = json.loads(mention.model_dump_json())
    assert document["created_at"] == "2026-03-02T09:00:00Z"
    jsonschema.validate(document, json.loads((SCHEMA_DIR / "mention.v1.json").read_text()))
    assert Mention.model_validate_json(mention.model_dump_json()) == mention

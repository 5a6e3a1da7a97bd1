"""The JSON Schema files are in sync with the record models, and the models round-trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from crisiswatch.contracts.records import EventTimeBounds, Mention, Signal
from crisiswatch.contracts.schema_files import SCHEMA_DIR, registry, render
from crisiswatch.contracts.topics import ALL_TOPICS
from crisiswatch.contracts.vocabulary import INT64_MAX


def test_schema_files_match_the_models() -> None:
    for name, model in registry().items():
        path = SCHEMA_DIR / name
        assert path.is_file(), f"{name} missing: run python -m crisiswatch.contracts.schema_files"
        assert path.read_text(encoding="utf-8") == render(name, model), f"{name} is stale"
    on_disk = {path.name for path in SCHEMA_DIR.glob("*.json")}
    assert on_disk == set(registry()), "a schema file without a model, or the reverse"
    assert {spec.schema for spec in ALL_TOPICS if spec.schema} <= set(registry()), "a topic names an unknown schema"


def test_a_serialised_mention_validates_against_its_schema() -> None:
    mention = Mention(
        id="x:1", source="rss", text="hé", created_at="2026-03-02T10:00:00+01:00",
        author={"handle": "@a", "followers": 3}, metrics={"likes": 1},
    )
    document = json.loads(mention.model_dump_json())
    assert document["created_at"] == "2026-03-02T09:00:00Z"
    jsonschema.validate(document, json.loads((SCHEMA_DIR / "mention.v1.json").read_text()))
    assert Mention.model_validate_json(mention.model_dump_json()) == mention


# --- bounds: numbers and times that would overflow downstream are refused by the contract -----------------
def _mention(**fields: Any) -> dict[str, Any]:
    return {"id": "x:1", "source": "rss", "text": "hi", "created_at": "2026-03-02T10:00:00Z", **fields}


@pytest.mark.parametrize("field", ["likes", "shares", "replies", "reach"])
def test_counts_fit_int64(field: str) -> None:
    assert Mention.model_validate(_mention(metrics={field: INT64_MAX})).metrics is not None
    for bad in (INT64_MAX + 1, 10**400, -1):
        with pytest.raises(ValidationError):
            Mention.model_validate(_mention(metrics={field: bad}))
    with pytest.raises(ValidationError):
        Mention.model_validate_json(json.dumps(_mention(metrics={field: 10**400})))
    with pytest.raises(ValidationError):
        Mention.model_validate(_mention(author={"followers": INT64_MAX + 1}))
    schema = json.loads((SCHEMA_DIR / "mention.v1.json").read_text())["$defs"]["Metrics"]["properties"][field]
    assert schema["anyOf"][0] == {"maximum": INT64_MAX, "minimum": 0, "type": "integer"}


def test_reach_estimates_and_sums_saturate_at_int64() -> None:
    mention = Mention.model_validate(_mention(author={"followers": INT64_MAX}, metrics={"shares": INT64_MAX}))
    assert mention.reach() == INT64_MAX
    signal = {
        "brand": "acme", "window_start": "2026-03-02T10:00:00Z", "window_end": "2026-03-02T10:01:00Z",
        "mentions": 3, "stories": 3, "negative": 0, "neutral": 3, "positive": 0, "reach": 3 * INT64_MAX,
        "volume": {"observed": 3, "expected": 1, "score": 0, "p_value": 1, "spike": False},
        "negativity": {"observed": 0, "expected": 0, "score": 0, "p_value": 1, "spike": False},
    }  # fmt: skip
    assert Signal.model_validate(signal).reach == INT64_MAX
    assert Signal.model_validate_json(json.dumps({**signal, "reach": 10**400})).reach == INT64_MAX
    with pytest.raises(ValidationError):
        Signal.model_validate({**signal, "reach": -1})


@pytest.mark.parametrize(
    "created_at",
    [
        "0001-01-01T00:00:00+14:00",  # before datetime.min once in UTC: OverflowError before this fix
        "9999-12-31T23:59:59-14:00",  # after datetime.max once in UTC
        "1969-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
    ],
)
def test_timestamps_outside_the_absolute_range_are_validation_errors(created_at: str) -> None:
    with pytest.raises(ValidationError) as info:
        Mention.model_validate_json(json.dumps(_mention(created_at=created_at)))
    assert [e["loc"] for e in info.value.errors()] == [("created_at",)]
    with pytest.raises(ValidationError):
        Mention.model_validate(_mention(fetched_at=created_at))


def test_event_time_bounds_come_from_the_validation_context() -> None:
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    bounds = EventTimeBounds(now=now, max_age=timedelta(days=1), max_future=timedelta(minutes=5))
    ahead = _mention(created_at=(now + timedelta(minutes=6)).isoformat())
    old = _mention(created_at=(now - timedelta(days=2)).isoformat())
    assert Mention.model_validate(ahead) and Mention.model_validate(old)  # no context: the absolute range only
    for record, kind in ((ahead, "future_timestamp"), (old, "stale_timestamp")):
        with pytest.raises(ValidationError) as info:
            Mention.model_validate_json(json.dumps(record), context=bounds.context())
        assert [e["type"] for e in info.value.errors()] == [kind]


def test_nul_characters_are_refused_in_text_fields() -> None:
    for fields in ({"text": "a\u0000b"}, {"id": "x\u0000"}, {"author": {"handle": "@\u0000"}}, {"url": "\u0000"}):
        with pytest.raises(ValidationError):
            Mention.model_validate_json(json.dumps(_mention(**fields)))

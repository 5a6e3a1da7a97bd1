"""Connector building blocks without network or broker: mapping, timestamps, backoff, Retry-After, HTML, state."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from crisiswatch.connectors.base import Backoff, StateStore, retry_after_seconds
from crisiswatch.connectors.mapping import MISSING, FieldMapping, MappingError, get_path, parse_timestamp, qualified_id
from crisiswatch.connectors.poll import Pagination, expand_env
from crisiswatch.connectors.rss import entry_text, html_to_text
from crisiswatch.connectors.webhook import sign, split_body
from crisiswatch.detectors.seen import SeenIds

FETCHED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_dotted_paths_with_indexes_and_alternatives() -> None:
    item = {"user": {"name": "jo"}, "media": [{"url": "u0"}, {"url": "u1"}], "full_text": None, "text": "t"}
    assert get_path(item, "user.name") == "jo"
    assert get_path(item, "media.1.url") == "u1"
    assert get_path(item, "media.-1.url") == "u1"
    assert get_path(item, "media.5.url") is MISSING
    assert get_path(item, "full_text|text") == "t"  # null counts as absent
    assert get_path(item, "user.name.first") is MISSING


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-02T09:00:00+02:00", datetime(2026, 3, 2, 7, 0, tzinfo=UTC)),
        ("2026-03-02T07:00:00Z", datetime(2026, 3, 2, 7, 0, tzinfo=UTC)),
        ("2026-03-02T07:00:00", datetime(2026, 3, 2, 7, 0, tzinfo=UTC)),  # naive → UTC
        ("Mon, 02 Mar 2026 09:00:00 +0200", datetime(2026, 3, 2, 7, 0, tzinfo=UTC)),
        ("Mon, 02 Mar 2026 07:00:00", datetime(2026, 3, 2, 7, 0, tzinfo=UTC)),  # RFC 2822 without zone → UTC
        (1772434800, datetime(2026, 3, 2, 7, 0, tzinfo=UTC)),
        (1772434800000, datetime(2026, 3, 2, 7, 0, tzinfo=UTC)),  # milliseconds
        ("1772434800", datetime(2026, 3, 2, 7, 0, tzinfo=UTC)),
    ],
)
def test_timestamps_become_utc(value: object, expected: datetime) -> None:
    parsed = parse_timestamp(value)
    assert parsed == expected and parsed.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("value", ["tuesday", "", None, True, {"a": 1}])
def test_unreadable_timestamps_raise(value: object) -> None:
    with pytest.raises(MappingError):
        parse_timestamp(value)


def test_mapping_builds_a_source_qualified_mention() -> None:
    mapping = FieldMapping.from_dict(
        {
            "source": "forum",
            "fields": {
                "id": "post_id",
                "text": "body.text",
                "created_at": "ts",
                "url": "link",
                "author.handle": "user.name",
                "author.id": "user.id",
                "author.followers": "user.followers",
                "metrics.likes": "votes",
            },
        }
    )
    item = {
        "post_id": 42,
        "body": {"text": "Acme broke"},
        "ts": 1772434800,
        "link": "https://f.example/42",
        "user": {"name": "jo", "id": 7, "followers": 12},
        "votes": 3,
    }
    mention = mapping.to_mention(item, FETCHED)
    assert mention.id == "forum:42" and mention.source == "forum" and mention.text == "Acme broke"
    assert mention.created_at == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    assert mention.author.handle == "jo" and mention.author.id == "7" and mention.author.followers == 12
    assert mention.metrics.likes == 3 and mention.fetched_at == FETCHED
    assert json.loads(mention.model_dump_json())["created_at"] == "2026-03-02T07:00:00Z"


def test_mapping_errors_name_the_problem() -> None:
    mapping = FieldMapping(source="x")
    with pytest.raises(MappingError, match="created_at"):
        mapping.to_mention({"id": "1", "text": "t"}, FETCHED)
    with pytest.raises(MappingError, match="not an object"):
        mapping.to_mention(["id"], FETCHED)
    with pytest.raises(MappingError, match="followers"):
        mapping.to_mention(
            {"id": "1", "text": "t", "created_at": "2026-03-02T07:00:00Z", "author": {"followers": -3}}, FETCHED
        )
    with pytest.raises(ValueError, match="unknown mention fields"):
        FieldMapping(source="x", fields={"id": "a", "text": "b", "created_at": "c", "colour": "d"})
    with pytest.raises(ValueError, match="required"):
        FieldMapping(source="x", fields={"id": "a", "text": "b"})


def test_items_path_and_match_filter() -> None:
    mapping = FieldMapping.from_dict({"source": "s", "items": "data.posts", "match": {"kind": "post"}})
    assert mapping.items_of({"data": {"posts": [1, 2]}}) == [1, 2]
    assert mapping.items_of({"data": {"posts": {"a": 1}}}) == [{"a": 1}]
    with pytest.raises(MappingError):
        mapping.items_of({"data": {}})
    assert mapping.matches({"kind": "post"}) and not mapping.matches({"kind": "ack"})


def test_ids_keep_their_prefix_and_long_ids_are_hashed() -> None:
    assert qualified_id("reviews", "r1") == "reviews:r1"
    assert qualified_id("reviews", "reviews:r1") == "reviews:r1"
    long_id = qualified_id("rss:host", "x" * 600)
    assert long_id.startswith("rss:host:sha1:") and len(long_id) <= 512
    assert long_id == qualified_id("rss:host", "x" * 600)


def test_mapping_file_yaml(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "source: forum\nitems: data\nfields:\n  id: id\n  text: body\n  created_at: ts\n"
        "pagination:\n  cursor_path: meta.next\n  cursor_param: cursor\n",
        encoding="utf-8",
    )
    mapping = FieldMapping.load(path, source="override")
    assert mapping.source == "override" and mapping.items == "data"
    assert Pagination.from_dict(mapping.extra["pagination"]) == Pagination(
        cursor_path="meta.next", cursor_param="cursor"
    )
    with pytest.raises(ValueError, match="unknown keys"):
        Pagination.from_dict({"cursor": "x"})


def test_backoff_grows_jittered_and_resets() -> None:
    backoff = Backoff(1.0, 10.0, rng=random.Random(1))
    delays = [backoff.next() for _ in range(8)]
    for attempt, delay in enumerate(delays):
        ceiling = min(10.0, 2.0**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays[4:]}) > 1  # capped, but still jittered
    backoff.reset()
    assert backoff.next() <= 1.0


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    now = datetime(2026, 3, 2, 7, 0, tzinfo=UTC).timestamp()
    assert retry_after_seconds(format_datetime(datetime(2026, 3, 2, 7, 0, 30, tzinfo=UTC), usegmt=True), now) == 30
    assert retry_after_seconds("999999") == 3600.0  # capped


def test_html_is_stripped_to_text() -> None:
    assert html_to_text("<p>Acme <b>recall</b> &amp; more</p><script>x()</script><p>next</p>") == (
        "Acme recall & more next"
    )
    assert entry_text({"title": "Acme recall", "summary": "<p>Acme recall: blades</p>"}) == "Acme recall: blades"
    assert entry_text({"title": "T", "content": [{"value": "<i>body</i>"}]}) == "T\nbody"


def test_state_store_round_trip_and_seen_ids(tmp_path: Path) -> None:
    store = StateStore.for_connector(tmp_path, "rss", "https://a.example/feed")
    seen = SeenIds(max_ids=3)
    assert all(seen.first_time(i) for i in "abcd") and not seen.first_time("d")
    assert seen.to_list() == ["b", "c", "d"]
    store.data.update(etag='"v1"', seen=seen.to_list())
    store.save()
    again = StateStore.for_connector(tmp_path, "rss", "https://a.example/feed")
    assert again.data == {"etag": '"v1"', "seen": ["b", "c", "d"]}
    assert StateStore.for_connector(None, "rss", "x").path is None
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    assert StateStore(tmp_path / "broken.json").data == {}


def test_webhook_body_splitting_and_signature() -> None:
    assert split_body(b'{"id": 1}') == ([{"id": 1}], [])
    assert split_body(b'[{"id": 1}, {"id": 2}]') == ([{"id": 1}, {"id": 2}], [])
    assert split_body(b'{"id": 1}\n\nnot json\n{"id": 2}\n') == ([{"id": 1}, {"id": 2}], [b"not json"])
    assert sign(b"key", b"The quick brown fox jumps over the lazy dog") == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )


def test_env_expansion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CW_TEST_TOKEN", "abc")
    assert expand_env("Bearer ${CW_TEST_TOKEN}") == "Bearer abc"
    assert expand_env("keep ${CW_UNSET_VAR_X}") == "keep ${CW_UNSET_VAR_X}"

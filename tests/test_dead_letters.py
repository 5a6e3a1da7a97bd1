"""Decoding raw records: every kind of bad input is rejected with a clear, fixed reason."""

from __future__ import annotations

import base64
import json

import pytest

from stream.dead_letters import RejectedRecord, dead_letter, decode_mention
from stream.dedupe import SeenIds
from stream.records import DeadLetter

GOOD = {"id": "x:1", "source": "twitter", "text": "hello", "created_at": "2026-03-02T10:00:00+02:00"}


def test_good_record_is_normalised_to_utc() -> None:
    mention = decode_mention(json.dumps(GOOD).encode(), 10_000)
    assert mention.created_at.isoformat() == "2026-03-02T08:00:00+00:00"
    assert mention.model_dump(mode="json")["created_at"] == "2026-03-02T08:00:00Z"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty"),
        (b"x" * 2000, "oversized"),
        (b"\xff\xfe{}", "invalid_utf8"),
        (b'{"id": "x", ', "invalid_json"),
        (json.dumps({**GOOD, "text": 5}).encode(), "invalid_record"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "id"}).encode(), "invalid_record"),
        (json.dumps({**GOOD, "created_at": "yesterday"}).encode(), "bad_timestamp"),
        (json.dumps({**GOOD, "created_at": "2026-03-02T10:00:00"}).encode(), "bad_timestamp"),  # naive
        (json.dumps({**GOOD, "created_at": "2999-01-01T00:00:00Z"}).encode(), "future_timestamp"),
        (json.dumps({**GOOD, "author": {"followers": -3}}).encode(), "invalid_record"),
    ],
)
def test_bad_input_gets_a_reason(value: bytes, reason: str) -> None:
    with pytest.raises(RejectedRecord) as info:
        decode_mention(value, 1000)
    assert info.value.reason == reason
    assert info.value.detail


def test_dead_letter_keeps_the_original_bytes() -> None:
    raw = b"\xff not json"
    record = DeadLetter.model_validate_json(
        dead_letter(reason="invalid_utf8", detail="bad byte", stage="enrich", topic="mentions.raw", partition=1,
                    offset=7, value=raw, key=b"k")
    )
    assert base64.b64decode(record.original_b64) == raw
    assert base64.b64decode(record.original_key_b64 or "") == b"k"
    assert (record.reason, record.partition, record.offset) == ("invalid_utf8", 1, 7)


def test_seen_ids_ttl_and_bound() -> None:
    seen = SeenIds(ttl_seconds=10, max_ids=1000)
    assert seen.first_time("a", now=0)
    assert not seen.first_time("a", now=5)
    assert seen.first_time("a", now=16)  # expired
    for i in range(5000):
        seen.first_time(f"id{i}", now=20)
    assert len(seen) <= 1000

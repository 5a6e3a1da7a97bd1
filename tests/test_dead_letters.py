"""Decoding raw records: every kind of bad input is rejected with a clear, fixed reason, and its dead letter
fits the broker; dead letters are counted and logged at a bounded rate; the README lists every reason."""

from __future__ import annotations

import base64
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from crisiswatch.contracts.records import DEAD_LETTER_REASONS, DeadLetter
from crisiswatch.detectors.seen import SeenIds
from crisiswatch.stream.dead_letters import DeadLetterLog, RejectedRecord, dead_letter, decode_mention, reason_of

GOOD = {"id": "x:1", "source": "twitter", "text": "hello", "created_at": "2026-03-02T10:00:00+02:00"}
README = Path(__file__).resolve().parents[1] / "README.md"


def test_good_record_is_normalised_to_utc() -> None:
    mention = decode_mention(json.dumps(GOOD).encode(), 10_000, datetime(2026, 3, 2, 9, tzinfo=UTC))
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


def test_timestamps_are_judged_against_now_with_configurable_bounds() -> None:
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)

    def at(when: datetime) -> bytes:
        return json.dumps({**GOOD, "created_at": when.isoformat()}).encode()

    assert decode_mention(at(now + timedelta(minutes=4)), 10_000, now).created_at == now + timedelta(minutes=4)
    for value, kwargs, reason in [
        (at(now + timedelta(minutes=6)), {}, "future_timestamp"),
        (at(now + timedelta(seconds=61)), {"max_future": timedelta(seconds=60)}, "future_timestamp"),
        (at(now - timedelta(days=21 * 365)), {}, "stale_timestamp"),
        (at(now - timedelta(days=8)), {"max_age": timedelta(days=7)}, "stale_timestamp"),
    ]:
        with pytest.raises(RejectedRecord) as info:
            decode_mention(value, 10_000, now, **kwargs)
        assert info.value.reason == reason, (value, kwargs)
    assert decode_mention(at(now - timedelta(days=6)), 10_000, now, max_age=timedelta(days=7))


def test_dead_letter_keeps_the_original_bytes() -> None:
    raw = b"\xff not json"
    record = DeadLetter.model_validate_json(
        dead_letter(reason="invalid_utf8", detail="bad byte", stage="enrich", topic="mentions.raw", partition=1,
                    offset=7, value=raw, key=b"k")
    )  # fmt: skip
    assert base64.b64decode(record.original_b64) == raw
    assert base64.b64decode(record.original_key_b64 or "") == b"k"
    assert (record.reason, record.partition, record.offset) == ("invalid_utf8", 1, 7)
    assert (record.original_size, record.original_key_size, record.truncated) == (len(raw), 1, False)


@pytest.mark.parametrize("max_bytes", [16 * 1024, 64 * 1024, 1_000_000])
def test_an_oversized_original_is_truncated_to_fit_with_its_size_recorded(max_bytes: int) -> None:
    raw = bytes(range(256)) * (3 * 1024 * 1024 // 256)  # 3 MiB: more than any broker takes by default
    key = b"k" * 5000
    detail = "\u0000é" * 5000  # escapes to far more bytes than characters
    value = dead_letter(reason="oversized", detail=detail, stage="enrich", topic="mentions.raw", partition=0,
                        offset=1, value=raw, key=key, max_bytes=max_bytes)  # fmt: skip
    assert len(value) <= max_bytes
    record = DeadLetter.model_validate_json(value)
    kept = base64.b64decode(record.original_b64)
    assert record.truncated and record.original_size == len(raw) and record.original_key_size == len(key)
    assert kept == raw[: len(kept)] and max_bytes - len(value) < 8  # as much as fits, from the start
    assert base64.b64decode(record.original_key_b64 or "") == key[:1024]


def test_reason_of_an_unexpected_error() -> None:
    assert reason_of(ZeroDivisionError("x")) == ("enrich_error", "ZeroDivisionError: x")
    assert reason_of(OverflowError("big"), "window_error") == ("window_error", "OverflowError: big")
    assert reason_of(RejectedRecord("empty", "nothing")) == ("empty", "nothing")


def _count(reason: str) -> float:
    return REGISTRY.get_sample_value("crisiswatch_dead_letters_total", {"reason": reason}) or 0.0


def test_dead_letters_are_counted_and_logged_at_a_bounded_rate(caplog: pytest.LogCaptureFixture) -> None:
    clock = [1000.0]
    logger = logging.getLogger("test.dead_letters")
    dead = DeadLetterLog(logger, interval=10.0, clock=lambda: clock[0])
    before = {r: _count(r) for r in ("invalid_json", "empty")}
    with caplog.at_level(logging.WARNING, logger="test.dead_letters"):
        for i in range(500):
            dead.record("invalid_json", f"mentions.raw@0/{i}", "unterminated string")
        dead.record("empty", "mentions.raw@0/600", "record has no value")
        assert len(caplog.records) == 2, "one line per reason, however many records"
        assert dead.suppressed == 499
        dead.flush()  # too early: nothing yet
        assert len(caplog.records) == 2
        clock[0] += 10.0
        dead.flush()
        assert len(caplog.records) == 3
        assert "499 more invalid_json" in caplog.records[-1].getMessage()
        assert dead.suppressed == 0
        clock[0] += 1.0
        dead.record("invalid_json", "mentions.raw@0/700", "again")  # within the interval of the summary line
        clock[0] += 10.0
        dead.record("invalid_json", "mentions.raw@0/701", "and again")
        assert "and 1 more invalid_json" in caplog.records[-1].getMessage()
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    assert _count("invalid_json") - before["invalid_json"] == 502
    assert _count("empty") - before["empty"] == 1


def test_the_readme_dead_letter_table_lists_every_reason() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Dead letters", 1)[1].split("\n#", 1)[0]
    listed = re.findall(r"^\| `([a-z_0-9]+)` \|", section, flags=re.MULTILINE)
    assert len(listed) == len(set(listed)), "a reason is listed twice"
    assert set(listed) == set(DEAD_LETTER_REASONS), (
        f"missing from README: {set(DEAD_LETTER_REASONS) - set(listed)}; "
        f"not a DeadLetterReason: {set(listed) - set(DEAD_LETTER_REASONS)}"
    )


def test_seen_ids_ttl_and_bound() -> None:
    seen = SeenIds(max_ids=1000, ttl_seconds=10)
    assert seen.first_time("a", now=0)
    assert not seen.first_time("a", now=5)
    assert seen.first_time("a", now=16)  # expired
    for i in range(5000):
        seen.first_time(f"id{i}", now=20)
    assert len(seen) <= 1000

"""The pure window-closing rules: per-source lateness and idle limits, the idle-flush decision, corrections,
and configuration winning over restored state."""

from __future__ import annotations

import json

import pytest

from crisiswatch.detectors.window import MentionFacts
from crisiswatch.settings import Settings
from crisiswatch.stream.windowing import (
    DEFAULT_SOURCE_LATENESS,
    OTHER_SOURCES,
    BrandWindows,
    ClosingPolicy,
    SourcePolicy,
    StateMismatch,
    Watermark,
)

T0 = 1_772_438_400.0  # 2026-03-02T08:00:00Z, a window boundary


def facts(i: int, source: str = "mastodon") -> MentionFacts:
    return MentionFacts(id=f"m{i}", text=f"text {i}", source=source, reach=1, lang="en", sentiment="neutral", story=i)


def policy(**lateness: float) -> ClosingPolicy:
    return ClosingPolicy(5.0, 3.0, SourcePolicy.of(30.0, 60.0, lateness, {"rss": 1800.0}))


def test_source_keys_are_named_sources_or_kinds_and_bounded() -> None:
    p = SourcePolicy.of(30.0, 60.0, {"replay:archive": 3600.0})
    assert p.key("rss") == "rss"
    assert p.key("rss:example.org") == "rss"  # the kind before ':'
    assert p.key("replay:archive") == "replay:archive"  # one file's own source
    assert p.key("replay:other") == "replay"
    assert p.key("forum") == OTHER_SOURCES and SourcePolicy.label(OTHER_SOURCES) == "other"
    assert p.rule("rss").lateness == DEFAULT_SOURCE_LATENESS["rss"] and p.rule("mastodon").lateness == 30.0
    assert p.rule(OTHER_SOURCES).lateness == 30.0 and p.rule(OTHER_SOURCES).idle == 60.0
    assert p.rule("replay:archive").lateness == 3600.0


def test_settings_override_the_defaults_entry_by_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRISISWATCH_SOURCE_LATENESS", '{"rss": 900, "forum": 120}')
    monkeypatch.setenv("CRISISWATCH_SOURCE_IDLE_SECONDS", '{"forum": 600}')
    monkeypatch.setenv("CRISISWATCH_UPSTREAM_IDLE_FACTOR", "4")
    closing = ClosingPolicy.from_settings(Settings().worker)
    assert closing.sources.rule("rss").lateness == 900.0
    assert closing.sources.key("forum:x") == "forum"
    assert (closing.sources.rule("forum").lateness, closing.sources.rule("forum").idle) == (120.0, 600.0)
    assert closing.sources.rule("bluesky").lateness == 30.0  # untouched default
    assert closing.upstream_idle_seconds == 4 * 5.0  # the factor is a named setting


def test_idle_flush_needs_quiet_a_watermark_behind_the_clock_and_a_quiet_upstream() -> None:
    closing = ClosingPolicy(idle_flush_seconds=5.0, upstream_idle_factor=3.0)
    assert closing.upstream_idle_seconds == 15.0
    assert not closing.may_flush(4.9, T0, T0 + 100)  # not quiet long enough
    assert not closing.may_flush(5.0, T0 + 200, T0 + 100)  # event time is ahead of the clock already
    assert closing.may_flush(5.0, None, T0) and closing.may_flush(5.0, T0, T0 + 100)
    assert not closing.should_flush(5.0, T0, T0 + 100, upstream_quiet=False)  # a backlog is not silence
    assert closing.should_flush(5.0, T0, T0 + 100, upstream_quiet=True)


def test_a_brand_closes_when_every_live_source_feeding_it_has_passed() -> None:
    w = Watermark(policy())
    # A live stream at T0 + 20 min, and an RSS feed whose items are 5 minutes late.
    w.observe(0, T0 + 1200, now=0.0, source="mastodon")
    w.observe(0, T0 + 900, now=0.0, source="rss")
    points = w.source_points(now=1.0)
    assert points == {"mastodon": T0 + 1200 - 30, "rss": T0 + 900 - DEFAULT_SOURCE_LATENESS["rss"]}
    assert w.closing_point({"mastodon"}, now=1.0) == T0 + 1170  # a brand only the stream feeds
    assert w.closing_point({"mastodon", "rss"}, now=1.0) == T0 + 300  # waits for the feed
    assert w.closing_point(set(), now=1.0) == T0 + 1200 - 30  # fed by nothing known: upstream - default
    # The feed goes silent past its own idle limit (1800 s): it no longer holds the brand's windows.
    w.observe(0, T0 + 3000, now=1801.0, source="mastodon")
    assert w.closing_point({"mastodon", "rss"}, now=1801.0) == T0 + 3000 - 30


def test_a_hold_cap_closes_a_brand_behind_a_slow_feed_and_its_items_become_corrections() -> None:
    from dataclasses import replace

    w = Watermark(replace(policy(), max_hold_seconds=120.0))
    w.observe(0, T0 + 1200, now=0.0, source="mastodon")
    w.observe(0, T0 + 900, now=0.0, source="rss")
    assert w.closing_point({"mastodon", "rss"}, now=1.0) == T0 + 1200 - 120  # not T0 + 300: capped
    assert w.closing_point({"mastodon"}, now=1.0) == T0 + 1170  # a fast source is not slowed by the cap
    assert Watermark(policy()).policy.max_hold_seconds is None  # off unless configured
    assert ClosingPolicy.from_settings(Settings(max_window_hold_seconds=90).worker).max_hold_seconds == 90

    brand = BrandWindows("acme", 60.0)
    brand.sources.update({"mastodon", "rss"})
    brand.add(T0 + 30, facts(1))
    closed = brand.close_until(w.closing_point(brand.sources, now=1.0))
    assert closed[0].start == T0 and closed[-1].start == T0 + 1200 - 120 - 60
    brand.add(T0 + 40, facts(2, source="rss"))  # the feed's item for that window arrives later
    (correction,) = brand.take_corrections()
    assert (correction.start, correction.mentions, correction.revision) == (T0, 1, 1)  # counted in a correction


def test_a_source_is_capped_by_the_slowest_upstream_partition() -> None:
    w = Watermark(policy(), upstreams=2)
    w.observe(0, T0 + 600, now=0.0, source="mastodon")  # raw partition 0 read far ahead
    assert w.closing_point({"mastodon"}, now=1.0) is None  # partition 1 not heard from yet
    w.observe(1, T0 + 100, now=1.0, source="mastodon")
    assert w.closing_point({"mastodon"}, now=1.0) == T0 + 100 - 30


def test_an_idle_flush_keeps_a_live_source_lateness() -> None:
    w = Watermark(policy())
    w.observe(0, T0 + 60, now=0.0, source="mastodon")
    w.observe(0, T0 + 30, now=0.0, source="rss")
    w.advance_to(T0 + 3600)  # nothing on its way: the wall clock
    assert w.closing_point({"mastodon"}, now=10.0) == T0 + 3600 - 30
    assert w.closing_point({"rss"}, now=10.0) == T0 + 3600 - DEFAULT_SOURCE_LATENESS["rss"]
    restored = Watermark(policy())
    restored.restore(json.loads(json.dumps(w.to_state())), now=20.0)
    assert restored.closing_point({"rss"}, now=21.0) == T0 + 3600 - DEFAULT_SOURCE_LATENESS["rss"]


def test_five_minutes_late_feed_items_are_counted_in_their_windows() -> None:
    """Pure version of the broker test: a live stream and an RSS feed 5 minutes behind it."""
    closing = policy()
    w = Watermark(closing)
    brand = BrandWindows("acme", 60)
    sources = closing.sources
    placements: list[str] = []
    for minute in range(5, 40):
        now = float(minute)
        for s in range(0, 60, 10):  # the stream: six mentions a minute, on time
            t = T0 + minute * 60 + s
            placements.append(brand.add(t, facts(minute * 100 + s), sources.key("mastodon")))
            w.observe(0, t, now, sources.key("mastodon"))
        # the feed: one item a minute, published 5 minutes before it arrives
        t = T0 + (minute - 5) * 60 + 30
        placements.append(brand.add(t, facts(10_000 + minute, "rss:example.org"), sources.key("rss:example.org")))
        w.observe(0, t, now, sources.key("rss:example.org"))
        point = w.closing_point(brand.sources, now)
        assert point is not None and point <= t  # the feed holds the brand's windows open
        brand.close_until(point)
    assert set(placements) <= {"counted", "late"}, placements
    w.advance_to(T0 + 10 * 3600)
    brand.close_until(w.closing_point(brand.sources, 41.0) or 0.0)
    assert not brand.take_corrections()
    # A brand the feed never fed closes at the stream's pace: the feed's first item for it is a correction.
    other = BrandWindows("globex", 60)
    other.add(T0 + 600, facts(1), "mastodon")
    other.close_until(T0 + 700)
    assert other.add(T0 + 610, facts(2, "rss"), "rss") == "corrected"


def test_after_close_a_mention_goes_to_a_correction_with_rising_revisions_or_beyond_the_horizon_nowhere() -> None:
    w = BrandWindows("acme", 60, correction_horizon=600)
    w.add(T0 + 10, facts(1))
    (first,) = w.close_until(T0 + 60)
    assert first.revision == 0
    assert w.add(T0 + 20, facts(2), "rss") == "corrected"
    assert w.add(T0 + 30, facts(3), "rss") == "corrected"
    (c1,) = w.take_corrections()
    assert (c1.start, c1.mentions, c1.late_mentions, c1.revision) == (T0, 2, 2, 1)
    assert w.take_corrections() == []
    w.add(T0 + 40, facts(4), "rss")
    state = json.loads(json.dumps(w.to_state()))  # pending corrections and revisions survive a restart
    restored = BrandWindows.from_state(state, 60, correction_horizon=600)
    (c2,) = restored.take_corrections()
    assert (c2.mentions, c2.revision) == (1, 2)
    restored.add(T0 + 2000, facts(5))
    restored.close_until(T0 + 2100)
    assert restored.add(T0 + 50, facts(6)) == "too_late"  # closed 2040 s before: beyond the 600 s horizon


def test_on_restore_the_configuration_wins_over_the_state() -> None:
    w = BrandWindows("acme", 60, 30)
    w.add(T0 + 10, facts(1))
    state = json.loads(json.dumps(w.to_state()))
    restored = BrandWindows.from_state({**state, "lateness": 999}, 60, lateness_seconds=0)
    assert restored.lateness == 0  # lateness comes from the configuration, never from the state
    with pytest.raises(StateMismatch, match="60 s windows, configured 300 s"):
        BrandWindows.from_state(state, 300)

"""Event-time windows of a brand: placement, lateness, closing, gaps and state round trips."""

from __future__ import annotations

import json

from crisiswatch.detectors.window import MentionFacts, tumbling_window
from crisiswatch.stream.windowing import MAX_GAP_WINDOWS, BrandWindows

T0 = 1_772_438_400.0  # 2026-03-02T08:00:00Z, a window boundary


def facts(i: int, sentiment: str = "neutral", text: str | None = None) -> MentionFacts:
    return MentionFacts(
        id=f"m{i}",
        text=text or f"text number {i}",
        source="twitter",
        reach=10,
        lang="en",
        sentiment=sentiment,
        story=i,
    )


def test_tumbling_window_bounds() -> None:
    assert tumbling_window(T0 + 59.9, 60) == (T0, T0 + 60)
    assert tumbling_window(T0 + 60, 60) == (T0 + 60, T0 + 120)


def test_out_of_order_mentions_within_lateness_land_in_their_window() -> None:
    w = BrandWindows("acme", 60, 30)
    assert w.add(T0 + 10, facts(1)) == "counted"
    assert w.add(T0 + 70, facts(2)) == "counted"
    assert w.add(T0 + 20, facts(3)) == "late"  # older than the newest, its window still open
    closed = w.close_until(T0 + 60 + 30)  # watermark reaches end + lateness of the first window
    assert [c.start for c in closed] == [T0]
    assert closed[0].mentions == 2 and closed[0].late_mentions == 1
    assert w.add(T0 + 5, facts(4)) == "corrected"  # its window closed: a correction of it
    closed = w.close_until(T0 + 120 + 30)
    assert [(c.start, c.mentions) for c in closed] == [(T0 + 60, 1)]
    (correction,) = w.take_corrections()
    assert (correction.start, correction.mentions, correction.revision) == (T0, 1, 1)
    assert not correction.volume.spike and correction.volume.p_value == 1.0


def test_quiet_windows_close_empty_and_long_gaps_jump() -> None:
    w = BrandWindows("acme", 60, 0)
    w.add(T0, facts(1))
    closed = w.close_until(T0 + 5 * 60)
    assert [c.mentions for c in closed] == [1, 0, 0, 0, 0]
    w.add(T0 + 10_000 * 60, facts(2))
    closed = w.close_until(T0 + 10_001 * 60)
    empties = [c for c in closed if c.mentions == 0]
    assert len(empties) <= MAX_GAP_WINDOWS
    assert closed[-1].start == T0 + 10_000 * 60 and closed[-1].mentions == 1


def test_near_duplicates_fold_into_stories_and_reach_adds_up() -> None:
    w = BrandWindows("acme", 60, 0)
    for i in range(12):
        w.add(T0 + i, MentionFacts(f"n{i}", "same story", "news", 1000, "en", "negative", story=42))
    w.add(T0 + 30, facts(99, "negative"))
    (closed,) = w.close_until(T0 + 60)
    assert closed.mentions == 13
    assert closed.stories == 2
    assert closed.reach == 12 * 1000 + 10


def test_state_round_trip_gives_identical_decisions() -> None:
    a = BrandWindows("acme", 60, 30)
    for i in range(200):
        a.add(T0 + i * 7, facts(i, "negative" if i % 5 == 0 else "positive"))
    a.close_until(T0 + 600)
    b = BrandWindows.from_state(json.loads(json.dumps(a.to_state())))
    for i in range(200, 400):
        t = T0 + i * 7
        a.add(t, facts(i))
        b.add(t, facts(i))
    ca, cb = a.close_until(T0 + 4000), b.close_until(T0 + 4000)
    assert [(c.start, c.mentions, c.volume, c.negativity) for c in ca] == [
        (c.start, c.mentions, c.volume, c.negativity) for c in cb
    ]


def test_watermark_waits_for_the_slowest_upstream_partition() -> None:
    from crisiswatch.stream.windowing import ClosingPolicy, Watermark

    w = Watermark(ClosingPolicy(idle_flush_seconds=5, upstream_idle_factor=1))
    w.observe(0, T0 + 600, now=0.0)  # raw partition 0 read far ahead
    w.observe(1, T0 + 10, now=0.0)
    assert w.current(now=1.0) == T0 + 10
    w.observe(1, T0 + 700, now=2.0)
    assert w.current(now=2.0) == T0 + 600
    assert w.current(now=20.0) == T0 + 600  # everyone idle: it never goes backwards
    w.observe(0, T0 + 800, now=21.0)
    assert w.current(now=21.5) == T0 + 800  # partition 1 silent for > 5 s no longer holds it back


def test_a_slow_upstream_partition_with_a_backlog_is_not_a_silent_one() -> None:
    """Under load the enrich stage may not reach a raw partition for longer than the idle limit: while it
    still has records of that partition to do, the partition holds the watermark back (its mentions would
    otherwise all arrive late)."""
    from crisiswatch.stream.windowing import ClosingPolicy, Watermark

    w = Watermark(ClosingPolicy(idle_flush_seconds=5, upstream_idle_factor=1), upstreams=3)
    w.observe(0, T0 + 600, now=0.0)
    w.observe(1, T0 + 10, now=0.0)
    w.backlogged = frozenset({1, 2})  # the enrich group has records of raw partitions 1 and 2 still to do
    assert w.current(now=30.0) is None  # partition 2 was never heard from and has a backlog: wait
    w.observe(2, T0 + 650, now=30.0)
    w.observe(0, T0 + 600, now=30.0)
    assert w.current(now=49.0) == T0 + 10  # within 10 idle limits (50 s) of silence, partition 1 still holds
    w.observe(0, T0 + 700, now=49.0)
    assert w.current(now=49.5) == T0 + 10
    assert w.current(now=51.0) == T0 + 650  # stuck, not slow: past 10 idle limits it stops holding
    w.backlogged = frozenset()  # caught up: its silence is real now
    w.observe(0, T0 + 900, now=62.0)
    assert w.current(now=62.0) == T0 + 900

"""Late mentions count, on the real broker: a feed minutes late beside a live stream, corrections, the DLQ past
the correction horizon, configuration winning over restored window state, and the risk stage's restore and
corrections."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer
from conftest import read_all
from prometheus_client import REGISTRY

from crisiswatch.contracts.records import DeadLetter, Signal
from crisiswatch.contracts.topics import MENTIONS_DLQ, MENTIONS_ENRICHED, SIGNALS, STATE
from crisiswatch.detectors.spikes import SpikeResult
from crisiswatch.follow import read_states
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings
from crisiswatch.stream.decisions import RiskBook
from crisiswatch.stream.risk_stage import RiskStage
from crisiswatch.stream.window_stage import WindowStage


async def until(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


def enriched(brand: str, i: str, at: datetime, source: str, sentiment: str = "neutral") -> bytes:
    return json.dumps({
        "id": f"{source}:{i}", "source": source, "text": f"{brand} mention {i}", "lang": "en", "sentiment": sentiment,
        "created_at": at.isoformat(), "brand": brand, "reach_estimate": 1, "story": abs(hash((brand, i))) % 2**60,
    }).encode()  # fmt: skip


async def produce(s: Settings, records: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers)
    await producer.start()
    try:
        topic = s.topic(MENTIONS_ENRICHED.name)
        for brand, value in records:
            await producer.send(topic, value, key=brand.encode(), partition=0, headers=[("raw-partition", b"0")])
        await producer.flush()
    finally:
        await producer.stop()


async def signals(s: Settings) -> list[Signal]:
    return [
        Signal.model_validate_json(r.value) for r in await read_all(s.kafka.bootstrap_servers, s.topic(SIGNALS.name))
    ]


def too_late(source: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("crisiswatch_mentions_too_late_total", {"source": source, "outcome": outcome}) or 0


async def run_stage(s: Settings, records: int) -> WindowStage:
    stage = WindowStage(s, s.kafka.bootstrap_servers)
    await stage.start()

    async def read() -> bool:
        return stage.records_processed >= records

    await until(read, 60, "the window stage to read its input")
    await stage.flush()
    return stage


async def test_a_feed_five_minutes_late_beside_a_live_stream_is_counted_in_its_windows(settings: Settings) -> None:
    """acme: a live stream (on time) and an RSS feed whose items are published 5 minutes before they arrive;
    globex: the stream only. With one global watermark and 30 s of lateness every feed item was too late."""
    s = settings.model_copy(
        update={"partitions": 1, "idle_flush_seconds": 600, "correction_horizon_seconds": 3600, "batch_size": 13}
    )
    assert s.kafka.bootstrap_servers
    await ensure_topics(s.kafka.bootstrap_servers, s)
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    records: list[tuple[str, bytes]] = []
    for minute in range(40):  # in arrival order
        for sec in range(0, 60, 10):
            at = start + timedelta(minutes=minute, seconds=sec)
            records.append(("acme", enriched("acme", f"{minute}-{sec}", at, "mastodon")))
            records.append(("globex", enriched("globex", f"{minute}-{sec}", at, "mastodon")))
        at = start + timedelta(minutes=minute - 5, seconds=30)  # this minute's poll finds an item 5 minutes old
        records.append(("acme", enriched("acme", f"feed-{minute}", at, "rss:example.org", "negative")))
    # Then, after globex's windows closed: a feed item for globex 5 minutes late (a correction of its window),
    # and one for acme two hours late (beyond the one-hour correction horizon: a dead letter).
    records.append(("globex", enriched("globex", "late", start + timedelta(minutes=34, seconds=5), "rss")))
    records.append(("acme", enriched("acme", "ancient", start - timedelta(hours=2), "rss")))
    before = too_late("rss", "correction"), too_late("rss", "dead_letter")
    await produce(s, records)

    stage = await run_stage(s, len(records))
    await stage.stop()

    found = await signals(s)
    acme = {x.window_start: x for x in found if x.brand == "acme" and x.revision == 0}
    globex = {x.window_start: x for x in found if x.brand == "globex" and x.revision == 0}
    # acme's windows wait for the feed (its items 5 minutes behind, 10 minutes of lateness); globex's do not.
    assert len(acme) >= 20, sorted(acme)
    assert len(globex) >= 38 > len(acme), (len(globex), len(acme))
    for window_start, window in acme.items():
        minute = round((window_start - start).total_seconds() / 60)
        feed = 1 if -5 <= minute < 35 else 0
        stream = 6 if minute >= 0 else 0
        assert window.sources.get("rss:example.org", 0) == feed, (window_start, window.sources)
        assert (window.mentions, window.negative) == (stream + feed, feed), window_start
    assert sum(w.sources.get("rss:example.org", 0) for w in acme.values()) == len(acme)  # every one counted

    (correction,) = [x for x in found if x.revision]
    assert (correction.brand, correction.window_start, correction.revision) == (
        "globex",
        start + timedelta(minutes=34),
        1,
    )
    assert (correction.mentions, correction.late_mentions, correction.sources) == (1, 1, {"rss": 1})
    assert not correction.volume.spike and correction.volume.p_value == 1.0
    letters = [
        DeadLetter.model_validate_json(r.value)
        for r in await read_all(s.kafka.bootstrap_servers, s.topic(MENTIONS_DLQ.name))
    ]
    assert [(d.reason, d.stage) for d in letters] == [("too_late", "window")]
    assert b"ancient" in base64.b64decode(letters[0].original_b64)
    assert (too_late("rss", "correction"), too_late("rss", "dead_letter")) == (before[0] + 1, before[1] + 1)


async def test_a_changed_window_size_wins_over_the_restored_state(settings: Settings) -> None:
    """Window size used to be restored from each brand's state: a changed CRISISWATCH_WINDOW_SECONDS was ignored."""
    s = settings.model_copy(update={"partitions": 1, "idle_flush_seconds": 600})
    assert s.kafka.bootstrap_servers
    await ensure_topics(s.kafka.bootstrap_servers, s)
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    first = [("acme", enriched("acme", str(i), start + timedelta(seconds=10 * i), "forum")) for i in range(30)]
    await produce(s, first)
    stage = await run_stage(s, len(first))
    await stage.checkpoint(force=True)
    await stage.flush()
    assert stage.brands["acme"].size == 60
    await stage.stop()
    states = await read_states(s.kafka.bootstrap_servers, s.topic(STATE.name), "window", [0], settings=s)
    assert states[0]["acme"]["size"] == 60

    wider = s.model_copy(update={"window_seconds": 120})
    resets = REGISTRY.get_sample_value("crisiswatch_window_state_resets_total") or 0
    later = [
        ("acme", enriched("acme", f"b{i}", start + timedelta(minutes=10, seconds=10 * i), "forum")) for i in range(60)
    ]
    await produce(s, later)
    again = await run_stage(wider, len(later))
    try:
        assert again.brands["acme"].size == 120  # the configuration, not the state
        assert REGISTRY.get_sample_value("crisiswatch_window_state_resets_total") == resets + 1
    finally:
        await again.stop()
    closed = [x for x in await signals(s) if x.brand == "acme" and x.window_start >= start + timedelta(minutes=10)]
    assert closed and all((x.window_end - x.window_start).total_seconds() == 120 for x in closed), closed
    assert {x.window_start.minute % 2 for x in closed} == {0}


def signal(brand: str, start: datetime, mentions: int, negative: int = 0, revision: int = 0) -> Signal:
    quiet = SpikeResult(observed=mentions, expected=mentions, score=0.0, p_value=1.0, spike=False)
    return Signal(
        brand=brand, window_start=start, window_end=start + timedelta(minutes=1), mentions=mentions, stories=mentions,
        negative_stories=negative, negative=negative, neutral=mentions - negative, positive=0, reach=mentions,
        sources={"rss": mentions}, volume=quiet, negativity=quiet, revision=revision,
        negative_mass=float(negative), negative_mass_sq=float(negative), solo_stories=mentions,
    )  # fmt: skip


def test_a_correction_adds_its_late_mentions_to_a_window() -> None:
    t = datetime(2026, 3, 2, 8, tzinfo=UTC)
    merged = signal("acme", t + timedelta(minutes=5), 10, 1).with_late(signal("acme", t, 4, 3, revision=2))
    assert (merged.mentions, merged.negative, merged.neutral, merged.negative_mass, merged.solo_stories) == (
        14,
        4,
        10,
        4.0,
        14,
    )
    assert (merged.window_start, merged.revision, merged.sources) == (t + timedelta(minutes=5), 0, {"rss": 14})


async def test_the_risk_stage_restores_only_its_partitions_and_keeps_corrections_across_a_restart(
    settings: Settings,
) -> None:
    assert settings.kafka.bootstrap_servers
    await ensure_topics(settings.kafka.bootstrap_servers, settings)
    t = datetime(2026, 3, 2, 8, tzinfo=UTC)
    risk = RiskStage(settings, settings.kafka.bootstrap_servers)
    await risk.start()
    try:
        risk.invalidate([0, 1])
        await risk.handle(signal("acme", t, 10), 0)
        await risk.handle(signal("globex", t, 10), 1)
        await risk.handle(signal("acme", t, 3, 3, revision=1), 0)  # a correction of acme's assessed window
        await risk.handle(signal("acme", t, 3, 3, revision=1), 0)  # the same again (a replay): skipped
        assert risk.carry["acme"].mentions == 3
    finally:
        await risk.stop()

    restarted = RiskStage(settings, settings.kafka.bootstrap_servers)
    await restarted.start()
    try:
        restarted.invalidate([0])  # this worker now owns signals partition 0 only
        await restarted.handle(signal("acme", t, 3, 3, revision=1), 0)  # replayed once more: still skipped
        assert set(restarted.book.monitors) == {"acme"}  # not globex, whose partition is another worker's
        assert restarted.carry["acme"].mentions == 3 and restarted.corrected["acme"] == {t.timestamp(): 1}
        await restarted.handle(signal("acme", t + timedelta(minutes=1), 10), 0)  # the carry goes into this one
        assert "acme" not in restarted.carry
    finally:
        await restarted.stop()
    states = await read_states(
        settings.kafka.bootstrap_servers, settings.topic(STATE.name), "risk", [0, 1], settings=settings
    )
    assert (
        states[0]["acme"]["carry"] is None
        and states[0]["acme"]["last_window"] == (t + timedelta(minutes=1)).timestamp()
    )
    assert "globex" in states[1]


def test_a_carried_correction_can_raise_the_next_decision() -> None:
    """Forty negative mentions about a recall that reached a window after it closed: the window's own decision
    stands, and the brand's next window is assessed with them (the risk rises); without them it stays at 0."""
    policy = Settings().risk.policy()
    plain, corrected = RiskBook(policy), RiskBook(policy)
    t = datetime(2026, 3, 2, tzinfo=UTC)
    for i in range(600):  # ten quiet hours
        quiet = signal("acme", t + timedelta(minutes=i), 5)
        plain.decide(quiet)
        corrected.decide(quiet)
    late = signal("acme", t + timedelta(minutes=599), 40, 40, revision=1)
    late.crisis_terms = {"recall": 30}
    following = signal("acme", t + timedelta(minutes=600), 5)
    without, carried = plain.decide(following), corrected.decide(following.with_late(late))
    assert without is not None and carried is not None
    assert without.decision.assessment.risk == 0 < carried.decision.assessment.risk

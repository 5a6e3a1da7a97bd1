"""Scheduled pauses against the real broker: on time, durable, exactly once across restarts."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

import pytest

from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control import ControlMessage, ControlPlane, PublishingGate
from crisiswatch.control.schedules import Scheduler, ScheduleStore, new_schedule
from crisiswatch.control.testing import read_records, wait_for, with_test_keys
from crisiswatch.control.view import Ingested
from crisiswatch.settings import Settings

TOLERANCE_S = 0.6  # broker round trips + the gate's fetch wait, on a loaded 2-core machine


class RunningScheduler:
    """A scheduler process: its own plane, store and loop."""

    def __init__(self, settings: Settings):
        self.plane = ControlPlane.from_settings(settings)
        self.store = ScheduleStore(settings)
        self.stop_event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RunningScheduler:
        await self.plane.start()
        await self.store.start()
        self.task = asyncio.create_task(Scheduler(self.plane, self.store).run(self.stop_event))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop_event.set()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.store.stop()
        await self.plane.stop()


@pytest.fixture
async def env(settings: Settings):
    settings = with_test_keys(settings)
    plane = ControlPlane.from_settings(settings)  # creates the topics
    await plane.start()
    await plane.stop()
    gate = PublishingGate.from_settings(settings)
    changes: list[tuple[datetime, ControlMessage]] = []

    def record(result: Ingested) -> None:
        if result.changed and result.message is not None:
            changes.append((utcnow(), result.message))

    gate.add_listener(record)
    await gate.start()
    assert await gate.wait_ready(10)
    yield settings, gate, changes
    await gate.stop()


async def add(settings: Settings, **kw) -> None:
    store = ScheduleStore(settings)
    await store.start()
    try:
        await store.add(new_schedule(reason="quiet", created_by="alice", **kw))
    finally:
        await store.stop()


async def control_messages(settings: Settings) -> list[ControlMessage]:
    """The changes on the control topic (heartbeats and re-signed copies of a state left out)."""
    records = await read_records(settings.kafka.bootstrap_servers, settings.topic("publishing.control"))
    messages = [ControlMessage.model_validate_json(r.value) for r in records if r.key != b"heartbeat"]
    return list({(m.scope, m.seq): m for m in reversed(messages)}.values())[::-1]


async def test_window_starts_and_ends_on_time_across_a_restart_mid_window(env) -> None:
    settings, gate, changes = env
    start = utcnow() + timedelta(seconds=1.5)
    end = start + timedelta(seconds=3)
    await add(settings, schedule_id="mourning", scope="global", start=start, end=end, on_resume="skip")

    async with RunningScheduler(settings):
        assert await wait_for(lambda: not gate.allowed().allowed, timeout=5)
        paused_at, pause = changes[-1]
        assert pause.actor == "scheduler" and pause.resume_at == end and pause.on_resume == "skip"
        assert timedelta(0) <= paused_at - start < timedelta(seconds=TOLERANCE_S)
    # The scheduler is down in the middle of the window: a new one must neither pause again nor miss the end.
    await asyncio.sleep(0.5)
    async with RunningScheduler(settings):
        assert await wait_for(lambda: gate.allowed().allowed, timeout=6)
        resumed_at, resume = changes[-1]
        assert resume.state == "active" and resume.episode == pause.episode
        assert timedelta(0) <= resumed_at - end < timedelta(seconds=TOLERANCE_S)
        await asyncio.sleep(0.3)
    messages = await control_messages(settings)
    assert [(m.state, m.episode) for m in messages] == [("paused", pause.episode), ("active", pause.episode)]


async def test_a_missed_end_is_caught_up_at_restart(env) -> None:
    settings, gate, _ = env
    start = utcnow() + timedelta(seconds=0.3)
    await add(settings, schedule_id="short", scope="channel:ads", start=start, end=start + timedelta(seconds=1))
    async with RunningScheduler(settings):
        assert await wait_for(lambda: not gate.allowed(channel="ads").allowed, timeout=5)
    await asyncio.sleep(1.5)  # the window ends while no scheduler runs
    assert not gate.allowed(channel="ads").allowed
    async with RunningScheduler(settings):
        assert await wait_for(lambda: gate.allowed(channel="ads").allowed, timeout=2)


async def test_recurring_window_and_people_have_the_last_word(env) -> None:
    settings, gate, changes = env
    await add(settings, schedule_id="every3s", scope="brand:acme", cron="* * * * * */3", duration_seconds=1.5)
    async with RunningScheduler(settings) as running:
        # The scheduler may start inside an occurrence (it then pauses at once, for what is left of it):
        # measure the next, whole occurrence.
        assert await wait_for(lambda: not gate.allowed(brand="acme").allowed, timeout=5)
        assert await wait_for(lambda: gate.allowed(brand="acme").allowed, timeout=3)
        assert await wait_for(lambda: not gate.allowed(brand="acme").allowed, timeout=4)
        assert await wait_for(lambda: gate.allowed(brand="acme").allowed, timeout=3)
        pause, resume = changes[-2][1], changes[-1][1]
        assert pause.episode == resume.episode and pause.episode.startswith("schedule:every3s:")
        length = (changes[-1][0] - changes[-2][0]).total_seconds()
        assert 1.5 - TOLERANCE_S < length < 1.5 + TOLERANCE_S

        # A person resumes during the next occurrence: the scheduler does not pause again.
        assert await wait_for(lambda: not gate.allowed(brand="acme").allowed, timeout=4)
        await running.plane.resume("brand:acme", reason="we need to post now", actor="alice")
        assert await wait_for(lambda: gate.allowed(brand="acme").allowed, timeout=2)
        await asyncio.sleep(0.5)
        assert gate.allowed(brand="acme").allowed
        assert changes[-1][1].actor == "alice"

        # A crisis pause during a window is never ended by the window's end.
        assert await wait_for(lambda: not gate.allowed(brand="acme").allowed, timeout=4)
        await running.plane.pause("brand:acme", reason="crisis", actor="detector", alert_id="a-9")
        await asyncio.sleep(2.0)
        state = gate.status()["brand:acme"]
        assert state.paused and state.actor == "detector"


async def test_schedules_are_durable_signed_and_removable(env) -> None:
    settings, gate, _ = env
    start = utcnow() + timedelta(seconds=0.2)
    await add(settings, schedule_id="long", scope="account:acme_us", start=start, end=start + timedelta(hours=1))
    with pytest.raises(ValueError):
        await add(settings, schedule_id="long", scope="global", start=start, end=start + timedelta(hours=2))
    async with RunningScheduler(settings) as running:
        assert [s.id for s in running.store.schedules()] == ["long"]
        assert running.store.get("long").sig is not None
        assert await wait_for(lambda: not gate.allowed(account="acme_us").allowed, timeout=3)
        removed = await running.store.remove("long", actor="alice", reason="cancelled")
        assert removed is not None and running.store.get("long") is None
        assert await wait_for(lambda: gate.allowed(account="acme_us").allowed, timeout=3)
    reread = ScheduleStore(settings)
    await reread.start()
    try:
        assert reread.schedules() == [] and reread.schedules(include_removed=True)[0].removed
    finally:
        await reread.stop()

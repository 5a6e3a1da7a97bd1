"""ControlPlane against the real broker: idempotence, who may resume, audit, re-assertion."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from crisiswatch.contracts.control import Heartbeat
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control import AuditRecord, ControlMessage, ControlPlane, PublishingGate, ResumeRefused
from crisiswatch.control.messages import Keyring, SigningUnavailable
from crisiswatch.control.testing import produce, read_records, wait_for, with_test_keys
from crisiswatch.settings import Settings


@pytest.fixture
async def plane(settings: Settings):
    plane = ControlPlane.from_settings(with_test_keys(settings))
    await plane.start()
    yield plane
    await plane.stop()


async def control_records(plane: ControlPlane) -> list[ControlMessage]:
    """The changes on the control topic (heartbeats and re-signed copies of a state left out)."""
    records = await read_records(plane.kafka.bootstrap_servers, plane.control_topic)
    messages = [plane.keyring.verify_record(r.value, ControlMessage) for r in records if r.key != b"heartbeat"]
    seen: set[tuple[str, int]] = set()
    changes = []
    for m in messages:
        if (m.scope, m.seq) not in seen:
            seen.add((m.scope, m.seq))
            changes.append(m)
    return changes


async def audit_records(plane: ControlPlane) -> list[AuditRecord]:
    records = await read_records(plane.kafka.bootstrap_servers, plane.audit_topic)
    return [AuditRecord.model_validate_json(r.value) for r in records]


async def test_repeated_pause_for_one_alert_publishes_once(plane: ControlPlane) -> None:
    first = await plane.pause("global", reason="crisis", actor="detector", alert_id="alert-1")
    again = await plane.pause("global", reason="crisis, escalated", actor="detector", alert_id="alert-1")
    assert first.changed and not again.changed and again.message == first.message
    other_alert = await plane.pause("global", reason="another crisis", actor="detector", alert_id="alert-2")
    assert not other_alert.changed  # already paused; it needs a person anyway
    messages = await control_records(plane)
    assert [(m.state, m.alert_id) for m in messages] == [("paused", "alert-1")]

    await plane.resume("global", reason="handled", actor="alice")
    late_trigger = await plane.pause("global", reason="crisis", actor="detector", alert_id="alert-1")
    assert not late_trigger.changed and plane.get("global").state == "active"  # a person decided

    # Idempotence survives a restart: a new plane learns the episode from the compacted topic.
    fresh = ControlPlane(plane.kafka, plane.control)
    await fresh.start()
    try:
        assert not (await fresh.pause("global", reason="crisis", actor="detector", alert_id="alert-1")).changed
        assert (await fresh.pause("global", reason="new crisis", actor="detector", alert_id="alert-3")).changed
    finally:
        await fresh.stop()
    assert [m.alert_id for m in await control_records(plane)] == ["alert-1", "alert-1", "alert-3"]


async def test_detector_cannot_resume_but_a_person_can(plane: ControlPlane) -> None:
    await plane.pause("brand:acme", reason="crisis", actor="detector", alert_id="alert-4")
    with pytest.raises(ResumeRefused):
        await plane.resume("brand:acme", reason="looks calm", actor="detector")
    assert plane.get("brand:acme").paused
    result = await plane.resume("brand:acme", reason="statement published", actor="alice", on_resume="skip")
    assert result.changed and result.message.state == "active" and result.message.on_resume == "skip"
    assert result.message.episode == "alert-4"  # the resume names the episode it ends
    assert not (await plane.resume("brand:acme", reason="again", actor="alice")).changed


async def test_resume_at_lets_the_pause_end_by_itself(plane: ControlPlane) -> None:
    until = utcnow() + timedelta(seconds=1)
    paused = await plane.pause("channel:ads", reason="cool-off", actor="detector", alert_id="a-5", resume_at=until)
    assert paused.message.resume_at == until
    with pytest.raises(ResumeRefused):
        await plane.resume("channel:ads", reason="early", actor="detector")
    await asyncio.sleep(max(0.0, (until - utcnow()).total_seconds()) + 0.05)
    assert (await plane.resume("channel:ads", reason="resume_at reached", actor="detector")).changed
    with pytest.raises(ValueError):
        await plane.pause("channel:ads", reason="x", actor="detector", resume_at=utcnow() - timedelta(seconds=1))


async def test_pause_replacement_rules(plane: ControlPlane) -> None:
    timed = utcnow() + timedelta(hours=1)
    await plane.pause("global", reason="scheduled quiet", actor="scheduler", episode="schedule:q:1", resume_at=timed)
    crisis = await plane.pause("global", reason="crisis", actor="detector", alert_id="a-6")
    assert crisis.changed and crisis.message.resume_at is None  # the crisis pause takes over: a person resumes
    assert not (await plane.pause("global", reason="quiet", actor="scheduler", episode="schedule:q:2")).changed
    person = await plane.pause("global", reason="CEO statement pending", actor="carol", on_resume="skip")
    assert person.changed and person.message.on_resume == "skip"


async def test_audit_log_says_who_what_why_when_and_before(plane: ControlPlane) -> None:
    await plane.pause("account:acme_us", reason="hacked", actor="bob", on_resume="review")
    await plane.resume("account:acme_us", reason="password reset", actor="alice")
    audit = await audit_records(plane)
    assert [(a.action, a.actor, a.reason, a.previous_state, a.state) for a in audit] == [
        ("pause", "bob", "hacked", None, "paused"),
        ("resume", "alice", "password reset", "paused", "active"),
    ]
    assert audit[1].previous_actor == "bob" and audit[1].previous_reason == "hacked"
    assert audit[0].seq < audit[1].seq and audit[0].kid == "test1"
    assert audit[0].at <= audit[1].at


async def test_signing_needs_a_key_and_scopes_are_checked(settings: Settings, plane: ControlPlane) -> None:
    with pytest.raises(SigningUnavailable):
        ControlPlane.from_settings(settings)  # no CRISISWATCH_CONTROL_KEYS
    with pytest.raises(ValueError):
        await plane.pause("everything", reason="x", actor="alice")


async def test_reassertion_repairs_the_log_after_a_rejected_record(settings: Settings) -> None:
    settings = with_test_keys(settings)
    guardian = ControlPlane.from_settings(settings, reassert_seconds=30)  # repairs at once after a rejected record
    await guardian.start()
    try:
        pause = (await guardian.pause("global", reason="crisis", actor="detector", alert_id="a-7")).message
        # A genuinely signed resume that arrives 10 minutes late, and a forged resume, land last in the log.
        late = guardian.keyring.sign(
            pause.model_copy(
                update={"state": "active", "actor": "alice", "seq": pause.seq + 1,
                        "signed_at": utcnow() - timedelta(minutes=10)}
            )
        )  # fmt: skip
        forged = Keyring({"test1": b"guess"}).sign(pause.model_copy(update={"state": "active", "seq": pause.seq + 2}))
        await produce(settings.kafka.bootstrap_servers, guardian.control_topic, b"global", late.to_bytes())
        await produce(settings.kafka.bootstrap_servers, guardian.control_topic, b"global", forged.to_bytes())

        async def last_genuine() -> ControlMessage | None:
            records = await read_records(settings.kafka.bootstrap_servers, guardian.control_topic)
            last = [r for r in records if r.key == b"global"][-1]  # what compaction keeps for the key
            try:
                return guardian.keyring.verify_record(last.value, ControlMessage)
            except Exception:
                return None

        last: list[ControlMessage | None] = [None]

        async def repaired() -> bool:
            last[0] = await last_genuine()
            return last[0] is not None and last[0].paused and last[0].seq > late.seq

        for _ in range(50):
            if await repaired():
                break
            await asyncio.sleep(0.1)
        assert last[0] is not None and last[0].paused and last[0].seq > late.seq
        # A gate that starts now (reading everything as history) ends up paused, as the live gates are.
        gate = PublishingGate.from_settings(settings, name="newcomer")
        await gate.start()
        assert await gate.wait_ready(10)
        assert await wait_for(lambda: not gate.allowed().allowed)
        await gate.stop()
    finally:
        await guardian.stop()


async def test_the_workers_plane_heartbeats_when_no_scheduler_runs_and_stands_by_when_one_does(
    settings: Settings,
) -> None:
    """`ControlPlane.from_settings(settings)` (what the worker's risk stage runs) re-signs the state by itself; a
    scheduler's primary plane takes the heartbeat over, and the worker's takes it back when it stops."""
    settings = with_test_keys(settings, control_reassert_seconds=1.0, control_heartbeat_max_age_seconds=5.0)
    worker = ControlPlane.from_settings(settings)
    await worker.start()
    try:
        await worker.pause("brand:acme", reason="crisis", actor="detector", alert_id="a-8")
        first = worker.feed.view.heartbeat
        assert first is not None and first.writer == worker.writer_id  # started: it has vouched already

        def worker_beat_again() -> bool:
            beat = worker.feed.view.heartbeat
            return beat is not None and beat.signed_at > first.signed_at and beat.states.get("brand:acme", 0) > 0

        assert await wait_for(worker_beat_again, timeout=5)
        scheduler = ControlPlane.from_settings(settings, heartbeat="primary", writer="scheduler")
        await scheduler.start()
        handed_over = utcnow() + timedelta(seconds=0.5)
        try:
            await asyncio.sleep(3.5)
        finally:
            await scheduler.stop()
        stopped = utcnow()
        assert await wait_for(lambda: worker.feed.view.heartbeat.writer == worker.writer_id, timeout=4)
        records = await read_records(settings.kafka.bootstrap_servers, worker.control_topic)
        beats = [Heartbeat.model_validate_json(r.value) for r in records if r.key == b"heartbeat"]
        while_scheduling = [b for b in beats if handed_over < b.signed_at < stopped]
        by_scheduler = [b for b in while_scheduling if b.writer == scheduler.writer_id]
        assert len(by_scheduler) >= 3 and len(while_scheduling) - len(by_scheduler) <= 1
        assert all(b.states.get("brand:acme") == worker.get("brand:acme").seq for b in beats[1:])
    finally:
        await worker.stop()

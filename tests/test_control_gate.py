"""PublishingGate against the real broker: verification, precedence, failing closed, backlog."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from crisiswatch.broker import EmbeddedBroker
from crisiswatch.control import ControlPlane, Keyring, PublishingGate, SyncPublishingGate
from crisiswatch.control.testing import produce, wait_for, with_test_keys
from crisiswatch.settings import Settings
from stream.records import utcnow
from stream.topics import ensure_topics


@pytest.fixture
async def control(settings: Settings):
    """A started plane and a ready gate on a private topic set."""
    settings = with_test_keys(settings)
    plane = ControlPlane(settings)
    await plane.start()
    gate = PublishingGate(settings)
    await gate.start()
    assert await gate.wait_ready(10)
    yield settings, plane, gate
    await gate.stop()
    await plane.stop()


def rejected_total(component: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "crisiswatch_control_messages_rejected_total", {"component": component, "reason": reason}
    )
    return value or 0.0


async def test_forged_unsigned_and_deleting_records_never_change_state(control) -> None:
    settings, plane, gate = control
    pause = (await plane.pause(reason="crisis", actor="detector", alert_id="a-1")).message
    assert await wait_for(lambda: not gate.allowed(channel="twitter").allowed)
    before = rejected_total("gate", "bad_signature")

    topic = settings.topic("publishing.control")
    resume = pause.model_copy(update={"state": "active", "seq": pause.seq + 1, "signed_at": utcnow()})
    forged = Keyring({"test1": b"a guessed secret"}).sign(resume)  # right kid, wrong key
    await produce(settings.bootstrap_servers, topic, b"global", forged.to_bytes())
    unsigned = resume.model_copy(update={"kid": None, "sig": None})
    await produce(settings.bootstrap_servers, topic, b"global", unsigned.to_bytes())
    await produce(settings.bootstrap_servers, topic, b"global", None)  # tombstone: would delete the pause
    await produce(settings.bootstrap_servers, topic, b"global", b"{not json")

    assert await wait_for(lambda: sum(gate.rejected.values()) >= 4)
    assert gate.rejected == {"bad_signature": 1, "unsigned": 1, "tombstone": 1, "malformed": 1}
    decision = gate.allowed(channel="twitter")
    assert not decision.allowed and decision.scope == "global" and decision.alert_id == "a-1"
    assert gate.status()["global"] == pause
    assert rejected_total("gate", "bad_signature") == before + 1


async def test_late_resume_is_ignored_but_a_fresh_one_applies(control) -> None:
    settings, plane, gate = control
    pause = (await plane.pause("brand:acme", reason="crisis", actor="detector", alert_id="a-2")).message
    assert await wait_for(lambda: not gate.allowed(brand="acme").allowed)
    # A genuinely signed resume, but signed 10 minutes ago: held back, or replayed.
    old = utcnow() - timedelta(seconds=settings.control_max_age_seconds * 2)
    late = plane.keyring.sign(
        pause.model_copy(update={"state": "active", "actor": "alice", "seq": pause.seq + 1, "signed_at": old})
    )
    await produce(settings.bootstrap_servers, settings.topic("publishing.control"), b"brand:acme", late.to_bytes())
    assert await wait_for(lambda: gate.rejected["stale"] == 1)
    assert not gate.allowed(brand="acme").allowed

    await plane.resume("brand:acme", reason="all clear", actor="alice")
    assert await wait_for(lambda: gate.allowed(brand="acme").allowed)


async def test_scope_precedence(control) -> None:
    _, plane, gate = control
    await plane.pause("channel:twitter", reason="twitter storm", actor="alice", on_resume="skip")
    await plane.pause("account:acme_us", reason="account hacked", actor="bob")
    assert await wait_for(lambda: len(gate.status()) == 2)
    assert gate.allowed(channel="twitter", account="acme_fr", brand="acme").scope == "channel:twitter"
    assert gate.allowed(channel="email", account="acme_us", brand="acme").scope == "account:acme_us"
    assert gate.allowed(channel="email", account="acme_fr", brand="acme").allowed

    await plane.pause("brand:acme", reason="recall", actor="detector", alert_id="a-3", on_resume="hold")
    await plane.pause("global", reason="national mourning", actor="carol")
    assert await wait_for(lambda: len(gate.status()) == 4)
    decision = gate.allowed(channel="twitter", account="acme_us", brand="acme")
    assert (decision.allowed, decision.scope, decision.on_resume) == (False, "global", "review")
    await plane.resume("global", reason="over", actor="carol")
    post = {"channel": "twitter", "account": "acme_us", "brand": "acme"}
    assert await wait_for(lambda: gate.allowed(**post).scope == "brand:acme")
    assert gate.allowed(channel="email", brand="other").allowed  # any pause of a matching scope blocks, no other


async def test_fails_closed_before_catching_up(control) -> None:
    settings, plane, _ = control
    await plane.pause("global", reason="crisis", actor="detector", alert_id="a-0")
    await plane.resume("global", reason="over", actor="alice")  # the state is "active" again
    gate = PublishingGate(settings, name="late-joiner")
    decision = gate.allowed(channel="twitter")  # not even started
    assert not decision.allowed and "not caught up" in decision.reason
    await gate.start()
    assert not gate.allowed(channel="twitter").allowed  # started, history not read yet
    assert await gate.wait_ready(10)
    assert gate.allowed(channel="twitter").allowed
    await gate.stop()


async def test_fails_closed_while_the_control_topic_does_not_exist(settings: Settings) -> None:
    settings = with_test_keys(settings)
    gate = PublishingGate(settings)
    await gate.start()
    await asyncio.sleep(1.0)
    assert not gate.allowed(channel="twitter").allowed  # no topic, no knowledge: closed
    await ensure_topics(settings.bootstrap_servers, settings)
    assert await gate.wait_ready(10)
    assert gate.allowed(channel="twitter").allowed
    await gate.stop()


async def test_fails_closed_when_its_view_goes_stale(settings: Settings) -> None:
    broker = EmbeddedBroker().start()  # a broker of its own, to take away
    try:
        settings = with_test_keys(settings, bootstrap_servers=broker.bootstrap_servers, gate_max_staleness_seconds=1.0)
        await ensure_topics(broker.bootstrap_servers, settings)
        gate = PublishingGate(settings)
        await gate.start()
        assert await gate.wait_ready(10)
        assert gate.allowed(channel="twitter").allowed
        assert gate.view_age_seconds is not None and gate.view_age_seconds < 1.0
        stopping = asyncio.create_task(asyncio.to_thread(broker.stop))  # the broker goes away
        assert await wait_for(lambda: not gate.allowed(channel="twitter").allowed, timeout=15)
        decision = gate.allowed(channel="twitter")
        assert "failing closed" in decision.reason and gate.view_age_seconds > 1.0
        await stopping
        await gate.stop()
    finally:
        broker.stop()


async def test_sync_gate_in_a_thread(control) -> None:
    settings, plane, _ = control
    sync_gate = SyncPublishingGate(settings, name="sync")
    assert await asyncio.to_thread(sync_gate.start, 10)
    try:
        assert sync_gate.allowed(brand="acme").allowed
        await plane.pause("brand:acme", reason="recall", actor="detector", alert_id="a-4")
        assert await wait_for(lambda: not sync_gate.allowed(brand="acme").allowed)
        assert sync_gate.status()["brand:acme"].alert_id == "a-4"
    finally:
        await asyncio.to_thread(sync_gate.stop)


async def test_backlog_hold_skip_review(control) -> None:
    _, plane, gate = control
    gate.backlog.release_per_second = 10.0
    await plane.pause("channel:twitter", reason="storm", actor="alice", on_resume="hold")
    await plane.pause("channel:email", reason="storm", actor="alice", on_resume="skip")
    await plane.pause("channel:blog", reason="storm", actor="alice", on_resume="review")
    assert await wait_for(lambda: len(gate.status()) == 3)
    base = utcnow()
    for i, channel in enumerate(["twitter", "email", "blog", "twitter", "blog", "twitter"]):
        decision = gate.allowed(channel=channel)
        assert not decision.allowed
        gate.backlog.defer(f"p{i}", decision, channel=channel, due_at=base + timedelta(seconds=10 - i))
    assert {s: len(p) for s, p in gate.backlog.by_scope().items()} == {
        "channel:twitter": 3, "channel:email": 1, "channel:blog": 2,
    }  # fmt: skip
    assert gate.backlog.take() is None  # nothing is released during the pause

    for channel in ("twitter", "email", "blog"):
        await plane.resume(f"channel:{channel}", reason="calm", actor="alice")
    assert await wait_for(lambda: all(m.state == "active" for m in gate.status().values()))
    assert [p.post_id for p in gate.backlog.skipped()] == ["p1"]
    assert [p.post_id for p in gate.backlog.awaiting_review()] == ["p4", "p2"]  # due order
    started = time.monotonic()
    released = [post.post_id async for post in gate.backlog.release(until_empty=True)]
    assert released == ["p5", "p3", "p0"]  # in due order
    assert time.monotonic() - started >= 0.18  # rate limit: 10/s, three posts
    assert gate.backlog.approve(["p2"]) == 1 and gate.backlog.drop(["p4"]) == 1
    assert [p.post_id async for p in gate.backlog.release(until_empty=True)] == ["p2"]
    assert {p.post_id for p in gate.backlog.skipped()} == {"p1", "p4"}


async def test_resume_choice_can_be_overridden_at_resume(control) -> None:
    _, plane, gate = control
    await plane.pause("global", reason="crisis", actor="detector", alert_id="a-5")  # default: review
    assert await wait_for(lambda: not gate.allowed().allowed)
    assert gate.allowed().on_resume == "review"
    gate.backlog.defer("p", gate.allowed(), channel="twitter")
    await plane.resume("global", reason="fine, publish them", actor="alice", on_resume="hold")
    assert await wait_for(lambda: gate.allowed().allowed)
    assert [p.post_id for p in gate.backlog.ready()] == ["p"]


async def test_key_rotation_across_writers_and_gates(settings: Settings) -> None:
    old_only = with_test_keys(settings, keys="k1:old-secret")
    rotating = with_test_keys(settings, keys="k2:new-secret,k1:old-secret")  # new key signs, both verify
    old_writer, new_writer = ControlPlane(old_only), ControlPlane(rotating)
    await old_writer.start()
    await new_writer.start()
    old_gate, new_gate = PublishingGate(old_only, name="old"), PublishingGate(rotating, name="rotated")
    for gate in (old_gate, new_gate):
        await gate.start()
        assert await gate.wait_ready(10)
    try:
        await old_writer.pause("brand:acme", reason="signed with k1", actor="alice")
        assert await wait_for(lambda: not new_gate.allowed(brand="acme").allowed)  # k1 still verifies
        assert await wait_for(lambda: not old_gate.allowed(brand="acme").allowed)
        await new_writer.pause("brand:globex", reason="signed with k2", actor="alice")
        assert await wait_for(lambda: not new_gate.allowed(brand="globex").allowed)
        assert await wait_for(lambda: old_gate.rejected["unknown_kid"] == 1)  # not rolled out there yet
        assert old_gate.allowed(brand="globex").allowed and new_gate.status()["brand:globex"].kid == "k2"
    finally:
        for gate in (old_gate, new_gate):
            await gate.stop()
        await new_writer.stop()
        await old_writer.stop()

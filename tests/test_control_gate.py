"""PublishingGate against the real broker: verification with public keys only, precedence, failing
closed (wrong key, empty or truncated log, stale log, late resumes), backlog."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from crisiswatch.broker import EmbeddedBroker
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control import ControlPlane, Keyring, PublishingGate, SyncPublishingGate
from crisiswatch.control.testing import fixed_key_pair, produce, wait_for, with_public_keys, with_test_keys
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings


@pytest.fixture
async def control(settings: Settings):
    """A started plane (private key) and a ready gate holding only the public key, on a private topic set."""
    settings = with_test_keys(settings)
    plane = ControlPlane.from_settings(settings)
    await plane.start()
    gate = PublishingGate.from_settings(with_public_keys(settings))
    await gate.start()
    assert await gate.wait_ready(10)
    assert await wait_for(lambda: gate.allowed().allowed)  # the plane's heartbeat vouches for the state
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
    forged = Keyring.generate("test1").sign(resume)  # right kid, another private key
    await produce(settings.kafka.bootstrap_servers, topic, b"global", forged.to_bytes())
    hmac_forged = Keyring({"test1": b"a guessed secret"}).sign(resume)  # the old scheme
    await produce(settings.kafka.bootstrap_servers, topic, b"global", hmac_forged.to_bytes())
    unsigned = resume.model_copy(update={"kid": None, "sig": None})
    await produce(settings.kafka.bootstrap_servers, topic, b"global", unsigned.to_bytes())
    await produce(settings.kafka.bootstrap_servers, topic, b"global", None)  # tombstone: would delete the pause
    await produce(settings.kafka.bootstrap_servers, topic, b"global", b"{not json")

    assert await wait_for(lambda: sum(gate.rejected.values()) >= 5)
    assert gate.rejected == {"bad_signature": 2, "unsigned": 1, "tombstone": 1, "malformed": 1}
    decision = gate.allowed(channel="twitter")
    assert not decision.allowed and decision.scope == "global" and decision.alert_id == "a-1"
    held = gate.status()["global"]
    assert (held.seq, held.state, held.episode) == (pause.seq, "paused", "a-1")  # maybe re-signed since
    assert rejected_total("gate", "bad_signature") == before + 2


async def test_late_resume_is_ignored_but_a_fresh_one_applies(control) -> None:
    settings, plane, gate = control
    pause = (await plane.pause("brand:acme", reason="crisis", actor="detector", alert_id="a-2")).message
    assert await wait_for(lambda: not gate.allowed(brand="acme").allowed)
    # A genuinely signed resume, but signed 10 minutes ago: held back, or replayed.
    old = utcnow() - timedelta(seconds=settings.control.control_max_age_seconds * 2)
    late = plane.keyring.sign(
        pause.model_copy(update={"state": "active", "actor": "alice", "seq": pause.seq + 1, "signed_at": old})
    )
    await produce(
        settings.kafka.bootstrap_servers, settings.topic("publishing.control"), b"brand:acme", late.to_bytes()
    )
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
    gate = PublishingGate.from_settings(settings, name="late-joiner")
    decision = gate.allowed(channel="twitter")  # not even started
    assert not decision.allowed and "not caught up" in decision.reason
    await gate.start()
    assert not gate.allowed(channel="twitter").allowed  # started, history not read yet
    assert await gate.wait_ready(10)
    assert gate.allowed(channel="twitter").allowed
    await gate.stop()


async def test_fails_closed_while_the_control_topic_does_not_exist(settings: Settings) -> None:
    settings = with_test_keys(settings)
    gate = PublishingGate.from_settings(with_public_keys(settings))
    await gate.start()
    await asyncio.sleep(1.0)
    assert not gate.allowed(channel="twitter").allowed  # no topic, no knowledge: closed
    await ensure_topics(settings.kafka.bootstrap_servers, settings)
    assert await gate.wait_ready(10)
    decision = gate.allowed(channel="twitter")  # an empty topic, and nobody vouches for it: closed
    assert not decision.allowed and "no signed state heartbeat" in decision.reason
    plane = ControlPlane.from_settings(settings)  # a writer heartbeats
    await plane.start()
    assert await wait_for(lambda: gate.allowed(channel="twitter").allowed)
    await plane.stop()
    await gate.stop()


async def test_fails_closed_when_its_view_goes_stale(settings: Settings) -> None:
    broker = EmbeddedBroker().start()  # a broker of its own, to take away
    try:
        settings = with_test_keys(settings, bootstrap_servers=broker.bootstrap_servers, gate_max_staleness_seconds=1.0)
        await ensure_topics(broker.bootstrap_servers, settings)
        plane = ControlPlane.from_settings(settings)
        await plane.start()
        gate = PublishingGate.from_settings(with_public_keys(settings))
        await gate.start()
        assert await gate.wait_ready(10)
        assert await wait_for(lambda: gate.allowed(channel="twitter").allowed)
        assert gate.view_age_seconds is not None and gate.view_age_seconds < 1.0
        stopping = asyncio.create_task(asyncio.to_thread(broker.stop))  # the broker goes away
        assert await wait_for(lambda: not gate.allowed(channel="twitter").allowed, timeout=15)
        decision = gate.allowed(channel="twitter")
        assert "failing closed" in decision.reason and gate.view_age_seconds > 1.0
        await stopping
        await gate.stop()
        await plane.stop()
    finally:
        broker.stop()


async def test_sync_gate_in_a_thread(control) -> None:
    settings, plane, _ = control
    sync_gate = SyncPublishingGate(settings.kafka, settings.control, name="sync")
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


async def test_a_held_post_is_never_skipped_by_a_later_pause_and_goes_out_before_new_posts(control) -> None:
    """The bug from the field: a post released under `hold` waited in the release queue, a brand pause with
    `skip` began, and on that resume the post was skipped. Released held posts also went out mixed in with
    new on-time posts."""
    _, plane, gate = control
    gate.backlog.release_per_second = 20.0
    await plane.pause("global", reason="crisis", actor="alice", on_resume="hold")
    assert await wait_for(lambda: not gate.allowed(channel="twitter").allowed)
    base = utcnow()
    for i in range(3):
        post = dict(channel="twitter", account="acme_us", brand="acme")
        gate.backlog.defer(f"held{i}", gate.allowed(**post), **post, due_at=base + timedelta(seconds=i))
    await plane.resume("global", reason="calm", actor="alice")
    assert await wait_for(lambda: len(gate.backlog.ready()) == 3)
    assert gate.backlog.counts() == {"global": {"waiting": 0, "review": 0, "ready": 3}}

    # a brand pause that skips begins while they wait in the release queue
    await plane.pause("brand:acme", reason="second wave", actor="bob", on_resume="skip")
    assert await wait_for(lambda: not gate.allowed(brand="acme").allowed)
    assert gate.backlog.take() is None  # blocked again: nothing goes out during the pause
    assert [p.post_id for p in gate.backlog.waiting()] == ["held0", "held1", "held2"]
    await plane.resume("brand:acme", reason="over", actor="bob")
    assert await wait_for(lambda: gate.allowed(brand="acme", channel="email").allowed)
    assert gate.backlog.skipped() == [], "a held post was skipped by a later pause"
    assert [p.post_id for p in gate.backlog.ready()] == ["held0", "held1", "held2"]

    # a new post of the same outlet goes after them; another outlet is not held up
    decision = gate.allowed(channel="twitter", account="acme_us", brand="acme")
    assert not decision.allowed and decision.behind_held and "go out first" in decision.reason
    gate.backlog.defer("new", decision, channel="twitter", account="acme_us", brand="acme")
    assert gate.allowed(channel="twitter", account="acme_eu", brand="acme").allowed
    released = [post.post_id async for post in gate.backlog.release(until_empty=True)]
    assert released == ["held0", "held1", "held2", "new"]
    assert gate.allowed(channel="twitter", account="acme_us", brand="acme").allowed  # the queue is empty again


async def test_key_rotation_across_writers_and_gates(settings: Settings) -> None:
    k1, k2 = fixed_key_pair("k1", "rotation"), fixed_key_pair("k2", "rotation")
    old_writer_settings = with_test_keys(settings, keys=k1.private)
    new_writer_settings = with_test_keys(settings, keys=k2.private, control_public_keys=k1.public)
    old_gate_settings = with_public_keys(settings, k1.public)
    rotated_gate_settings = with_public_keys(settings, f"{k2.public},{k1.public}")  # new key rolled out first
    old_writer = ControlPlane.from_settings(old_writer_settings)
    new_writer = ControlPlane.from_settings(new_writer_settings)
    await old_writer.start()
    await new_writer.start()
    old_gate = PublishingGate.from_settings(old_gate_settings, name="old")
    new_gate = PublishingGate.from_settings(rotated_gate_settings, name="rotated")
    for gate in (old_gate, new_gate):
        await gate.start()
        assert await gate.wait_ready(10)
    try:
        await old_writer.pause("brand:acme", reason="signed with k1", actor="alice")
        assert await wait_for(lambda: not new_gate.allowed(brand="acme").allowed)  # k1 still verifies
        assert await wait_for(lambda: not old_gate.allowed(brand="acme").allowed)
        await new_writer.pause("brand:globex", reason="signed with k2", actor="alice")
        assert await wait_for(lambda: not new_gate.allowed(brand="globex").allowed)
        assert await wait_for(lambda: old_gate.rejected["unknown_kid"] >= 1)  # not rolled out there yet
        # A gate that cannot verify the newest record of a scope does not call it active: it is unknown.
        decision = old_gate.allowed(brand="globex")
        assert not decision.allowed and decision.scope == "brand:globex" and "unknown_kid" in decision.reason
        assert new_gate.status()["brand:globex"].kid == "k2"
    finally:
        for gate in (old_gate, new_gate):
            await gate.stop()
        await new_writer.stop()
        await old_writer.stop()


# --- the findings of issue 9: never fail open -----------------------------------------------------------
async def test_a_gate_with_a_wrong_key_fails_closed_and_says_why(control) -> None:
    """Finding 3: a typo in a publisher's key used to disable the kill switch (allowed: True)."""
    settings, plane, _ = control
    await plane.pause("brand:acme", reason="recall", actor="detector", alert_id="a-3")
    wrong = with_public_keys(settings, fixed_key_pair("test1", "a typo").public)
    gate = PublishingGate.from_settings(wrong, name="wrong-key")
    await gate.start()
    try:
        assert await gate.wait_ready(10)
        started = time.monotonic()
        for post in ({"channel": "twitter"}, {"brand": "acme"}, {"brand": "globex", "account": "x"}):
            decision = gate.allowed(**post)
            assert not decision.allowed, post
        assert time.monotonic() - started < settings.control.gate_max_staleness_seconds
        reason = gate.allowed(channel="twitter").reason
        assert "cannot verify the control state" in reason and "bad_signature" in reason, reason
        assert gate.status() == {}
    finally:
        await gate.stop()


async def test_a_gate_fails_closed_after_the_broker_comes_back_empty(settings: Settings) -> None:
    """Finding 4: a running gate whose position is past the end of an emptied log must not call itself
    caught up; it re-reads, sees a new global pause, and the running plane restores what the log lost."""
    broker = EmbeddedBroker().start()
    port = broker.port
    settings = with_test_keys(settings, bootstrap_servers=broker.bootstrap_servers)
    plane = ControlPlane.from_settings(settings)  # e.g. the worker's plane, running through the outage
    gate = PublishingGate.from_settings(with_public_keys(settings), name="survivor")
    newcomer: ControlPlane | None = None
    try:
        await plane.start()
        await gate.start()
        assert await gate.wait_ready(10)
        for i in range(5):
            await plane.pause(f"brand:b{i}", reason="before the outage", actor="alice")
        assert await wait_for(lambda: len(gate.status()) == 5 and gate.allowed(channel="twitter").allowed)

        await asyncio.to_thread(broker.stop)
        broker = EmbeddedBroker(port=port).start()  # the same address, an empty log
        await ensure_topics(broker.bootstrap_servers, settings)
        newcomer = ControlPlane.from_settings(settings)  # e.g. a person's CLI, or a restarted worker
        await newcomer.start()
        paused_at = time.monotonic()
        await newcomer.pause("global", reason="new crisis after the restart", actor="carol")

        decisions: list[tuple[float, bool, str]] = []

        def closed_for_the_new_pause() -> bool:
            decision = gate.allowed(channel="twitter")
            decisions.append((time.monotonic() - paused_at, decision.allowed, decision.reason))
            return not decision.allowed and decision.scope == "global"

        # The rule: closed within the staleness limit (the moment it notices the log went backwards it
        # re-reads; until then its old view is still within its limit), and closed from then on.
        assert await wait_for(closed_for_the_new_pause, timeout=settings.control.gate_max_staleness_seconds)
        for _ in range(20):  # and it stays closed
            await asyncio.sleep(0.05)
            assert not gate.allowed(channel="twitter").allowed
        closed_at = next(t for t, allowed, _ in decisions if not allowed)
        assert closed_at <= settings.control.gate_max_staleness_seconds, decisions
        assert not any(allowed for t, allowed, _ in decisions if t > closed_at), decisions
        assert gate.feed.follower.resets >= 1
        # The plane that ran through the outage put back what the log lost; the new pause still wins.
        assert await wait_for(lambda: {f"brand:b{i}" for i in range(5)} <= set(gate.status()), timeout=10)
        assert gate.status()["global"].paused and gate.status()["global"].actor == "carol"
    finally:
        if newcomer is not None:
            await newcomer.stop()
        await gate.stop()
        await plane.stop()
        broker.stop()


async def test_a_late_resume_loses_for_readers_that_start_later(settings: Settings) -> None:
    """Finding 6: a genuinely signed resume that reaches the log after max age is refused by every
    reader, including one that starts afterwards and reads it as history, with no writer left to repair."""
    settings = with_test_keys(
        settings, control_max_age_seconds=2.0, control_reassert_seconds=0.3, control_heartbeat_max_age_seconds=10.0
    )
    plane = ControlPlane.from_settings(settings)  # the worker's own plane: no scheduler runs
    await plane.start()
    running = PublishingGate.from_settings(with_public_keys(settings), name="running")
    await running.start()
    assert await running.wait_ready(10)
    try:
        pause = (await plane.pause("global", reason="crisis", actor="detector", alert_id="a-6")).message
        now = utcnow()
        late = plane.keyring.sign(
            pause.model_copy(
                update={
                    "state": "active",
                    "actor": "alice",
                    "reason": "all clear",
                    "seq": pause.seq + 1,
                    "issued_at": now,
                    "signed_at": now,
                }
            )
        )  # fmt: skip   (genuinely signed, then held back)
        beyond = late.signed_at + timedelta(seconds=settings.control.control_max_age_seconds + 0.5)
        assert await wait_for(lambda: (hb := plane.feed.view.heartbeat) is not None and hb.signed_at > beyond, 10)
    finally:
        await plane.stop()  # nobody is left to re-sign or repair anything
    await produce(settings.kafka.bootstrap_servers, settings.topic("publishing.control"), b"global", late.to_bytes())
    assert await wait_for(lambda: running.rejected["stale"] == 1)
    assert not running.allowed(channel="twitter").allowed
    await running.stop()

    later = PublishingGate.from_settings(with_public_keys(settings), name="later")
    await later.start()
    try:
        assert await later.wait_ready(10)
        assert later.rejected["stale"] == 1
        decision = later.allowed(channel="twitter")
        assert not decision.allowed and decision.scope == "global" and decision.alert_id == "a-6", decision
        assert later.status()["global"].paused
    finally:
        await later.stop()


async def test_a_gate_fails_closed_when_nobody_signs_the_state_any_more(settings: Settings) -> None:
    """A stale log: the last writer stopped, so the newest heartbeat ages past its limit."""
    settings = with_test_keys(settings, control_reassert_seconds=0.3, control_heartbeat_max_age_seconds=1.5)
    plane = ControlPlane.from_settings(settings)
    await plane.start()
    gate = PublishingGate.from_settings(with_public_keys(settings), name="stale-log")
    await gate.start()
    try:
        assert await gate.wait_ready(10)
        assert await wait_for(lambda: gate.allowed().allowed)
        await plane.stop()
        stopped = time.monotonic()
        assert await wait_for(lambda: not gate.allowed().allowed, timeout=5)
        assert time.monotonic() - stopped <= settings.control.control_heartbeat_max_age_seconds + 0.5
        reason = gate.allowed().reason
        assert "heartbeat" in reason and "failing closed" in reason
        assert gate.view_age_seconds is not None and gate.view_age_seconds < 1.0  # the view itself is fresh
    finally:
        await gate.stop()

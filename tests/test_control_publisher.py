"""The example publishing service respects a pause and releases held posts after the resume."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from types import ModuleType

from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control import ControlPlane, PublishingGate
from crisiswatch.control.testing import with_public_keys, with_test_keys
from crisiswatch.control.view import Ingested
from crisiswatch.settings import Settings


async def test_example_publisher_defers_during_a_pause_and_releases_after(
    settings: Settings, example_publisher: ModuleType
) -> None:
    settings = with_test_keys(settings, backlog_release_per_second=50.0)
    plane = ControlPlane.from_settings(settings)
    await plane.start()
    public_only = with_public_keys(settings)  # a publisher holds only the public key
    gate = PublishingGate(public_only.kafka, public_only.control, name="example")
    seen: dict[str, datetime] = {}

    def note(result: Ingested) -> None:
        if result.changed and result.message is not None:
            seen[result.message.state] = utcnow()

    gate.add_listener(note)
    await gate.start()
    assert await gate.wait_ready(10)
    try:
        posts = example_publisher.demo_posts(30, 0.1, start=utcnow() + timedelta(seconds=0.3))
        publisher = example_publisher.ExamplePublisher(gate, posts)
        running = asyncio.create_task(publisher.run(linger_seconds=1.0))
        await asyncio.sleep(1.0)
        await plane.pause("brand:acme", reason="crisis", actor="detector", alert_id="a-1", on_resume="hold")
        await asyncio.sleep(1.0)
        await plane.resume("brand:acme", reason="calm", actor="alice")
        await running
    finally:
        await gate.stop()
        await plane.stop()

    paused_at, resumed_at = seen["paused"], seen["active"]
    by_id = {p.post_id: p for p in posts}
    deferred = [post_id for post_id, _, _ in publisher.deferred]
    assert deferred, "some acme posts fell due during the pause"
    assert all(by_id[p].brand == "acme" for p in deferred)
    for post_id, at, how in publisher.published:
        if how == "on-time" and by_id[post_id].brand == "acme":
            assert not (paused_at <= at <= resumed_at), f"{post_id} went out during the pause"
    globex_during_pause = [
        p for p, at, how in publisher.published if by_id[p].brand == "globex" and paused_at < at < resumed_at
    ]
    assert globex_during_pause, "another brand keeps publishing"
    released = [(p, at) for p, at, how in publisher.published if how == "released"]
    assert [p for p, _ in released] == deferred  # all held posts, in due order
    assert all(at >= resumed_at for _, at in released)
    assert len(publisher.published) == len(posts)
    assert not gate.backlog.waiting()

"""Reminders and escalation of unacknowledged critical alerts: the policy with an injected clock, and the
dispatcher on a real broker delivering to local HTTP receivers on two routes (no sleeps: the clock is given)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from crisiswatch.alerting import AckPublisher, AlertAck, AlertDispatcher
from crisiswatch.alerting.policy import DeliveryPolicy, ReminderPolicy
from crisiswatch.contracts.records import Alert
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings

MIN = timedelta(minutes=1)


def alert(severity: str, at: datetime, status: str = "firing", alert_id: str = "acme:1", **evidence: Any) -> Alert:
    return Alert(
        alert_id=alert_id, brand="acme", status=status, severity=severity, risk=90.0, event_time=at,
        window_start=at - MIN, summary="acme: 900 mentions vs 40 expected", explanation=["volume 22x"],
        evidence=dict(evidence), pause=False, created_at=at,
    )  # fmt: skip


# --- the policy ---------------------------------------------------------------------------------------------


def test_reminders_then_escalation_until_someone_acknowledges() -> None:
    t0 = utcnow()
    policy = DeliveryPolicy(reminders=ReminderPolicy(remind_after_seconds=300, escalate_after_seconds=900))
    assert policy.on_alert(alert("warning", t0), now=t0).event == "opened"
    assert policy.due(t0 + 10 * MIN) == []  # a warning is never reminded
    assert policy.on_alert(alert("critical", t0 + MIN), now=t0 + MIN).event == "escalated"
    assert policy.due(t0 + 5 * MIN) == []  # 4 minutes after it became critical
    first = policy.due(t0 + 6 * MIN)
    assert [(n.event, n.reminder, n.routes) for n in first] == [("reminder", 1, ("primary",))]
    assert first[0].idempotency_key == "acme:1:reminder:critical:1"
    assert policy.due(t0 + 7 * MIN) == []  # each reminder once
    due = policy.due(t0 + 16 * MIN)
    assert [(n.event, n.reminder, n.routes) for n in due] == [
        ("escalation", 0, ("escalation",)),
        ("reminder", 3, ("primary", "escalation")),
    ]
    assert policy.due(t0 + 16 * MIN) == []
    ack = AlertAck(alert_id="acme:1", brand="acme", actor="maria", at=t0 + 17 * MIN)
    acknowledged = policy.on_ack(ack, now=t0 + 17 * MIN)
    assert acknowledged is not None and acknowledged.routes == ("primary", "escalation")  # the on-call hears it
    assert policy.due(t0 + 60 * MIN) == []


def test_no_reminder_when_off_acknowledged_resolved_or_silenced() -> None:
    t0 = utcnow()
    off = DeliveryPolicy()
    off.on_alert(alert("critical", t0), now=t0)
    assert off.due(t0 + 600 * MIN) == []
    policy = DeliveryPolicy(reminders=ReminderPolicy(remind_after_seconds=60))
    policy.on_alert(alert("critical", t0, alert_id="a"), now=t0)
    policy.on_ack(AlertAck(alert_id="a", actor="sam", at=t0), now=t0)
    policy.on_alert(alert("critical", t0, alert_id="b"), now=t0)
    policy.on_alert(alert("critical", t0 + MIN, status="resolved", alert_id="b"), now=t0 + MIN)
    silence = {"id": "launch", "reason": "product launch", "by": "alice"}
    policy.on_alert(alert("critical", t0, alert_id="c", silence=silence), now=t0)
    assert policy.due(t0 + 30 * MIN) == []
    with pytest.raises(ValueError):
        ReminderPolicy(remind_after_seconds=-1)


# --- the dispatcher on the broker ---------------------------------------------------------------------------


@dataclass
class Hook:
    """A JSON webhook receiver that keeps what it gets."""

    events: list[tuple[str, str]] = field(default_factory=list)
    """(X-Crisiswatch-Event, Idempotency-Key) per delivery."""
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(json.loads(await request.read()))
        self.events.append((request.headers["X-Crisiswatch-Event"], request.headers["Idempotency-Key"]))
        return web.Response(status=204)


async def until(predicate: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[Hook, Hook, str, str]]:
    team, oncall = Hook(), Hook()
    servers = [TestServer(h.app(), host="127.0.0.1") for h in (team, oncall)]
    for server in servers:
        await server.start_server()
    try:
        yield team, oncall, str(servers[0].make_url("/hook")), str(servers[1].make_url("/hook"))
    finally:
        for server in servers:
            await server.close()


async def test_dispatcher_reminds_and_escalates_to_the_second_route(
    kafka_bootstrap: str, settings: Settings, hooks: tuple[Hook, Hook, str, str]
) -> None:
    team, oncall, team_url, oncall_url = hooks
    s = settings.model_copy(
        update={
            "alert_webhook_url": SecretStr(team_url),
            "alert_escalation_webhook_url": SecretStr(oncall_url),
            "alert_remind_minutes": 5.0,
            "alert_escalate_minutes": 15.0,
            "alert_retry_backoff_seconds": 0.05,
        }
    )
    await ensure_topics(kafka_bootstrap, s)
    t0 = utcnow()
    dispatcher = AlertDispatcher(s, clock=lambda: t0, reminder_check_seconds=3600)  # the test drives the clock
    assert [(w.channel.name, sorted(w.routes)) for w in dispatcher.workers] == [
        ("webhook", ["primary"]),
        ("escalation", ["escalation"]),
    ]
    await dispatcher.start()
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
        await producer.start()
        try:
            record = alert("critical", t0)
            await producer.send_and_wait(s.topic("alerts"), record.model_dump_json().encode(), key=b"acme")
        finally:
            await producer.stop()
        await until(lambda: team.events, "the alert")
        assert await dispatcher.caught_up.wait() is True
        assert await dispatcher.remind(t0 + 4 * MIN) == []
        assert [n.event for n in await dispatcher.remind(t0 + 5 * MIN)] == ["reminder"]
        await until(lambda: len(team.events) == 2, "the reminder")
        escalated = await dispatcher.remind(t0 + 15 * MIN)
        assert [n.event for n in escalated] == ["escalation", "reminder"]
        await until(lambda: len(oncall.events) == 2 and len(team.events) == 3, "the escalation")

        async with AckPublisher(s) as acks:
            await acks.publish(AlertAck(alert_id="acme:1", brand="acme", actor="maria", note="on it"))
        await until(lambda: len(oncall.events) == 3 and len(team.events) == 4, "the acknowledgement")
        assert await dispatcher.remind(t0 + 60 * MIN) == []
        assert await dispatcher.idle()
    finally:
        await dispatcher.stop()

    assert team.events == [
        ("opened", "acme:1:opened:critical"),
        ("reminder", "acme:1:reminder:critical:1"),
        ("reminder", "acme:1:reminder:critical:3"),
        ("acknowledged", team.events[3][1]),
    ]
    assert oncall.events[:2] == [
        ("escalation", "acme:1:escalation:critical"),
        ("reminder", "acme:1:reminder:critical:3"),
    ]
    assert oncall.events[2][0] == "acknowledged"
    assert oncall.bodies[0]["event"] == "escalation" and oncall.bodies[0]["alert"]["alert_id"] == "acme:1"

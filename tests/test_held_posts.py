"""Resume with eyes open: publishing gates report the posts they hold; the page and the CLI show them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from crisiswatch.cli import app
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control import ControlPlane, PublishingGate
from crisiswatch.control.held import HeldBoard, describe_held
from crisiswatch.control.testing import TEST_KEYS, wait_for, with_public_keys, with_test_keys
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings
from crisiswatch.web.server import WebServer

TOKEN = "t0ken-for-the-held-posts-test-0123"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def held_setup(settings: Settings) -> AsyncIterator[tuple[Settings, ControlPlane, PublishingGate, WebServer]]:
    """A heartbeating plane, a gate that reports every 0.1 s, and the page server."""
    settings = with_test_keys(settings, gate_held_report_seconds=0.1)
    await ensure_topics(settings.kafka.bootstrap_servers, settings)
    plane = ControlPlane.from_settings(settings)
    await plane.start()
    gate = PublishingGate.from_settings(with_public_keys(settings, gate_held_report_seconds=0.1), name="shop-publisher")
    await gate.start()
    assert await gate.wait_ready(10)
    web_settings = settings.model_copy(update={"api_token": SecretStr(TOKEN), "page_port": 0})
    server = WebServer(web_settings, plane=plane, port=0)
    await server.start()
    try:
        yield settings, plane, gate, server
    finally:
        await server.stop()
        await gate.stop()
        await plane.stop()


async def held_json(server: WebServer) -> dict:
    async with aiohttp.ClientSession() as http, http.get(server.url + "api/held", headers=BEARER) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_the_page_and_the_cli_show_what_is_held_before_a_resume(held_setup) -> None:
    settings, plane, gate, server = held_setup
    await plane.pause("brand:acme", reason="recall", actor="alice", on_resume="review")
    assert await wait_for(lambda: not gate.allowed(brand="acme").allowed, 10)
    base = utcnow()
    for i in range(3):
        post = dict(channel="twitter", account="acme_us", brand="acme")
        gate.backlog.defer(f"p{i}", gate.allowed(**post), **post, due_at=base + timedelta(seconds=i))

    board = server.services.held
    assert isinstance(board, HeldBoard)
    assert await wait_for(lambda: "brand:acme" in board.summary()["scopes"], 15)
    body = await held_json(server)
    assert body["scopes"]["brand:acme"] == {
        "held": 3, "awaiting_review": 0, "ready": 0, "publishers": 1, "on_resume": "review",
    }  # fmt: skip
    assert body["reporting_publishers"] == 1 and body["known"] is True

    # the CLI says the same before it resumes, and the person chooses `hold` instead of the scope's `review`
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "",
        "CRISISWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "CRISISWATCH_CONTROL_KEYS": TEST_KEYS,
        "CRISISWATCH_USER": "bob",
    }
    args = ["resume", "--scope", "brand:acme", "--reason", "recall done", "--on-resume", "hold"]
    result = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "brand:acme: 3 held, 0 awaiting review, 0 going out (1 publisher(s))" in result.output
    assert "on resume: hold" in result.output

    assert await wait_for(lambda: len(gate.backlog.ready()) == 3, 10)
    released = [post.post_id async for post in gate.backlog.release(until_empty=True)]
    assert released == ["p0", "p1", "p2"]
    assert await wait_for(lambda: not board.summary()["scopes"], 15)  # the gate reported its empty backlog

    await gate.stop()  # a stopping gate removes its report (tombstone)
    assert await wait_for(lambda: not board.reports, 15)


def test_describe_held_lines() -> None:
    summary = {
        "known": True,
        "as_of": None,
        "reporting_publishers": 2,
        "stale_publishers": 1,
        "scopes": {"global": {"held": 4, "awaiting_review": 1, "ready": 0, "publishers": 2}},
    }
    assert describe_held(summary, "global") == (
        "held posts: global: 4 held, 1 awaiting review, 0 going out (2 publisher(s)); 1 publisher(s) stopped reporting"
    )
    assert describe_held(summary, "brand:acme").startswith("held posts for brand:acme: none reported by 2")
    assert describe_held(None).startswith("held posts: unknown")

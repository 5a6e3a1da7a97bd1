"""The webhook relay against the real broker and a local aiohttp server."""

from __future__ import annotations

import json
import time

import pytest
from aiohttp import web

from crisiswatch.control import ControlMessage, ControlPlane
from crisiswatch.control.relay import Relay
from crisiswatch.control.testing import wait_for, with_public_keys, with_test_keys
from crisiswatch.settings import Settings


class FlakyReceiver:
    """Fails the first ``failures`` calls with 503, then answers 200; records what it got."""

    def __init__(self, failures: int):
        self.failures = failures
        self.calls: list[tuple[str | None, dict]] = []
        self.times: list[float] = []
        self.accepted: list[tuple[str | None, dict]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        call = (request.headers.get("Idempotency-Key"), body)
        self.calls.append(call)
        self.times.append(time.monotonic())
        if len(self.calls) <= self.failures:
            return web.Response(status=503, headers={"Retry-After": "0"})
        self.accepted.append(call)
        return web.json_response({"ok": True})


@pytest.fixture
async def receiver():
    flaky = FlakyReceiver(failures=2)
    app = web.Application()
    app.router.add_post("/hook", flaky.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield flaky, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


async def test_relay_retries_with_backoff_and_sends_idempotency_keys(settings: Settings, receiver) -> None:
    flaky, url = receiver
    settings = with_test_keys(settings, relay_urls=[url, "http://127.0.0.1:9/unreachable"], relay_max_attempts=3)
    plane = ControlPlane.from_settings(settings)
    await plane.start()
    relay = Relay(settings, backoff_initial_seconds=0.05, timeout_seconds=2)
    await relay.start()
    try:
        paused = (await plane.pause("global", reason="crisis", actor="detector", alert_id="a-1")).message
        assert await wait_for(lambda: len(flaky.accepted) == 1, timeout=10)
        assert len(flaky.calls) == 3  # 503, 503, then 200: the same change each time
        first_wait, second_wait = flaky.times[1] - flaky.times[0], flaky.times[2] - flaky.times[1]
        assert first_wait >= 0.05 * 0.8 and second_wait > first_wait  # exponential backoff
        keys = {key for key, _ in flaky.calls}
        assert keys == {f"global:{paused.seq}"} == {paused.change_key}
        delivered = ControlMessage.model_validate(flaky.accepted[0][1])
        plane.keyring.verify_record(delivered, ControlMessage)  # the receiver can check the signature
        assert delivered == paused

        await plane.reassert()  # a re-assertion is not a new change: not sent again
        resumed = (await plane.resume("global", reason="over", actor="alice")).message
        assert await wait_for(lambda: len(flaky.accepted) == 2, timeout=10)
        assert flaky.accepted[1][0] == resumed.change_key and flaky.accepted[1][1]["state"] == "active"
        assert await relay.drain(timeout=10)
        assert relay.outcomes["delivered"] == 2
        assert relay.outcomes["failed"] == 2  # the unreachable URL, given up after 3 attempts each
        assert len(flaky.calls) == 4
    finally:
        await relay.stop()
        await plane.stop()


async def test_relay_sends_current_state_on_start(settings: Settings, receiver) -> None:
    flaky, url = receiver
    flaky.failures = 0
    settings = with_test_keys(settings, relay_urls=[url])
    plane = ControlPlane.from_settings(settings)
    await plane.start()
    try:
        await plane.pause("brand:acme", reason="recall", actor="bob")
        await plane.pause("channel:ads", reason="crisis", actor="detector", alert_id="a-2")
        relay = Relay(settings, backoff_initial_seconds=0.05)
        await relay.start()
        try:
            assert await wait_for(lambda: len(flaky.accepted) == 2, timeout=10)
        finally:
            await relay.stop()
    finally:
        await plane.stop()
    assert sorted(body["scope"] for _, body in flaky.accepted) == ["brand:acme", "channel:ads"]
    assert all(json.dumps(body) for _, body in flaky.accepted)


def test_relay_needs_urls_and_keys(settings: Settings) -> None:
    with pytest.raises(ValueError, match="CRISISWATCH_RELAY_URLS"):
        Relay(with_test_keys(settings))
    with pytest.raises(ValueError, match="CRISISWATCH_CONTROL_PUBLIC_KEYS"):
        Relay(settings.model_copy(update={"relay_urls": ["http://x"]}))
    Relay(with_public_keys(settings, relay_urls=["http://x"]))  # a public key is all a relay needs

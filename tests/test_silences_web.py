"""Silences over the HTTP API against a real broker: authenticated, validated, signed, durable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from crisiswatch.contracts.control import Silence
from crisiswatch.control.silences import SilenceStore
from crisiswatch.control.testing import fixed_key_pair
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings
from crisiswatch.web.server import WebServer

TOKEN = "t0ken-for-the-silences-api-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def web_settings(settings: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "control_keys": SecretStr(fixed_key_pair("k1", "silences").private),
        "api_token": SecretStr(TOKEN),
        "api_token_actor": "release-bot",
        "page_port": 0,
        **overrides,
    }
    return settings.model_copy(update=values)


@pytest.fixture
async def server(kafka_bootstrap: str, settings: Settings) -> AsyncIterator[WebServer]:
    s = web_settings(settings)
    await ensure_topics(kafka_bootstrap, s)
    async with WebServer(s, port=0) as web:
        yield web


async def call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One request; 503 while the server's silence store is still reading its topic is retried."""
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            async with http.request(method, url, json=body, headers=headers) as r:
                data = await r.json()
                if r.status != 503 or "loading" not in data.get("error", ""):
                    return r.status, data
            await asyncio.sleep(0.05)
    raise AssertionError("the silence store never became ready")


async def test_silences_over_the_api(server: WebServer) -> None:
    url = server.url + "api/silences"
    assert (await call("GET", url))[0] == 401
    assert (await call("POST", url, {"brand": "acme", "reason": "launch", "until": "2h"}))[0] == 401
    status, body = await call("POST", url, {"brand": "acme", "reason": "launch", "until": "90"}, BEARER)
    assert status == 400 and "durations need units" in body["error"]
    body = {"brand": "acme", "reason": "launch", "from": "2020-01-01T10:00:00Z", "until": "2h"}
    status, answer = await call("POST", url, body, BEARER)
    assert status == 400 and "in the past" in answer["error"]
    status, answer = await call("POST", url, {"brand": "acme", "reason": "spring launch", "until": "3h"}, BEARER)
    assert status == 201, answer
    silence = answer["silence"]
    assert (silence["brand"], silence["created_by"], silence["active_now"]) == ("acme", "release-bot", True)
    start, end = datetime.fromisoformat(silence["start"]), datetime.fromisoformat(silence["end"])
    assert end - start == timedelta(hours=3)
    body = {"brand": "acme", "reason": "again", "until": "1h", "id": silence["id"]}
    assert (await call("POST", url, body, BEARER))[0] == 409
    status, listed = await call("GET", url, headers=BEARER)
    assert status == 200 and [s["id"] for s in listed["silences"]] == [silence["id"]]

    # durable and signed: a fresh reader with the public key finds it
    assert server.services is not None
    async with SilenceStore(server.settings) as reader:
        found = reader.get(silence["id"])
    assert isinstance(found, Silence) and found.sig and found.reason == "spring launch"

    status, _ = await call("DELETE", f"{url}/{silence['id']}", headers=BEARER)
    assert status == 200
    assert (await call("GET", url, headers=BEARER))[1]["silences"] == []
    assert (await call("DELETE", f"{url}/{silence['id']}", headers=BEARER))[0] == 404


async def test_a_viewer_may_read_silences_but_not_plan_them(kafka_bootstrap: str, settings: Settings) -> None:
    s = web_settings(settings, api_token_role="viewer")
    await ensure_topics(kafka_bootstrap, s)
    async with WebServer(s, port=0) as web:
        url = web.url + "api/silences"
        assert (await call("GET", url, headers=BEARER))[0] == 200
        status, body = await call("POST", url, {"brand": "acme", "reason": "launch", "until": "2h"}, BEARER)
        assert status == 403 and "viewer" in body["error"]

"""The HTTP API over real HTTP against a real broker: auth, CSRF, origin, rate limits, every endpoint."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from argon2 import PasswordHasher
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from crisiswatch.contracts.control import ControlMessage
from crisiswatch.contracts.records import Alert, AlertAck
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control.messages import Keyring
from crisiswatch.control.testing import fixed_key_pair, produce
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings
from crisiswatch.web.auth import Authenticator, ConfigError, RateLimiter, parse_users
from crisiswatch.web.server import SESSION_COOKIE, WebServer

TOKEN = "t0ken-for-the-api-0123456789"
# Argon2id hashes with test-sized costs (the parameters travel in the hash; production uses the defaults).
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
USERS = f"maria:{FAST.hash('correct horse')},sam:{FAST.hash('s3cret:with:colons')}"


def web_settings(settings: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "control_keys": SecretStr(fixed_key_pair("k1", "web").private),
        "web_users": SecretStr(USERS),
        "web_roles": "maria:admin,sam:admin",
        "api_token": SecretStr(TOKEN),
        "api_token_actor": "release-bot",
        "api_token_role": "admin",
        "page_port": 0,
        "public_url": "https://crisis.example.org/",
        "brands_file": settings.worker.brands_file,  # explicit: without a brands file the page lists no brands
        **overrides,
    }
    return settings.model_copy(update=values)


@pytest.fixture
async def server(kafka_bootstrap: str, settings: Settings) -> AsyncIterator[WebServer]:
    s = web_settings(settings)
    await ensure_topics(kafka_bootstrap, s)
    async with WebServer(s, port=0) as web:
        yield web


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


BEARER = {"Authorization": f"Bearer {TOKEN}"}


async def login(http: aiohttp.ClientSession, server: WebServer, user: str = "maria", pw: str = "correct horse") -> str:
    async with http.post(server.url + "api/login", json={"username": user, "password": pw}) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["csrf_token"]


async def control_records(settings: Settings) -> list[tuple[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        settings.topic("publishing.control"), bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=2000)
        return [(m.key, m.value) for msgs in batches.values() for m in msgs]
    finally:
        await consumer.stop()


async def test_health_and_readiness(server: WebServer, http: aiohttp.ClientSession) -> None:
    async with http.get(server.url + "healthz") as r:
        assert r.status == 200 and (await r.json()) == {"status": "ok"}
    async with http.get(server.url + "readyz") as r:
        body = await r.json()
        assert r.status == 200 and body["ready"] is True and body["control_view_age_seconds"] < 5


async def test_unauthenticated_requests_are_refused(server: WebServer, http: aiohttp.ClientSession) -> None:
    for method, path in (("GET", "api/state"), ("POST", "api/pause"), ("GET", "api/alerts"), ("GET", "api/schedules")):
        async with http.request(method, server.url + path, json={}) as r:
            assert r.status == 401, path
            assert (await r.json())["error"] == "authentication required"
    for headers in ({"Authorization": "Bearer wrong"}, basic("maria", "wrong"), basic("nobody", "correct horse")):
        async with http.post(server.url + "api/pause", json={}, headers=headers) as r:
            assert r.status == 401
    assert server.services is not None
    assert not server.services.plane.status()  # nothing was paused


async def test_pause_and_resume_record_the_authenticated_actor(server: WebServer, http: aiohttp.ClientSession) -> None:
    async with http.post(
        server.url + "api/pause", json={"reason": "recall story"}, headers=basic("maria", "correct horse")
    ) as r:
        assert r.status == 200
        body = await r.json()
    assert body["changed"] and body["state"]["paused"] and body["state"]["actor"] == "maria"
    async with http.get(server.url + "api/state", headers=BEARER) as r:
        state = await r.json()
    assert state["global"]["paused"] and state["global"]["reason"] == "recall story"
    assert state["paused_scopes"] == ["global"]
    assert {"brand:acme", "brand:globex", "brand:initech"} <= {s["scope"] for s in state["scopes"]}

    body = {"scope": "channel:tiktok", "reason": "tiktok trend"}
    async with http.post(server.url + "api/pause", json=body, headers=BEARER) as r:
        assert (await r.json())["state"]["actor"] == "release-bot"
    resumed = {"reason": "story corrected"}
    async with http.post(server.url + "api/resume", json=resumed, headers=basic("sam", "s3cret:with:colons")) as r:
        body = await r.json()
    assert (
        r.status == 200 and body["changed"] and body["state"]["state"] == "active" and body["state"]["actor"] == "sam"
    )

    # Every change is a signed message on the control topic, by the authenticated person.
    records = await control_records(server.settings)
    keyring = Keyring.from_settings(server.settings.control)
    messages = [keyring.verify_record(value, ControlMessage) for _, value in records]
    assert [(m.scope, m.state, m.actor) for m in messages] == [
        ("global", "paused", "maria"),
        ("channel:tiktok", "paused", "release-bot"),
        ("global", "active", "sam"),
    ]


async def scrape(http: aiohttp.ClientSession, server: WebServer) -> dict[tuple[str, frozenset[Any]], float]:
    """Every sample of the page's open ``/metrics``, by (name, labels)."""
    async with http.get(server.url + "metrics") as r:  # no credentials: open, like the probes
        assert r.status == 200 and r.content_type == "text/plain"
        assert r.headers["Cache-Control"] == "no-store"
        text = await r.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_count_what_is_done_through_the_page(server: WebServer, http: aiohttp.ClientSession) -> None:
    """The control plane that `serve` runs counts into the registry its /metrics serves."""
    pauses = ("crisiswatch_control_changes_total", frozenset({("action", "pause"), ("actor_kind", "person")}))
    resumes = ("crisiswatch_control_changes_total", frozenset({("action", "resume"), ("actor_kind", "person")}))
    rejected = frozenset({("component", "plane"), ("reason", "bad_signature")})
    forged = ("crisiswatch_control_messages_rejected_total", rejected)
    paused = ("crisiswatch_scope_paused", frozenset({("scope", "global")}))
    maria = basic("maria", "correct horse")
    before = await scrape(http, server)  # counters and the gauge are per process: earlier tests count too

    async with http.post(server.url + "api/pause", json={"reason": "recall"}, headers=maria) as r:
        assert r.status == 200
    after = await scrape(http, server)
    assert after[pauses] == before.get(pauses, 0.0) + 1
    assert after[paused] == 1.0

    # A forged resume on the control topic: refused by the page's plane, and counted.
    fake = Keyring({"k1": b"not-the-real-key"}).sign(
        ControlMessage(scope="global", state="active", reason="forged", actor="mallory", episode="x",
                       seq=10**15, issued_at=utcnow(), signed_at=utcnow(), on_resume="skip")
    )  # fmt: skip
    topic = server.settings.topic("publishing.control")
    bootstrap = server.settings.kafka.bootstrap_servers or ""
    await produce(bootstrap, topic, b"global", fake.to_bytes(), settings=server.settings)
    for _ in range(100):
        if (now := await scrape(http, server)).get(forged, 0.0) > before.get(forged, 0.0):
            break
        await asyncio.sleep(0.05)
    assert now[forged] == before.get(forged, 0.0) + 1 and now[paused] == 1.0

    async with http.post(server.url + "api/resume", json={"reason": "over"}, headers=maria) as r:
        assert r.status == 200
    after = await scrape(http, server)
    assert after[resumes] == before.get(resumes, 0.0) + 1
    assert after[paused] == 0.0


async def test_session_cookie_csrf_and_origin(server: WebServer, http: aiohttp.ClientSession) -> None:
    async with http.post(server.url + "api/login", json={"username": "maria", "password": "nope"}) as r:
        assert r.status == 401
    async with http.post(server.url + "api/login", json={"username": "maria", "password": "correct horse"}) as r:
        assert r.status == 200
        csrf = (await r.json())["csrf_token"]
        cookie = r.cookies[SESSION_COOKIE]
    assert cookie["httponly"] is True and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    async with http.get(server.url + "api/session") as r:
        me = await r.json()
    assert {k: me[k] for k in ("user", "method", "csrf_token", "role")} == {
        "user": "maria", "method": "session", "csrf_token": csrf, "role": "admin",
    }  # fmt: skip
    assert me["can"]["resume_global"] is True and me["reason_required"] is True

    # the cookie alone does not allow a change
    async with http.post(server.url + "api/pause", json={}) as r:
        assert r.status == 403 and "X-CSRF-Token" in (await r.json())["error"]
    async with http.post(server.url + "api/pause", json={}, headers={"X-CSRF-Token": "forged"}) as r:
        assert r.status == 403
    # a cross-site page cannot send it either, even with the token
    cross = {"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
    async with http.post(server.url + "api/pause", json={}, headers=cross) as r:
        assert r.status == 403 and "cross-origin" in (await r.json())["error"]
    async with http.post(
        server.url + "api/pause", json={}, headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}
    ) as r:
        assert r.status == 403
    assert server.services is not None and not server.services.plane.status()
    # same origin, or the configured public origin, with the token: accepted
    async with http.post(
        server.url + "api/pause", json={"reason": "recall"},
        headers={"X-CSRF-Token": csrf, "Origin": server.url.rstrip("/")},
    ) as r:  # fmt: skip
        assert r.status == 200 and (await r.json())["state"]["actor"] == "maria"
    headers = {"X-CSRF-Token": csrf, "Origin": "https://crisis.example.org"}
    async with http.post(server.url + "api/pause", json={"scope": "brand:acme", "reason": "x"}, headers=headers) as r:
        assert r.status == 200
    # logging out ends the session
    async with http.post(server.url + "api/logout", headers={"X-CSRF-Token": csrf}) as r:
        assert r.status == 200
    async with http.get(server.url + "api/state") as r:
        assert r.status == 401


async def test_security_headers(server: WebServer, http: aiohttp.ClientSession) -> None:
    async with http.get(server.url) as r:
        assert r.status == 200 and "Pause all publishing" in await r.text()
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
    async with http.get(server.url + "static/app.js") as r:
        assert r.status == 200 and "textContent" in await r.text()
    async with http.get(server.url + "api/state", headers=BEARER) as r:
        assert r.headers["Cache-Control"] == "no-store"


async def test_control_endpoints_are_rate_limited(
    kafka_bootstrap: str, settings: Settings, http: aiohttp.ClientSession
) -> None:
    s = web_settings(settings, web_rate_limit_per_minute=3)
    await ensure_topics(kafka_bootstrap, s)
    async with WebServer(s, port=0) as server:
        statuses = []
        for i in range(5):
            body = {"scope": f"account:a{i}", "reason": "spam wave"}
            async with http.post(server.url + "api/pause", json=body, headers=BEARER) as r:
                statuses.append(r.status)
                retry_after = r.headers.get("Retry-After")
        assert statuses == [200, 200, 200, 429, 429]
        assert retry_after is not None and int(retry_after) >= 1
        # another user has their own budget; reading is not limited
        async with http.post(
            server.url + "api/pause",
            json={"scope": "account:b", "reason": "spam"},
            headers=basic("maria", "correct horse"),
        ) as r:
            assert r.status == 200
        for _ in range(5):
            async with http.get(server.url + "api/state", headers=BEARER) as r:
                assert r.status == 200
        # wrong passwords are throttled per (account, client): five free, then 429 (tests/test_web_auth.py)
        codes = []
        for _ in range(6):
            async with http.post(server.url + "api/login", json={"username": "maria", "password": "guess"}) as r:
                codes.append(r.status)
        assert codes[:5] == [401] * 5 and codes[5] in (401, 429)


async def test_schedules_endpoints(server: WebServer, http: aiohttp.ClientSession) -> None:
    start = utcnow() + timedelta(days=1)
    body = {"id": "mourning", "reason": "national day of mourning", "start": start.isoformat(),
            "end": (start + timedelta(hours=24)).isoformat(), "on_resume": "review"}  # fmt: skip
    async with http.post(server.url + "api/schedules", json=body, headers=basic("maria", "correct horse")) as r:
        assert r.status == 201, await r.text()
        created = (await r.json())["schedule"]
    assert created["created_by"] == "maria" and created["active_now"] is False and created["next_change"]
    async with http.post(server.url + "api/schedules", json=body, headers=BEARER) as r:
        assert r.status == 409
    weekly = {"id": "weekend", "reason": "quiet", "cron": "0 22 * * SAT", "duration_seconds": 36000,
              "timezone": "Europe/Paris"}  # fmt: skip
    async with http.post(server.url + "api/schedules", json=weekly, headers=BEARER) as r:
        assert r.status == 201
    for bad in ({**weekly, "id": "x", "cron": "not cron"}, {**weekly, "id": "y", "scope": "nope"}, {"id": "z"}):
        async with http.post(server.url + "api/schedules", json=bad, headers=BEARER) as r:
            assert r.status == 400, bad
    async with http.get(server.url + "api/schedules", headers=BEARER) as r:
        listed = (await r.json())["schedules"]
    assert [s["id"] for s in listed] == ["mourning", "weekend"]
    assert "sig" not in listed[0]
    async with http.delete(server.url + "api/schedules/mourning", headers=BEARER) as r:
        assert r.status == 200
    async with http.delete(server.url + "api/schedules/mourning", headers=BEARER) as r:
        assert r.status == 404
    assert server.services is not None
    assert [s.id for s in server.services.schedules.schedules()] == ["weekend"]


def an_alert(severity: str, alert_id: str = "acme:9") -> Alert:
    now = utcnow()
    return Alert(
        alert_id=alert_id, brand="acme", severity=severity, risk=88, event_time=now,  # type: ignore[arg-type]
        window_start=now - timedelta(minutes=1), summary="acme: 900 mentions vs 40 expected",
        explanation=["volume 22x expected"], created_at=now,
        evidence={"mentions": 900, "negative": 700, "volume": {"observed": 900, "expected": 40},
                  "top_mentions": [{"text": "<script>alert(1)</script> acme lied", "source": "rss", "reach": 5000,
                                    "lang": "en", "sentiment": "negative", "url": "javascript:alert(1)"}]},
    )  # fmt: skip


async def test_alerts_with_evidence_and_acknowledgement(server: WebServer, http: aiohttp.ClientSession) -> None:
    s = server.settings
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        for alert in (an_alert("warning"), an_alert("critical")):
            await producer.send_and_wait(s.topic("alerts"), alert.model_dump_json().encode(), key=b"acme")
    finally:
        await producer.stop()
    for _ in range(100):
        async with http.get(server.url + "api/alerts", headers=BEARER) as r:
            alerts = (await r.json())["alerts"]
        if alerts and alerts[0]["peak_severity"] == "critical":
            break
        await asyncio.sleep(0.05)
    [episode] = alerts
    assert episode["alert_id"] == "acme:9" and episode["status"] == "firing"
    assert {"label": "Volume", "value": "900 mentions vs 40 expected (22.5×)"} in episode["facts"]
    assert episode["top_mentions"][0]["text"].startswith("<script>")  # data; the page renders it as text

    headers = basic("maria", "correct horse")
    async with http.post(
        server.url + "api/alerts/acme:9/ack", json={"note": "statement in 10 min"}, headers=headers
    ) as r:
        assert r.status == 201
    async with http.post(server.url + "api/alerts/nope/ack", json={}, headers=headers) as r:
        assert r.status == 404
    async with http.get(server.url + "api/alerts", headers=BEARER) as r:
        acks = (await r.json())["alerts"][0]["acks"]
    assert [(a["actor"], a["note"]) for a in acks] == [("maria", "statement in 10 min")]
    consumer = AIOKafkaConsumer(
        s.topic("alerts.ack"), bootstrap_servers=s.kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=2000)
    finally:
        await consumer.stop()
    [record] = [m for msgs in batches.values() for m in msgs]
    assert record.key == b"acme:9" and AlertAck.model_validate_json(record.value).actor == "maria"


async def test_bad_requests(server: WebServer, http: aiohttp.ClientSession) -> None:
    for body in (
        {"scope": "everything"},
        {"on_resume": "later"},
        {"unknown": 1},
        {"resume_at": "2020-01-01T00:00:00Z"},
    ):
        async with http.post(server.url + "api/pause", json=body, headers=BEARER) as r:
            assert r.status == 400, body
            assert "error" in await r.json()
    async with http.post(server.url + "api/pause", data=b"x" * 100_000, headers=BEARER) as r:
        assert r.status == 413
    async with http.get(server.url + "api/nothing-here", headers=BEARER) as r:
        assert r.status == 404 and "error" in await r.json()


def test_users_and_tokens_config(settings: Settings) -> None:
    assert parse_users("a:1, b:x:y") == {"a": "1", "b": "x:y"}
    hashed = FAST.hash("pw")
    assert "," in hashed and parse_users(f"maria:{hashed}, b:x") == {"maria": hashed, "b": "x"}
    for bad in ("alice", "alice:", "detector:pw", "bad name!:pw"):
        with pytest.raises(ConfigError):
            parse_users(bad)
    with pytest.raises(ConfigError):
        Authenticator(settings.model_copy(update={"api_token": SecretStr("short")}))
    with pytest.raises(ConfigError, match="plain-text"):  # plain text is refused unless explicitly allowed
        Authenticator(settings.model_copy(update={"web_users": SecretStr("maria:pw")}))
    auth = Authenticator(settings.model_copy(update={"web_users": SecretStr(f"maria:{hashed}")}))
    assert auth.check_password("maria", "pw") and not auth.check_password("maria", "pw2")
    assert not auth.check_password("nobody", "pw") and not auth.check_token("anything")
    legacy = settings.model_copy(update={"web_users": SecretStr("maria:pw"), "web_allow_plaintext_passwords": True})
    assert Authenticator(legacy).check_password("maria", "pw")
    cookie, session = auth.create_session("maria")
    assert auth.session_for(cookie) is session and auth.session_for("other") is None
    auth.end_session(cookie)
    assert auth.session_for(cookie) is None


def test_rate_limiter_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(6, clock=lambda: now[0])  # one every 10 s, bursts of 6
    assert [limiter.take("u") for _ in range(6)] == [0.0] * 6
    assert limiter.take("u") == pytest.approx(10.0)
    assert limiter.take("v") == 0.0
    now[0] = 10.0
    assert limiter.take("u") == 0.0 and limiter.take("u") > 0

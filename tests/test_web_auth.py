"""Login throttling and the origin check, over real HTTP against a real broker.

Clients at different addresses are real: the attacker connects from 127.0.0.2, the people from 127.0.0.1
(every 127/8 address is the loopback on Linux). "A shared proxy" is the same address for both.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from argon2 import PasswordHasher
from pydantic import SecretStr

from crisiswatch.control.testing import fixed_key_pair
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings
from crisiswatch.web.auth import LoginGuard, allowed_origins, origin_of
from crisiswatch.web.server import DEVICE_COOKIE, WebServer

TOKEN = "t0ken-for-the-api-0123456789"
MARIA = {"username": "maria", "password": "correct horse"}
BEARER = {"Authorization": f"Bearer {TOKEN}"}
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # test-sized Argon2id costs
REASON = {"reason": "origin test"}


def web_settings(settings: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "control_keys": SecretStr(fixed_key_pair("k1", "web").private),
        "web_users": SecretStr(f"maria:{FAST.hash('correct horse')},sam:{FAST.hash('s3cret')}"),
        "api_token": SecretStr(TOKEN),
        "page_port": 0,
        "public_url": "https://crisis.example.org/",
        **overrides,
    }
    return settings.model_copy(update=values)


@pytest.fixture
async def server(kafka_bootstrap: str, settings: Settings) -> AsyncIterator[WebServer]:
    s = web_settings(settings)
    await ensure_topics(kafka_bootstrap, s)
    # Locks of 30 s, 60 s ... instead of 1 s, 2 s ...: a locked client is still locked on its next request
    # however slow the machine (the default numbers are tested on a fake clock below).
    async with WebServer(s, port=0, login_guard=LoginGuard(base_delay=30.0)) as web:
        yield web


def client(address: str = "127.0.0.1") -> aiohttp.ClientSession:
    """A browser of its own (own cookie jar) connecting from ``address``."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True))


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def post_login(http: aiohttp.ClientSession, server: WebServer, body: dict[str, str]) -> tuple[int, str | None]:
    async with http.post(server.url + "api/login", json=body) as r:
        return r.status, r.headers.get("Retry-After")


async def hammer(http: aiohttp.ClientSession, server: WebServer, user: str) -> list[int]:
    """Wrong passwords for ``user`` until the server answers 429 with ``Retry-After``; the statuses seen."""
    statuses = []
    for i in range(20):
        status, retry_after = await post_login(http, server, {"username": user, "password": f"guess-{i}"})
        statuses.append(status)
        if status == 429:
            assert retry_after is not None and int(retry_after) >= 1
            return statuses
    raise AssertionError(f"never throttled: {statuses}")


async def test_an_attacker_cannot_lock_the_real_user_out(server: WebServer) -> None:
    async with client() as victim, client() as attacker, client("127.0.0.2") as remote_attacker:
        # The victim has logged in from this browser before: it holds a device cookie for maria.
        assert (await post_login(victim, server, MARIA))[0] == 200
        assert any(c.key == DEVICE_COOKIE for c in victim.cookie_jar)

        # An attacker elsewhere, and one behind the victim's own proxy, guess maria's password.
        assert await hammer(remote_attacker, server, "maria") == [401] * 5 + [429]  # five free mistakes
        assert await hammer(attacker, server, "maria") == [401] * 5 + [429]

        # Both attackers are locked: even the right password is answered 429 (the answer tells nothing).
        assert (await post_login(attacker, server, MARIA))[0] == 429
        assert (await post_login(remote_attacker, server, MARIA))[0] == 429
        # A forged device cookie does not make the attacker a trusted device.
        attacker.cookie_jar.update_cookies({DEVICE_COOKIE: "x.y~abc.def"})
        assert (await post_login(attacker, server, MARIA))[0] == 429

        # The real user is not locked out: from the browser that logged in before, behind the same proxy ...
        assert (await post_login(victim, server, MARIA))[0] == 200
        # ... and from a new browser at an address that has not been failing,
        async with client("127.0.0.3") as elsewhere:
            assert (await post_login(elsewhere, server, MARIA))[0] == 200
        # ... and other people behind the proxy log in to their own accounts.
        async with client() as colleague:
            assert (await post_login(colleague, server, {"username": "sam", "password": "s3cret"}))[0] == 200
            # A device cookie for sam does not vouch for maria: a new browser at the attacker's address
            # cannot be told apart from the attacker, so it waits too (documented).
            assert (await post_login(colleague, server, MARIA))[0] == 429


async def test_basic_auth_guessing_is_throttled_the_same_way(server: WebServer) -> None:
    async with client("127.0.0.2") as attacker, client() as person:
        statuses = []
        for i in range(6):
            async with attacker.get(server.url + "api/state", headers=basic("sam", f"guess-{i}")) as r:
                statuses.append(r.status)
        assert statuses == [401] * 5 + [429] and int(r.headers["Retry-After"]) >= 1
        # No oracle: the right password is refused to the locked client too ...
        async with attacker.get(server.url + "api/state", headers=basic("sam", "s3cret")) as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
        # ... and accepted from anyone else, and other accounts from the attacker's address still work.
        async with person.get(server.url + "api/state", headers=basic("sam", "s3cret")) as r:
            assert r.status == 200
        async with attacker.get(server.url + "api/state", headers=basic("maria", "correct horse")) as r:
            assert r.status == 200
        # A wrong bearer token never blocks the right one.
        for _ in range(12):
            async with attacker.get(server.url + "api/state", headers={"Authorization": "Bearer wrong"}) as r:
                assert r.status in (401, 429)
        assert r.status == 429
        async with attacker.get(server.url + "api/state", headers=BEARER) as r:
            assert r.status == 200


async def test_the_origin_check_never_trusts_host(server: WebServer) -> None:
    port = server.port
    async with client() as http:
        # DNS rebinding / a forged Host: Origin equal to the Host it claims is still refused.
        for origin, host in (("http://evil.example", "evil.example"), (f"http://evil.example:{port}", None)):
            forged = {"Origin": origin, "Host": host or f"evil.example:{port}"}
            async with http.post(server.url + "api/pause", json={}, headers={**forged, **BEARER}) as r:
                assert r.status == 403 and "cross-origin" in (await r.json())["error"]
            async with http.post(server.url + "api/login", json=MARIA, headers=forged) as r:
                assert r.status == 403
        for origin in ("null", "https://127.0.0.1:" + str(port), "http://127.0.0.1:1"):
            async with http.post(server.url + "api/pause", json={}, headers={"Origin": origin, **BEARER}) as r:
                assert r.status == 403, origin
        async with http.post(
            server.url + "api/pause", json={}, headers={"Referer": "https://evil.example/", **BEARER}
        ) as r:
            assert r.status == 403
        assert server.services is not None and not server.services.plane.status()
        # The server's own origins (by default) and PUBLIC_URL's are allowed, whatever Host says.
        for i, origin in enumerate((server.url, f"http://localhost:{port}", "https://crisis.example.org")):
            headers = {"Origin": origin.rstrip("/"), "Host": "evil.example", **BEARER}
            body = {"scope": f"account:a{i}", **REASON}
            async with http.post(server.url + "api/pause", json=body, headers=headers) as r:
                assert r.status == 200, origin
        headers = {"Referer": server.url + "index.html", **BEARER}
        async with http.post(server.url + "api/pause", json={"scope": "account:r", **REASON}, headers=headers) as r:
            assert r.status == 200


async def test_configured_origins_replace_the_default(kafka_bootstrap: str, settings: Settings) -> None:
    s = web_settings(settings, web_allowed_origins="https://ops.example.com, http://10.0.0.5:8066/")
    await ensure_topics(kafka_bootstrap, s)
    async with WebServer(s, port=0) as server, client() as http:
        assert server.services is not None
        api_origins = allowed_origins(s, server.host, server.port)
        assert api_origins == {"https://ops.example.com", "http://10.0.0.5:8066", "https://crisis.example.org"}
        async with http.post(
            server.url + "api/pause", json={}, headers={"Origin": server.url.rstrip("/"), **BEARER}
        ) as r:
            assert r.status == 403
        for origin in ("https://ops.example.com", "https://OPS.example.com:443"):
            async with http.post(server.url + "api/pause", json=REASON, headers={"Origin": origin, **BEARER}) as r:
                assert r.status == 200, origin


def test_origin_parsing() -> None:
    assert origin_of("HTTP://Evil.Example:80/path?q") == "http://evil.example"
    assert origin_of("https://[::1]:8443") == "https://[::1]:8443"
    for bad in ("null", "", "file:///etc/passwd", "http://", "http://x:99999", "javascript:alert(1)"):
        assert origin_of(bad) is None, bad


def test_login_guard_rule() -> None:
    """The documented rule, on a fake clock."""
    now = [0.0]
    guard = LoginGuard(clock=lambda: now[0])

    def fail(user: str, address: str, cookie: str | None = None) -> float:
        attempt = guard.attempt(user, address, cookie)
        assert attempt.wait == 0.0
        return guard.failed(attempt)

    # five free failures per (account, client), then 1 s, 2 s, 4 s ... capped at 15 min
    assert [fail("maria", "a") for _ in range(5)] == [0, 0, 0, 0, 1.0]
    assert guard.attempt("maria", "a").wait == pytest.approx(1.0)
    locks = []
    for _ in range(12):
        now[0] += guard.attempt("maria", "a").wait
        locks.append(fail("maria", "a"))
    assert locks[:4] == [2.0, 4.0, 8.0, 16.0] and locks[-1] == 900.0
    # more than 10 failures in 15 minutes: the account is under attack, and a new untrusted client gets
    # one free failure (its first attempt is still checked: a right password is accepted)
    attacked = LoginGuard(clock=lambda: now[0])
    for address, times in (("b", 4), ("c", 4), ("d", 2)):
        assert [attacked.failed(attacked.attempt("maria", address)) for _ in range(times)] == [0] * times
    assert not attacked.under_attack("maria") and attacked.attempt("maria", "e").wait == 0.0
    assert attacked.failed(attacked.attempt("maria", "e")) == 1.0 and attacked.under_attack("maria")
    assert attacked.failed(attacked.attempt("sam", "e")) == 0.0
    # a trusted device of maria's keeps its five, and other accounts are untouched
    cookie = guard.device_cookie("maria", None)
    assert guard.attempt("maria", "a", cookie).wait == 0.0
    assert [fail("maria", "a", cookie) for _ in range(4)] == [0, 0, 0, 0]
    assert guard.attempt("sam", "a").wait == 0.0
    # a success clears the pair
    attempt = guard.attempt("maria", "a", cookie)
    guard.succeeded(attempt)
    assert [fail("maria", "a", cookie) for _ in range(4)] == [0, 0, 0, 0]
    # an hour without failures (and no lock left) forgets a pair
    now[0] += 3600 + 901
    assert guard.attempt("maria", "a").wait == 0.0 and fail("maria", "a") == 0.0


def test_login_guard_per_address_limit_spares_trusted_devices() -> None:
    now = [0.0]
    guard = LoginGuard(clock=lambda: now[0], ip_failures_per_minute=60)
    cookie = guard.device_cookie("victim", None)
    for i in range(60):  # spraying: one guess each at 60 accounts from one address
        guard.failed(guard.attempt(f"user{i}", "proxy"))
    sprayed = guard.attempt("someone-else", "proxy")
    assert sprayed.wait >= 1.0  # untrusted clients at that address wait ...
    assert guard.attempt("victim", "proxy", cookie).wait == 0.0  # ... trusted devices do not
    assert guard.attempt("someone-else", "elsewhere").wait == 0.0
    now[0] += sprayed.wait
    assert guard.attempt("someone-else", "proxy").wait == 0.0

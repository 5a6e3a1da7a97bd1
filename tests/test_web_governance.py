"""Governance through the HTTP API against a real broker: roles, required reasons, two-person resume,
hashed passwords, SSO from a trusted proxy, and the audit log (page endpoint and ``crisiswatch audit``).

Clients at different addresses are real (every 127/8 address is the loopback on Linux): the trusted
proxy is 127.0.0.1, an untrusted client 127.0.0.2.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from argon2 import PasswordHasher
from pydantic import SecretStr
from typer.testing import CliRunner

from crisiswatch.cli import app
from crisiswatch.contracts.control import AuditRecord
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control.audit import parse_since
from crisiswatch.control.testing import fixed_key_pair, produce
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings
from crisiswatch.web.auth import Authenticator, ConfigError, parse_users
from crisiswatch.web.governance import Denied, Policy, ResumeRequests, highest_role, parse_roles
from crisiswatch.web.server import WebServer

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # test-sized Argon2id costs
PASSWORDS = {"maria": "admin pass 1", "oscar": "operator pass 1", "olga": "operator pass 2", "vera": "viewer pass"}
KEYS = fixed_key_pair("k1", "web")
TOKEN = "t0ken-for-the-api-0123456789"


def gov_settings(settings: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "control_keys": SecretStr(KEYS.private),
        "web_users": SecretStr(",".join(f"{u}:{FAST.hash(p)}" for u, p in PASSWORDS.items())),
        "web_roles": "maria:admin,oscar:operator,olga:operator,pat:operator",  # vera: the default, viewer
        "api_token": SecretStr(TOKEN),
        "web_trusted_proxies": "127.0.0.1",
        "web_proxy_role_header": "X-Forwarded-Groups",
        "page_port": 0,
        **overrides,
    }
    return settings.model_copy(update=values)


class Clock:
    """The two-person requests' clock, moved by the test (expiry without waiting)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def server(kafka_bootstrap: str, settings: Settings) -> AsyncIterator[WebServer]:
    s = gov_settings(settings)
    await ensure_topics(kafka_bootstrap, s)
    async with WebServer(s, port=0) as web:
        yield web


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def two_person(kafka_bootstrap: str, settings: Settings, clock: Clock) -> AsyncIterator[WebServer]:
    s = gov_settings(settings, web_resume_approval=True, web_resume_approval_seconds=600)
    await ensure_topics(kafka_bootstrap, s)
    async with WebServer(s, port=0, resume_requests=ResumeRequests(clock=clock)) as web:
        yield web


def client(address: str = "127.0.0.1") -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True))


def as_(user: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()}


async def call(
    http: aiohttp.ClientSession, server: WebServer, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, Any]:
    async with http.request(method, server.url + path, json=body, headers=headers) as r:
        return r.status, await r.json()


async def audit(http: aiohttp.ClientSession, server: WebServer, query: str = "since=1h") -> list[dict[str, Any]]:
    status, body = await call(http, server, "GET", f"api/audit?{query}", as_("vera"))
    assert status == 200, body
    return body["records"]


# --- roles ---------------------------------------------------------------------------------------------


async def test_a_viewer_reads_everything_and_changes_nothing(server: WebServer) -> None:
    async with client() as http:
        for path in ("api/state", "api/alerts", "api/schedules", "api/audit", "api/resume-requests"):
            assert (await call(http, server, "GET", path, as_("vera")))[0] == 200, path
        status, me = await call(http, server, "GET", "api/session", as_("vera"))
        assert me["role"] == "viewer" and not any(me["can"].values())
        for method, path, body in (
            ("POST", "api/pause", {"scope": "brand:acme", "reason": "x"}),
            ("POST", "api/resume", {"scope": "brand:acme", "reason": "x"}),
            ("POST", "api/alerts/acme:1/ack", {}),
            ("POST", "api/schedules", {"id": "q", "reason": "x", "scope": "brand:acme", "cron": "0 1 * * *",
                                       "duration_seconds": 60}),
        ):  # fmt: skip
            status, answer = await call(http, server, method, path, as_("vera"), body)
            assert status == 403 and "you are viewer" in answer["error"], path
    assert server.services is not None and not server.services.plane.status()


async def test_an_operator_runs_brands_but_only_an_admin_resumes_global(server: WebServer) -> None:
    async with client() as http:
        status, me = await call(http, server, "GET", "api/session", as_("oscar"))
        assert me["role"] == "operator" and me["can"]["pause_global"] and not me["can"]["resume_global"]
        for action in ("pause", "resume"):
            status, body = await call(http, server, "POST", f"api/{action}", as_("oscar"),
                                      {"scope": "brand:acme", "reason": f"{action} acme"})  # fmt: skip
            assert status == 200 and body["changed"] and body["state"]["actor"] == "oscar"
        # The emergency stop: an operator may pause global ...
        status, body = await call(http, server, "POST", "api/pause", as_("oscar"), {"reason": "breach story"})
        assert status == 200 and body["state"]["paused"]
        # ... but resuming it needs an admin (no two-person approval configured here).
        status, body = await call(http, server, "POST", "api/resume", as_("oscar"), {"reason": "looks fine"})
        assert status == 403 and body["error"] == "resuming global needs an admin"
        status, body = await call(http, server, "POST", "api/resume", {"Authorization": f"Bearer {TOKEN}"},
                                  {"reason": "bot"})  # fmt: skip
        assert status == 403  # the token is an operator by default
        assert server.services is not None and server.services.plane.get("global").paused  # type: ignore[union-attr]
        # Planned pauses of global are an admin's; of a brand, an operator's.
        weekly = {"id": "w", "reason": "quiet", "cron": "0 22 * * SAT", "duration_seconds": 3600}
        assert (await call(http, server, "POST", "api/schedules", as_("oscar"), weekly))[0] == 403
        assert (await call(http, server, "POST", "api/schedules", as_("oscar"), {**weekly, "scope": "brand:acme"}))[
            0
        ] == 201
        assert (await call(http, server, "POST", "api/schedules", as_("maria"), {**weekly, "id": "g"}))[0] == 201
        assert (await call(http, server, "DELETE", "api/schedules/g", as_("oscar")))[0] == 403
        status, body = await call(http, server, "POST", "api/resume", as_("maria"), {"reason": "statement out"})
        assert status == 200 and body["state"]["state"] == "active" and body["state"]["actor"] == "maria"


def test_policy_rules_without_io() -> None:
    strict = Policy(operator_pause_global=False)
    with pytest.raises(Denied, match="only an admin"):
        strict.check_pause("operator", "global")
    strict.check_pause("operator", "brand:acme")
    strict.check_pause("admin", "global")
    with pytest.raises(Denied):
        Policy().check_pause(None, "brand:acme")  # no role at all
    assert Policy(resume_approval=True).check_resume("operator", "global") == "request"
    assert Policy(resume_approval=True).check_resume("admin", "global") == "resume"
    with pytest.raises(ValueError, match="reason is required"):
        Policy().reason("  ", "default")
    assert Policy(require_reason=False).reason(None, "default") == "default"
    assert parse_roles("a:admin, b:Operator") == {"a": "admin", "b": "operator"}
    for bad in ("a", "a:root", "bad name!:admin"):
        with pytest.raises(ValueError):
            parse_roles(bad)
    assert highest_role("staff, operator,admin") == "admin" and highest_role("staff") is None


# --- reasons -------------------------------------------------------------------------------------------


async def test_pause_and_resume_need_a_reason(server: WebServer, kafka_bootstrap: str, settings: Settings) -> None:
    async with client() as http:
        for action in ("pause", "resume"):
            for body in ({"scope": "brand:acme"}, {"scope": "brand:acme", "reason": "   "}):
                status, answer = await call(http, server, "POST", f"api/{action}", as_("maria"), body)
                assert status == 400 and "a reason is required" in answer["error"], (action, body)
        status, me = await call(http, server, "GET", "api/session", as_("maria"))
        assert me["reason_required"] is True
    assert server.services is not None and not server.services.plane.status()  # nothing was published
    # Optional when configured so: the page's default reason is recorded.
    s = gov_settings(settings, control_require_reason=False, topic_prefix=settings.kafka.topic_prefix + "opt.")
    await ensure_topics(kafka_bootstrap, s)
    async with WebServer(s, port=0) as optional, client() as http:
        status, body = await call(http, optional, "POST", "api/pause", as_("maria"), {"scope": "brand:acme"})
        assert status == 200 and body["state"]["reason"] == "manual pause from the crisiswatch page"


# --- two-person resume ---------------------------------------------------------------------------------


async def test_two_person_resume_of_global(two_person: WebServer, clock: Clock) -> None:
    server = two_person
    assert server.services is not None
    plane = server.services.plane
    async with client() as http:
        assert (await call(http, server, "POST", "api/pause", as_("maria"), {"reason": "data leak story"}))[0] == 200
        status, me = await call(http, server, "GET", "api/session", as_("oscar"))
        assert me["can"]["request_resume_global"] and not me["can"]["resume_global"]

        # An operator's resume of global becomes a request; publishing stays paused.
        status, body = await call(http, server, "POST", "api/resume", as_("oscar"), {"reason": "leak denied"})
        assert status == 202 and body["approval_required"] and body["request"]["requested_by"] == "oscar"
        request_id = body["request"]["id"]
        assert plane.get("global").paused  # type: ignore[union-attr]
        # Asking again returns the same request; another operator is told to approve it instead.
        status, again = await call(http, server, "POST", "api/resume", as_("oscar"), {"reason": "leak denied"})
        assert status == 202 and again["request"]["id"] == request_id
        status, body = await call(http, server, "POST", "api/resume", as_("olga"), {"reason": "me too"})
        assert status == 409 and request_id in body["error"]
        status, listed = await call(http, server, "GET", "api/resume-requests", as_("olga"))
        assert [(r["id"], r["you_may_approve"]) for r in listed["requests"]] == [(request_id, True)]

        approve = f"api/resume-requests/{request_id}/approve"
        # Not by the requester, not by a viewer, not without a reason.
        status, body = await call(http, server, "POST", approve, as_("oscar"), {"reason": "ok"})
        assert status == 403 and "second person" in body["error"]
        assert (await call(http, server, "POST", approve, as_("vera"), {"reason": "ok"}))[0] == 403
        assert (await call(http, server, "POST", approve, as_("olga"), {}))[0] == 400
        assert plane.get("global").paused  # type: ignore[union-attr]

        status, body = await call(http, server, "POST", approve, as_("olga"), {"reason": "checked with legal"})
        assert status == 200 and body["changed"] and (body["requested_by"], body["approved_by"]) == ("oscar", "olga")
        state = plane.get("global")
        assert state is not None and not state.paused and state.actor == "olga"
        assert "asked by oscar" in state.reason and "checked with legal" in state.reason
        assert (await call(http, server, "POST", approve, as_("maria"), {"reason": "again"}))[0] == 404

        records = [r for r in await audit(http, server) if r["scope"] == "global"]
        assert [(r["action"], r["actor"], r.get("requested_by")) for r in records] == [
            ("pause", "maria", None),
            ("resume_requested", "oscar", "oscar"),
            ("resume", "olga", None),
            ("resume_approved", "olga", "oscar"),
        ]
        assert all(r["verified"] for r in records) and records[1]["request_id"] == request_id

        # A request lapses: approval after the limit is refused (410) and publishing stays paused.
        assert (await call(http, server, "POST", "api/pause", as_("maria"), {"reason": "second wave"}))[0] == 200
        status, body = await call(http, server, "POST", "api/resume", as_("oscar"), {"reason": "calm"})
        late = body["request"]["id"]
        clock.now += timedelta(seconds=601)
        status, body = await call(http, server, "POST", f"api/resume-requests/{late}/approve", as_("olga"),
                                  {"reason": "ok"})  # fmt: skip
        assert status == 410 and "expired" in body["error"]
        assert plane.get("global").paused  # type: ignore[union-attr]
        assert (await call(http, server, "GET", "api/resume-requests", as_("olga")))[1]["requests"] == []

        # A request is about the pause in force when it was made: a newer pause needs a new request.
        status, body = await call(http, server, "POST", "api/resume", as_("oscar"), {"reason": "calm now"})
        stale = body["request"]["id"]
        assert (await call(http, server, "POST", "api/pause", as_("maria"), {"reason": "third wave, new facts"}))[
            0
        ] == 200
        status, body = await call(http, server, "POST", f"api/resume-requests/{stale}/approve", as_("olga"),
                                  {"reason": "ok"})  # fmt: skip
        assert status == 409 and plane.get("global").paused  # type: ignore[union-attr]

        # The requester (or an admin) may withdraw a request; others may not.
        status, body = await call(http, server, "POST", "api/resume", as_("oscar"), {"reason": "calm again"})
        withdrawn = body["request"]["id"]
        cancel = f"api/resume-requests/{withdrawn}/cancel"
        assert (await call(http, server, "POST", cancel, as_("olga"), {}))[0] == 403
        assert (await call(http, server, "POST", cancel, as_("oscar"), {"reason": "not yet"}))[0] == 200
        assert [r["action"] for r in await audit(http, server, "since=1h&scope=global")][-1] == "resume_cancelled"
        # An admin resumes global alone, approval or not.
        assert (await call(http, server, "POST", "api/resume", as_("maria"), {"reason": "resolved"}))[0] == 200


# --- passwords and SSO ---------------------------------------------------------------------------------


async def test_hashed_passwords_and_plain_text_refused(server: WebServer, settings: Settings) -> None:
    async with client() as http:
        status, body = await call(http, server, "POST", "api/login", {}, {"username": "oscar", "password": "nope"})
        assert status == 401
        body = {"username": "oscar", "password": PASSWORDS["oscar"]}
        status, me = await call(http, server, "POST", "api/login", {}, body)
        assert status == 200 and me["user"] == "oscar" and me["role"] == "operator"
    stored = parse_users(server.settings.web.web_users.get_secret_value())  # type: ignore[union-attr]
    assert all(v.startswith("$argon2id$") for v in stored.values())
    with pytest.raises(ConfigError, match="plain-text passwords"):
        Authenticator(gov_settings(settings, web_users=SecretStr("maria:admin pass 1")))
    with pytest.raises(ConfigError, match="not a valid Argon2 hash"):
        Authenticator(gov_settings(settings, web_users=SecretStr("maria:$argon2id$broken")))
    with pytest.raises(ConfigError, match="bcrypt"):
        Authenticator(gov_settings(settings, web_users=SecretStr("maria:$2b$12$abcdefghijklmnopqrstuv")))


async def test_a_user_without_a_role_gets_nothing(kafka_bootstrap: str, settings: Settings) -> None:
    s = gov_settings(settings, web_default_role="none")  # vera is in no role
    await ensure_topics(kafka_bootstrap, s)
    async with WebServer(s, port=0) as server, client() as http:
        body = {"username": "vera", "password": PASSWORDS["vera"]}
        status, answer = await call(http, server, "POST", "api/login", {}, body)
        assert status == 403 and "no role" in answer["error"]
        for path in ("api/state", "api/audit", "api/session"):
            assert (await call(http, server, "GET", path, as_("vera")))[0] == 403, path
        nobody = {"X-Forwarded-User": "sasha"}  # SSO: a user the proxy names but nobody gave a role
        assert (await call(http, server, "GET", "api/state", nobody))[0] == 403
        assert (await call(http, server, "GET", "api/state", as_("oscar")))[0] == 200


def test_users_hash_reads_the_password_from_stdin_never_argv() -> None:
    result = CliRunner().invoke(app, ["users", "hash", "maria"], input="a long enough password\n")
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    user, _, hashed = line.partition(":")
    assert user == "maria" and hashed.startswith("$argon2id$")
    assert PasswordHasher().verify(hashed, "a long enough password")
    assert "a long enough password" not in result.output
    short = CliRunner().invoke(app, ["users", "hash"], input="short\n")
    assert short.exit_code == 1 and "at least 12" in short.output
    # There is no option to pass it on the command line.
    assert CliRunner().invoke(app, ["users", "hash", "maria", "--password", "x"]).exit_code != 0


async def test_sso_headers_are_trusted_only_from_the_proxy(server: WebServer) -> None:
    sso = {"X-Forwarded-User": "pat", "X-Forwarded-Groups": "staff, operator"}
    async with client("127.0.0.2") as outsider:  # not a trusted proxy: the headers mean nothing
        assert (await call(outsider, server, "GET", "api/session", sso))[0] == 401
        admin = {"X-Forwarded-User": "mallory", "X-Forwarded-Groups": "admin"}
        assert (await call(outsider, server, "POST", "api/resume", admin, {"reason": "x"}))[0] == 401
    async with client() as proxy:  # 127.0.0.1: the trusted proxy
        status, me = await call(proxy, server, "GET", "api/session", sso)
        assert status == 200 and (me["user"], me["method"], me["role"]) == ("pat", "proxy", "operator")
        # Changes need the CSRF token of /api/session (the proxy's cookies would otherwise ride along).
        body = {"scope": "brand:acme", "reason": "sso pause"}
        assert (await call(proxy, server, "POST", "api/pause", sso, body))[0] == 403
        status, answer = await call(proxy, server, "POST", "api/pause", {**sso, "X-CSRF-Token": me["csrf_token"]}, body)
        assert status == 200 and answer["state"]["actor"] == "pat"
        # The role header decides; without one, the configured roles (else the default role) do.
        status, me = await call(proxy, server, "GET", "api/session", {"X-Forwarded-User": "sasha"})
        assert me["role"] == "viewer"
        boss = {"X-Forwarded-User": "sasha", "X-Forwarded-Groups": "admin"}
        status, me = await call(proxy, server, "GET", "api/session", boss)
        assert me["role"] == "admin"
        assert (await call(proxy, server, "GET", "api/session", {"X-Forwarded-User": "detector"}))[0] == 403


# --- the audit log -------------------------------------------------------------------------------------


async def test_audit_endpoint_and_command_verify_every_record(server: WebServer) -> None:
    s = server.settings
    async with client() as http:
        await call(http, server, "POST", "api/pause", as_("oscar"), {"scope": "brand:acme", "reason": "recall"})
        await call(http, server, "POST", "api/resume", as_("oscar"), {"scope": "brand:acme", "reason": "done"})
        await call(http, server, "POST", "api/pause", as_("maria"), {"scope": "channel:x", "reason": "x storm"})
        # A record nobody signed (or an old unsigned one) is shown, flagged, never trusted.
        forged = AuditRecord(action="resume", scope="global", actor="mallory", reason="forged", at=utcnow())
        await produce(s.kafka.bootstrap_servers or "", s.topic("publishing.audit"), b"global",
                      forged.model_dump_json().encode(), settings=s)  # fmt: skip

        records = await audit(http, server)
        assert [(r["action"], r["scope"], r["actor"], r["verified"]) for r in records] == [
            ("pause", "brand:acme", "oscar", True),
            ("resume", "brand:acme", "oscar", True),
            ("pause", "channel:x", "maria", True),
            ("resume", "global", "mallory", False),
        ]
        assert "unsigned" in records[-1]["problem"] and "sig" not in records[0]
        assert [r["action"] for r in await audit(http, server, "since=1h&scope=brand:acme")] == ["pause", "resume"]
        future = (utcnow() + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert await audit(http, server, f"since={future}") == []
        for bad in ("since=yesterday", "since=2", "scope=everything", "limit=x"):
            assert (await call(http, server, "GET", f"api/audit?{bad}", as_("vera")))[0] == 400, bad
        assert (await call(http, server, "GET", "api/audit", {}))[0] == 401

    env = {
        "KAFKA_BOOTSTRAP_SERVERS": s.kafka.bootstrap_servers or "",
        "CRISISWATCH_TOPIC_PREFIX": s.kafka.topic_prefix,
        "CRISISWATCH_CONTROL_PUBLIC_KEYS": KEYS.public,  # a reader: public keys are all it needs
    }

    def cli(*args: str, **extra: str) -> Any:  # in a thread: the command runs its own event loop
        return asyncio.to_thread(CliRunner().invoke, app, ["audit", *args], env={**env, **extra})

    result = await cli("--since", "2h", "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output[: result.output.rindex("]") + 1])
    assert [(r["actor"], r["verified"]) for r in printed] == [
        ("oscar", True), ("oscar", True), ("maria", True), ("mallory", False),
    ]  # fmt: skip
    assert "1 record(s) cannot be verified" in result.output
    result = await cli("--scope", "brand:acme", COLUMNS="200")
    assert result.exit_code == 0 and "recall" in result.output and "x storm" not in result.output
    assert "cannot be verified" not in result.output
    result = await cli("--since", "soon")
    assert result.exit_code == 1 and "not a time" in result.output


def test_since_parsing() -> None:
    now = utcnow()
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2026-11-24T09:00:00Z").isoformat() == "2026-11-24T09:00:00+00:00"
    for bad in ("2", "h", "2026-11-24T09:00:00", "yesterday"):
        with pytest.raises(ValueError):
            parse_since(bad, now)

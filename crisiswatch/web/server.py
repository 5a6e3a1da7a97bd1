"""The HTTP API and the one-button page (aiohttp), built on the control plane's public API.

Three ways to run it:

* ``crisiswatch serve`` (`run_forever`): everything it needs, on ``CRISISWATCH_WEB_HOST:PORT``;
* `WebServer` from inside another process (the worker): ``server = WebServer(settings, plane=plane);
  await server.start()`` ... ``await server.stop()``; pass the process's own `ControlPlane` to share it;
* `create_app` for mounting into an existing aiohttp application
  (``parent.add_subapp("/crisiswatch/", create_app(services))``; the page uses relative URLs).

Endpoints (JSON; all ``/api`` ones need authentication, changes also pass the CSRF and origin checks
and a per-user rate limit): ``GET /api/state``, ``POST /api/pause``, ``POST /api/resume``,
``GET|POST /api/schedules``, ``DELETE /api/schedules/{id}``, ``GET /api/alerts``,
``POST /api/alerts/{alert_id}/ack``, ``POST /api/login``, ``POST /api/logout``, ``GET /api/session``,
``GET /api/audit``, ``GET /api/resume-requests``, ``POST /api/resume-requests/{id}/approve|cancel``
(roles, reasons and two-person resume: `crisiswatch.web.governance`, `crisiswatch.web.governance_api`);
``GET /healthz``, ``GET /readyz`` and ``GET /metrics`` (Prometheus, the process's default registry, where
the control plane counts its changes and rejections) are open: keep them off the public internet.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from pydantic import AwareDatetime, Field, ValidationError

from crisiswatch.alerting.book import AckPublisher, AlertFeed
from crisiswatch.contracts.control import Schedule
from crisiswatch.contracts.records import AlertAck
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control.held import HeldBoard
from crisiswatch.control.messages import SigningUnavailable
from crisiswatch.control.plane import ControlPlane, ResumeRefused
from crisiswatch.control.schedules import ScheduleStore, new_schedule
from crisiswatch.settings import Settings
from crisiswatch.web import charts
from crisiswatch.web.auth import (
    Authenticator,
    ConfigError,
    LoginAttempt,
    LoginGuard,
    Principal,
    RateLimiter,
    allowed_origins,
    origin_of,
    secrets_equal,
)
from crisiswatch.web.governance import Denied, Policy, ResumeRequests
from crisiswatch.web.governance_api import GovernanceApi
from crisiswatch.web.http import Body, check_scope, error, first_error, parse, scope_json
from crisiswatch.web.silences_api import add_silence_routes  # GET|POST /api/silences, DELETE .../{id}
from crisiswatch.web.timeline import TimelineFeed

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "crisiswatch_session"
DEVICE_COOKIE = "crisiswatch_device"
"""Marks a browser that logged in before (see `LoginGuard`); HttpOnly, sent to the login path only."""
DEVICE_COOKIE_SECONDS = 30 * 24 * 3600
CSRF_HEADER = "X-CSRF-Token"
TOKEN_FAILURES_PER_MINUTE = 10
MAX_BODY_BYTES = 64 * 1024
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- request bodies -----------------------------------------------------------------------------------


class LoginBody(Body):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class PauseBody(Body):
    scope: str = "global"
    reason: str | None = Field(default=None, max_length=2000)
    resume_at: AwareDatetime | None = None
    on_resume: Literal["hold", "skip", "review"] | None = None


class ResumeBody(Body):
    scope: str = "global"
    reason: str | None = Field(default=None, max_length=2000)
    on_resume: Literal["hold", "skip", "review"] | None = None


class ScheduleBody(Body):
    id: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=2000)
    scope: str = "global"
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    cron: str | None = Field(default=None, max_length=200)
    duration_seconds: float | None = Field(default=None, gt=0)
    timezone: str = "UTC"
    on_resume: Literal["hold", "skip", "review"] = "hold"
    replace: bool = False


class AckBody(Body):
    note: str = Field("", max_length=2000)


# --- services -------------------------------------------------------------------------------------------


@dataclass
class WebServices:
    """What the HTTP API works with. `WebServer` builds and owns the ones it is not given."""

    settings: Settings
    plane: ControlPlane
    schedules: ScheduleStore
    alerts: AlertFeed
    acks: AckPublisher
    brands: list[tuple[str, str]] = field(default_factory=list)
    """(id, display name) of the configured brands: each has a scope on the page."""
    timelines: TimelineFeed | None = None
    """Per-brand chart data (`crisiswatch.web.timeline`; None: not followed, the charts' endpoints 404)."""
    held: HeldBoard | None = None
    """Held-post counts the publishing gates report (None: not followed)."""


def load_brand_names(settings: Settings) -> list[tuple[str, str]]:
    """Brands from the brands file, or none when it cannot be read (the page still works).

    None either when no brands file is configured: the default file holds the demo's brands, not yours.
    """
    if "brands_file" not in settings.worker.model_fields_set:
        log.warning("no brands file (CRISISWATCH_BRANDS_FILE): the page lists no brand scopes until one is set")
        return []
    try:
        from crisiswatch.brands_file import load_brands

        return [(b.id, b.name or b.id) for b in load_brands(settings.worker.brands_file).brands]
    except Exception as exc:
        log.warning("brands file not readable, brand scopes appear once paused: %s", exc)
        return []


def schedule_json(schedule: Schedule, now: datetime) -> dict[str, Any]:
    window = schedule.window_at(now)
    nxt = schedule.next_boundary(now)
    data = schedule.model_dump(mode="json", exclude={"sig", "kid", "removed"})
    data["active_now"] = window is not None
    data["current_window"] = window.model_dump(mode="json") if window else None
    data["next_change"] = nxt.isoformat() if nxt else None
    return data


# --- the API ----------------------------------------------------------------------------------------------


class Api:
    """Handlers, authentication, CSRF, rate limits."""

    def __init__(
        self,
        services: WebServices,
        authenticator: Authenticator | None = None,
        login_guard: LoginGuard | None = None,
        resume_requests: ResumeRequests | None = None,
    ):
        self.s = services
        self.settings = services.settings
        self.auth = authenticator or Authenticator(services.settings)
        self.policy = Policy.from_settings(services.settings)
        self.requests = resume_requests or ResumeRequests()
        self.governance = GovernanceApi(self)
        self.control_limiter = RateLimiter(self.settings.web.web_rate_limit_per_minute)
        self.token_limiter = RateLimiter(TOKEN_FAILURES_PER_MINUTE)
        self.guard = login_guard or LoginGuard()
        self.allowed_origins = allowed_origins(self.settings, self.settings.web.web_host, self.settings.web.page_port)

    def bound(self, host: str, port: int) -> None:
        """The address the server really listens on (its own origins are allowed by default)."""
        self.allowed_origins = allowed_origins(self.settings, host, port)

    # --- plumbing --------------------------------------------------------------------------------------
    async def principal(self, request: web.Request) -> Principal | None:
        """Who is calling, with their role: SSO proxy header (trusted peers only), basic, bearer, session."""
        proxied = self._proxy_identity(request)
        if proxied is not None:
            return proxied
        header = request.headers.get("Authorization")
        if header:
            scheme, _, credentials = header.partition(" ")
            credentials = credentials.strip()
            if scheme.lower() == "basic":
                try:
                    user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    return None
                attempt = self._login_attempt(request, user)
                if not await self.auth.verify_password(user, password):
                    self._login_failed(attempt)
                    return None
                self.guard.succeeded(attempt)
                return Principal(user, "basic", role=self.auth.role_for(user))
            if scheme.lower() == "bearer" and self.auth.check_token(credentials):
                return Principal(self.auth.token_actor, "bearer", role=self.auth.token_role)
            # A wrong token: limited per address, but a right one is never refused (16+ random characters).
            self._throttle(self.token_limiter, self._client(request))
            return None
        session = self.auth.session_for(request.cookies.get(SESSION_COOKIE))
        return Principal(session.user, "session", session, self.auth.role_for(session.user)) if session else None

    def _proxy_identity(self, request: web.Request) -> Principal | None:
        """The user a trusted reverse proxy names (SSO); its headers from any other peer are ignored."""
        try:
            found = self.auth.proxy_identity(request.remote, request.headers)
        except ConfigError as exc:
            log.warning("trusted proxy %s sent an unusable identity: %s", request.remote, exc)
            raise error(web.HTTPForbidden, "the proxy named an invalid user") from exc
        return Principal(found[0], "proxy", role=found[1]) if found else None

    def _check_role(self, check: Callable[[], Any]) -> Any:
        """Run a `Policy` check; a refusal is answered 403 with what would be allowed."""
        try:
            return check()
        except Denied as exc:
            raise error(web.HTTPForbidden, str(exc)) from exc

    def _reason(self, given: str | None, default: str) -> str:
        try:
            return self.policy.reason(given, default)
        except ValueError as exc:
            raise error(web.HTTPBadRequest, str(exc)) from exc

    def _client(self, request: web.Request) -> str:
        return request.remote or "unknown"

    def _login_attempt(self, request: web.Request, user: str) -> LoginAttempt:
        """Start a password attempt: 429 (before the password is checked) while its client must wait."""
        attempt = self.guard.attempt(user, self._client(request), request.cookies.get(DEVICE_COOKIE))
        if attempt.wait > 0:
            raise error(
                web.HTTPTooManyRequests,
                "too many failed logins, wait before trying again",
                {"Retry-After": str(max(1, math.ceil(attempt.wait)))},
            )
        return attempt

    def _login_failed(self, attempt: LoginAttempt) -> None:
        lock = self.guard.failed(attempt)  # the password itself is never logged
        if lock > 0:
            log.warning(
                "failed login for %r from %s (%s): locked for %.0f s", attempt.user[:64], attempt.address,
                "trusted device" if attempt.trusted else "address", lock,
            )  # fmt: skip
        else:
            log.info("failed login for %r from %s", attempt.user[:64], attempt.address)

    def origin_ok(self, request: web.Request) -> bool:
        """``Origin`` (else ``Referer``) is one of `allowed_origins`; the ``Host`` header is never trusted.

        A request with neither (a script, curl) passes unless ``Sec-Fetch-Site`` says a browser sent it
        from another site.
        """
        origin = request.headers.get("Origin") or request.headers.get("Referer")
        if origin is None:
            return request.headers.get("Sec-Fetch-Site", "none") in ("same-origin", "none")
        return origin_of(origin) in self.allowed_origins

    def authenticated(self, *, change: bool, limited: bool = True) -> Callable[[Any], Handler]:
        """Decorator: 401 without credentials, 403 without CSRF token/origin, 429 over the rate."""

        def wrap(handler: Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]) -> Handler:
            async def run(request: web.Request) -> web.StreamResponse:
                principal = await self.principal(request)
                if principal is None:
                    raise error(web.HTTPUnauthorized, "authentication required", {"WWW-Authenticate": "Bearer"})
                if principal.role is None:  # CRISISWATCH_WEB_DEFAULT_ROLE=none and not in CRISISWATCH_WEB_ROLES
                    raise error(web.HTTPForbidden, f"{principal.user} has no role here: ask an admin for one")
                if change:
                    if not self.origin_ok(request):
                        raise error(web.HTTPForbidden, "cross-origin request refused")
                    expected = self._csrf_token(principal)
                    if expected is not None:
                        token = request.headers.get(CSRF_HEADER, "")
                        if not token or not secrets_equal(token, expected):
                            raise error(web.HTTPForbidden, f"missing or wrong {CSRF_HEADER} header")
                    if limited:
                        self._throttle(self.control_limiter, principal.user)
                return await handler(request, principal)

            return run

        return wrap

    def _csrf_token(self, principal: Principal) -> str | None:
        """The CSRF token changes must carry: a session's, or a proxy-identified user's (None: not needed)."""
        if principal.session is not None:
            return principal.session.csrf_token
        if principal.method == "proxy":
            return self.auth.proxy_csrf(principal.user)
        return None

    def _throttle(self, limiter: RateLimiter, key: str) -> None:
        wait = limiter.take(key)
        if wait > 0:
            raise error(web.HTTPTooManyRequests, "too many requests, slow down", {"Retry-After": str(math.ceil(wait))})

    # --- open endpoints --------------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        age = self.s.plane.feed.follower.view_age()
        ready = age is not None and age <= self.settings.control.gate_max_staleness_seconds
        body = {
            "ready": ready,
            "control_view_age_seconds": None if age is None else round(age, 3),
            "alerts_caught_up": self.s.alerts.caught_up.is_set(),
        }
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus metrics of this process: the control-plane metrics live in the default registry.

        Open, like the probes (a scraper has no user); the values name scopes and counts, no secrets, but
        expose the page port only to your network and your Prometheus, not publicly.
        """
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encode(REGISTRY), headers={"Content-Type": content_type})

    # --- session -----------------------------------------------------------------------------------------
    async def login(self, request: web.Request) -> web.Response:
        if not self.origin_ok(request):
            raise error(web.HTTPForbidden, "cross-origin request refused")
        body = await parse(request, LoginBody)
        attempt = self._login_attempt(request, body.username)
        if not await self.auth.verify_password(body.username, body.password):
            self._login_failed(attempt)
            raise error(web.HTTPUnauthorized, "wrong user name or password")
        self.guard.succeeded(attempt)
        if self.auth.role_for(body.username) is None:
            raise error(web.HTTPForbidden, f"{body.username} has no role here: ask an admin for one")
        cookie, session = self.auth.create_session(body.username)
        log.info("%s logged in", body.username)
        you = self.governance_view(principal=None, user=session.user)
        response = web.json_response({"user": session.user, "csrf_token": session.csrf_token, **you})
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=int(self.settings.web.web_session_seconds),
            path="/",
            httponly=True,
            samesite="Strict",
            secure=request.secure or self.settings.web.web_cookie_secure,
        )
        response.set_cookie(
            DEVICE_COOKIE,
            self.guard.device_cookie(body.username, request.cookies.get(DEVICE_COOKIE)),
            max_age=DEVICE_COOKIE_SECONDS,
            path=request.path,
            httponly=True,
            samesite="Strict",
            secure=request.secure or self.settings.web.web_cookie_secure,
        )
        return response

    async def logout(self, request: web.Request, principal: Principal) -> web.Response:
        self.auth.end_session(request.cookies.get(SESSION_COOKIE))
        response = web.json_response({"ok": True})
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    async def session(self, request: web.Request, principal: Principal) -> web.Response:
        csrf = self._csrf_token(principal)
        return web.json_response(
            {"user": principal.user, "method": principal.method, "csrf_token": csrf, **self.governance_view(principal)}
        )

    def governance_view(self, principal: Principal | None, user: str | None = None) -> dict[str, Any]:
        """The caller's role and what it may press (the page hides the rest; the server refuses it anyway)."""
        role = principal.role if principal is not None else self.auth.role_for(user or "")
        policy = self.policy
        allowed = {
            "pause": _allows(lambda: policy.check_pause(role, "brand:x")),
            "pause_global": _allows(lambda: policy.check_pause(role, "global")),
            "resume": _allows(lambda: policy.check_resume(role, "brand:x")),
            "resume_global": _allows(lambda: policy.check_resume(role, "global") == "resume"),
            "request_resume_global": _allows(lambda: policy.check_resume(role, "global") == "request"),
            "ack": _allows(lambda: policy.check_operate(role, "brand:x", "acknowledge")),
            "schedule": _allows(lambda: policy.check_operate(role, "brand:x", "plan pauses")),
            "schedule_global": _allows(lambda: policy.check_operate(role, "global", "plan pauses")),
        }
        return {"role": role, "can": allowed, "reason_required": policy.require_reason}

    # --- state, pause, resume ------------------------------------------------------------------------
    async def state(self, request: web.Request, principal: Principal) -> web.Response:
        states = self.s.plane.status()
        names = dict((f"brand:{bid}", name) for bid, name in self.s.brands)
        scopes = ["global", *names, *sorted(s for s in states if s != "global" and s not in names)]
        rows = [scope_json(scope, states.get(scope), names.get(scope)) for scope in scopes]
        age = self.s.plane.feed.follower.view_age()
        return web.json_response(
            {
                "server_time": utcnow().isoformat(),
                "user": principal.user,
                "global": rows[0],
                "scopes": rows,
                "paused_scopes": [r["scope"] for r in rows if r["paused"]],
                "view_age_seconds": None if age is None else round(age, 3),
            }
        )

    async def pause(self, request: web.Request, principal: Principal) -> web.Response:
        body = await parse(request, PauseBody)
        check_scope(body.scope)
        self._check_role(lambda: self.policy.check_pause(principal.role, body.scope))
        reason = self._reason(body.reason, "manual pause from the crisiswatch page")
        try:
            result = await self.s.plane.pause(
                body.scope, reason=reason, actor=principal.user, resume_at=body.resume_at, on_resume=body.on_resume
            )
        except SigningUnavailable as exc:
            raise error(web.HTTPServiceUnavailable, str(exc)) from exc
        except ValueError as exc:
            raise error(web.HTTPBadRequest, str(exc)) from exc
        return web.json_response(
            {"changed": result.changed, "note": result.note, "state": scope_json(body.scope, result.message)}
        )

    async def resume(self, request: web.Request, principal: Principal) -> web.Response:
        body = await parse(request, ResumeBody)
        check_scope(body.scope)
        how = self._check_role(lambda: self.policy.check_resume(principal.role, body.scope))
        reason = self._reason(body.reason, "manual resume from the crisiswatch page")
        if how == "request":  # two-person resume: this records the request, a second person approves it
            return await self.governance.request_resume(principal, body.scope, reason, body.on_resume)
        try:
            result = await self.s.plane.resume(
                body.scope, reason=reason, actor=principal.user, on_resume=body.on_resume
            )
        except ResumeRefused as exc:
            raise error(web.HTTPForbidden, str(exc)) from exc
        except SigningUnavailable as exc:
            raise error(web.HTTPServiceUnavailable, str(exc)) from exc
        except ValueError as exc:
            raise error(web.HTTPBadRequest, str(exc)) from exc
        return web.json_response(
            {"changed": result.changed, "note": result.note, "state": scope_json(body.scope, result.message)}
        )

    async def held(self, request: web.Request, principal: Principal) -> web.Response:
        """Posts the publishing gates hold per scope, with each scope's current resume choice."""
        if self.s.held is None:
            raise error(web.HTTPNotFound, "held-post counts are not followed by this server")
        summary = self.s.held.summary()
        states = self.s.plane.status()
        for scope, row in summary["scopes"].items():
            state = states.get(scope)
            row["on_resume"] = state.on_resume if state is not None else None
        summary["default_on_resume"] = self.s.settings.control.control_default_on_resume
        return web.json_response(summary)

    # --- schedules ---------------------------------------------------------------------------------------
    async def schedules(self, request: web.Request, principal: Principal) -> web.Response:
        now = utcnow()
        return web.json_response({"schedules": [schedule_json(s, now) for s in self.s.schedules.schedules()]})

    async def add_schedule(self, request: web.Request, principal: Principal) -> web.Response:
        body = await parse(request, ScheduleBody)
        check_scope(body.scope)
        self._check_role(lambda: self.policy.check_operate(principal.role, body.scope, "plan pauses"))
        try:
            schedule = new_schedule(
                body.id,
                reason=body.reason,
                created_by=principal.user,
                scope=body.scope,
                start=body.start,
                end=body.end,
                cron=body.cron,
                duration_seconds=body.duration_seconds,
                timezone=body.timezone,
                on_resume=body.on_resume,
            )
        except ValidationError as exc:
            raise error(web.HTTPBadRequest, first_error(exc)) from exc
        try:
            stored = await self.s.schedules.add(schedule, replace=body.replace)
        except ValueError as exc:
            raise error(web.HTTPConflict, str(exc)) from exc
        return web.json_response({"schedule": schedule_json(stored, utcnow())}, status=201)

    async def remove_schedule(self, request: web.Request, principal: Principal) -> web.Response:
        schedule_id = request.match_info["schedule_id"]
        existing = next((s for s in self.s.schedules.schedules() if s.id == schedule_id), None)
        if existing is not None:
            self._check_role(lambda: self.policy.check_operate(principal.role, existing.scope, "remove planned pauses"))
        reason = request.query.get("reason", f"removed by {principal.user} from the crisiswatch page")[:2000]
        removed = await self.s.schedules.remove(schedule_id, actor=principal.user, reason=reason)
        if removed is None:
            raise error(web.HTTPNotFound, f"no schedule {schedule_id!r}")
        return web.json_response({"removed": schedule_id})

    # --- alerts --------------------------------------------------------------------------------------------
    async def alerts(self, request: web.Request, principal: Principal) -> web.Response:
        try:
            limit = max(1, min(200, int(request.query.get("limit", "50"))))
        except ValueError as exc:
            raise error(web.HTTPBadRequest, "limit must be a number") from exc
        episodes = self.s.alerts.book.recent(limit)
        return web.json_response(
            {
                "alerts": [charts.alert_view(e, self.s) for e in episodes],
                "caught_up": self.s.alerts.caught_up.is_set(),
            }
        )

    async def ack(self, request: web.Request, principal: Principal) -> web.Response:
        alert_id = request.match_info["alert_id"]
        self._check_role(lambda: self.policy.check_operate(principal.role, "brand:x", "acknowledge alerts"))
        body = await parse(request, AckBody)
        episode = self.s.alerts.book.get(alert_id)
        if episode is None:
            raise error(web.HTTPNotFound, f"no alert {alert_id!r}")
        ack = AlertAck(alert_id=alert_id, brand=episode.brand, actor=principal.user, note=body.note)
        await self.s.acks.publish(ack)
        self.s.alerts.book.add_ack(ack)
        return web.json_response({"ack": ack.model_dump(mode="json")}, status=201)


def _allows(check: Callable[[], object]) -> bool:
    """Whether a `Policy` check passes (and returns something truthy)."""
    try:
        result = check()
    except Denied:
        return False
    return result is None or bool(result)


@web.middleware
async def _headers_and_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        text = exc.text if exc.content_type == "application/json" and exc.text else None
        kept = {k: exc.headers[k] for k in ("WWW-Authenticate", "Retry-After", "Allow") if k in exc.headers}
        response = web.Response(
            status=exc.status,
            text=text or json.dumps({"error": exc.reason}),
            content_type="application/json",
            headers=kept,
        )
    except Exception:
        log.exception("error handling %s %s", request.method, request.path)
        response = web.json_response({"error": "internal error"}, status=500)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if "/api/" in request.path or request.path.endswith(("/readyz", "/healthz", "/metrics")):
        response.headers["Cache-Control"] = "no-store"
    return response


API_KEY = web.AppKey("api", Api)
"""Where the application keeps its `Api` (handlers, authenticator, rate limits)."""


def create_app(
    services: WebServices,
    authenticator: Authenticator | None = None,
    login_guard: LoginGuard | None = None,
    resume_requests: ResumeRequests | None = None,
) -> web.Application:
    """The aiohttp application (routes only; the services must be started by the caller).

    ``login_guard`` tunes login throttling (default: `LoginGuard`'s documented rule); ``resume_requests``
    holds pending two-person resumes (tests pass one with their own clock).
    """
    api = Api(services, authenticator, login_guard, resume_requests)
    if not api.auth.configured:
        log.warning("no CRISISWATCH_WEB_USERS and no CRISISWATCH_API_TOKEN: nobody can log in")
    app = web.Application(middlewares=[_headers_and_errors], client_max_size=MAX_BODY_BYTES)
    app[API_KEY] = api
    read = api.authenticated(change=False)
    change = api.authenticated(change=True)
    app.router.add_get("/", api.index)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/readyz", api.readyz)
    app.router.add_get("/metrics", api.metrics)
    app.router.add_post("/api/login", api.login)
    app.router.add_post("/api/logout", api.authenticated(change=True, limited=False)(api.logout))
    app.router.add_get("/api/session", read(api.session))
    app.router.add_get("/api/state", read(api.state))
    app.router.add_post("/api/pause", change(api.pause))
    app.router.add_post("/api/resume", change(api.resume))
    app.router.add_get("/api/held", read(api.held))
    app.router.add_get("/api/schedules", read(api.schedules))
    app.router.add_post("/api/schedules", change(api.add_schedule))
    app.router.add_delete("/api/schedules/{schedule_id}", change(api.remove_schedule))
    app.router.add_get("/api/alerts", read(api.alerts))
    app.router.add_post("/api/alerts/{alert_id}/ack", change(api.ack))
    add_silence_routes(app, api)
    api.governance.add_routes(app, read, change)
    charts.add_routes(app, services, read)
    return app


# --- running ----------------------------------------------------------------------------------------------


class WebServer:
    """Runs the app on its own port; starts (and later stops) every service it was not given."""

    def __init__(
        self,
        settings: Settings,
        *,
        plane: ControlPlane | None = None,
        schedules: ScheduleStore | None = None,
        alerts: AlertFeed | None = None,
        acks: AckPublisher | None = None,
        held: HeldBoard | None = None,
        host: str | None = None,
        port: int | None = None,
        login_guard: LoginGuard | None = None,
        resume_requests: ResumeRequests | None = None,
    ):
        self.settings = settings
        self.host = host or settings.web.web_host
        self.port = settings.web.page_port if port is None else port
        self._given = {"plane": plane, "schedules": schedules, "alerts": alerts, "acks": acks, "held": held}
        self._login_guard = login_guard
        self._resume_requests = resume_requests
        self._owned: list[Any] = []
        self.services: WebServices | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    async def start(self) -> None:
        """Start the services (reading the control state first), then listen."""
        authenticator = Authenticator(self.settings)  # fail fast on bad users before connecting
        try:
            # The workers' planes (or `schedule run`) heartbeat the state; the page's plane only changes it.
            plane = self._given["plane"] or await self._own(
                ControlPlane.from_settings(self.settings, heartbeat="off", writer="page")
            )
            schedules = self._given["schedules"] or await self._own(ScheduleStore(self.settings, keyring=plane.keyring))
            alerts = self._given["alerts"] or await self._own(AlertFeed(self.settings))
            acks = self._given["acks"] or await self._own(AckPublisher(self.settings))
            held = self._given["held"] or await self._own(HeldBoard(self.settings))
            timelines = await self._own(TimelineFeed(self.settings, plane.keyring))
            self.services = WebServices(
                self.settings, plane, schedules, alerts, acks, load_brand_names(self.settings), held=held,
                timelines=timelines,
            )
            self._runner = web.AppRunner(
                create_app(self.services, authenticator, self._login_guard, self._resume_requests), access_log=None
            )
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port)
            await site.start()
            if self.port == 0:
                server = site._server
                assert server is not None
                self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._runner.app[API_KEY].bound(self.host, self.port)
        except BaseException:
            await self.stop()
            raise
        log.info("crisiswatch page on %s", self.url)

    async def _own(self, component: Any) -> Any:
        await component.start()
        self._owned.append(component)
        return component

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        while self._owned:
            component = self._owned.pop()
            with contextlib.suppress(Exception):
                await component.stop()

    async def __aenter__(self) -> WebServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def run_forever(settings: Settings, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set (what `crisiswatch serve` runs)."""
    async with WebServer(settings):
        await stop.wait()

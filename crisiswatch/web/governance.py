"""Who may do what on the page and the API: roles, required reasons, two-person resume. No I/O.

Roles (per user in ``CRISISWATCH_WEB_ROLES``, ``alice:admin,bob:operator``; others get
``CRISISWATCH_WEB_DEFAULT_ROLE``, viewer by default; the bearer token has ``CRISISWATCH_API_TOKEN_ROLE``):

* **viewer**: reads everything (state, alerts, schedules, the audit log), changes nothing;
* **operator**: pauses any scope (``global`` too unless ``CRISISWATCH_WEB_OPERATOR_PAUSE_GLOBAL=false``),
  resumes every scope but ``global``, acknowledges alerts, plans and removes pauses of scopes but
  ``global``, asks for and approves two-person resumes;
* **admin**: everything, including resuming ``global`` alone.

Two-person resume (``CRISISWATCH_WEB_RESUME_APPROVAL=true``): an operator's resume of ``global`` becomes
a request (202); a *different* operator or an admin approves it within
``CRISISWATCH_WEB_RESUME_APPROVAL_SECONDS``, and only while the pause it was asked about is still the one
in force. Request, approval and cancellation are signed records of the audit log. Pending requests live
in the memory of the page process (like sessions): a restart forgets them, and the operator asks again.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, cast

from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.settings import Settings

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
RANK: dict[str, int] = {"viewer": 1, "operator": 2, "admin": 3}
USER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._@+-]{0,127}$"


class Denied(PermissionError):
    """The caller's role does not allow this (the message says what would)."""


class RoleConfigError(ValueError):
    """``CRISISWATCH_WEB_ROLES`` cannot be read."""


def at_least(role: str | None, minimum: Role) -> bool:
    """Whether ``role`` is ``minimum`` or above."""
    return RANK.get(role or "", 0) >= RANK[minimum]


def parse_roles(text: str) -> dict[str, Role]:
    """``alice:admin,bob:operator`` -> {user: role}."""
    roles: dict[str, Role] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        user, sep, role = item.rpartition(":")
        user, role = user.strip(), role.strip().lower()
        if not sep or not re.fullmatch(USER_PATTERN, user) or role not in RANK:
            raise RoleConfigError(
                f"CRISISWATCH_WEB_ROLES: {item[:80]!r} is not 'user:role' (roles: viewer, operator, admin)"
            )
        roles[user] = cast(Role, role)
    return roles


def highest_role(text: str) -> Role | None:
    """The highest role named in a proxy's role/groups header (``admin``, ``ops, operator`` ...), if any."""
    named = [word.lower() for word in re.split(r"[\s,;]+", text) if word.lower() in RANK]
    return cast(Role, max(named, key=RANK.__getitem__)) if named else None


@dataclass(frozen=True)
class Policy:
    """The rules, from the settings."""

    require_reason: bool = True
    operator_pause_global: bool = True
    resume_approval: bool = False
    approval_seconds: float = 900.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            require_reason=settings.control.control_require_reason,
            operator_pause_global=settings.web.web_operator_pause_global,
            resume_approval=settings.web.web_resume_approval,
            approval_seconds=settings.web.web_resume_approval_seconds,
        )

    def reason(self, given: str | None, default: str) -> str:
        """The reason to record: ``given``, or ``default`` when reasons are optional; `ValueError` when
        one is required and missing."""
        given = (given or "").strip()
        if given:
            return given
        if self.require_reason:
            raise ValueError("a reason is required: say why (it is kept in the audit log)")
        return default

    def check_pause(self, role: str | None, scope: str) -> None:
        _need(role, "operator", "pause publishing")
        if scope == "global" and not self.operator_pause_global:
            _need(role, "admin", "pause global")

    def check_resume(self, role: str | None, scope: str) -> Literal["resume", "request"]:
        """``resume``: go ahead; ``request``: an operator's resume of global becomes a two-person request."""
        _need(role, "operator", "resume publishing")
        if scope == "global" and not at_least(role, "admin"):
            if self.resume_approval:
                return "request"
            raise Denied("resuming global needs an admin")
        return "resume"

    def check_approve(self, role: str | None, user: str, request: ResumeRequest) -> None:
        _need(role, "operator", "approve a resume")
        if user == request.user:
            raise Denied("a second person must approve: you asked for this resume yourself")

    def check_cancel(self, role: str | None, user: str, request: ResumeRequest) -> None:
        if user != request.user:
            _need(role, "admin", "cancel another person's resume request")

    def check_operate(self, role: str | None, scope: str, what: str) -> None:
        """Operator for any scope but ``global``; admin for ``global`` (schedules)."""
        _need(role, "operator", what)
        if scope == "global":
            _need(role, "admin", f"{what} for global")


def _need(role: str | None, minimum: Role, what: str) -> None:
    if not at_least(role, minimum):
        article = "an" if minimum[0] in "aeiou" else "a"
        raise Denied(f"you are {role or 'not allowed'}: only {article} {minimum} or above may {what}")


# --- two-person resume --------------------------------------------------------------------------------


@dataclass
class ResumeRequest:
    """A pending request to resume ``scope``, waiting for a second person."""

    id: str
    scope: str
    user: str
    reason: str
    created_at: datetime
    expires_at: datetime
    seq: int
    """The seq of the pause it asks to end: approving a newer pause is refused."""
    episode: str
    on_resume: str | None = None

    def to_json(self, now: datetime) -> dict[str, object]:
        return {
            "id": self.id,
            "scope": self.scope,
            "requested_by": self.user,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "expires_in_seconds": max(0, round((self.expires_at - now).total_seconds())),
            "on_resume": self.on_resume,
        }


class RequestGone(LookupError):
    """No such pending request."""


class RequestExpired(RequestGone):
    """The request was not approved in time."""


@dataclass
class ResumeRequests:
    """Pending two-person resume requests (in memory), with expiry on an injectable clock."""

    clock: Callable[[], datetime] = utcnow
    _pending: dict[str, ResumeRequest] = field(default_factory=dict)
    _lapsed: dict[str, ResumeRequest] = field(default_factory=dict)

    def pending(self) -> list[ResumeRequest]:
        self._expire()
        return sorted(self._pending.values(), key=lambda r: r.created_at)

    def for_scope(self, scope: str) -> ResumeRequest | None:
        return next((r for r in self.pending() if r.scope == scope), None)

    def create(
        self, *, scope: str, user: str, reason: str, seconds: float, seq: int, episode: str, on_resume: str | None
    ) -> ResumeRequest:
        now = self.clock()
        request = ResumeRequest(
            id=secrets.token_urlsafe(9),
            scope=scope,
            user=user,
            reason=reason,
            created_at=now,
            expires_at=now + timedelta(seconds=seconds),
            seq=seq,
            episode=episode,
            on_resume=on_resume,
        )
        self._pending[request.id] = request
        return request

    def get(self, request_id: str) -> ResumeRequest:
        """The pending request; `RequestGone` when unknown, `RequestExpired` when it lapsed."""
        self._expire()
        lapsed = self._lapsed.get(request_id)
        if lapsed is not None:
            raise RequestExpired(f"the resume request by {lapsed.user} expired at {lapsed.expires_at.isoformat()}")
        request = self._pending.get(request_id)
        if request is None:
            raise RequestGone(f"no pending resume request {request_id!r}")
        return request

    def remove(self, request_id: str) -> None:
        self._pending.pop(request_id, None)

    def _expire(self) -> None:
        now = self.clock()
        for key in [k for k, r in self._pending.items() if r.expires_at <= now]:
            self._lapsed[key] = self._pending.pop(key)
        while len(self._lapsed) > 1000:
            self._lapsed.pop(next(iter(self._lapsed)))

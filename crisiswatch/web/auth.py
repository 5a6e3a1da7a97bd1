"""Who is calling: bearer token, basic auth or a login session; CSRF and rate limits. No I/O.

* Users come from ``CRISISWATCH_WEB_USERS`` (``alice:password,bob:password``); the bearer token from
  ``CRISISWATCH_API_TOKEN`` acts as ``CRISISWATCH_API_TOKEN_ACTOR``. Secrets are compared in constant
  time (``hmac.compare_digest`` over SHA-256 digests, so lengths leak nothing either).
* A login creates a server-side session: the browser holds a random token in an HttpOnly,
  SameSite=Strict cookie; the session also holds a CSRF token the page sends back in the
  ``X-CSRF-Token`` header of every change (synchroniser token). Sessions live in memory: a restart
  logs everyone out.
* `RateLimiter` is a token bucket per key (user or client address).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field

from crisiswatch.settings import Settings

USER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._@+-]{0,127}$"
RESERVED_USERS = frozenset({"detector", "scheduler"})


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def secrets_equal(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets of any length."""
    return hmac.compare_digest(_digest(given), _digest(expected))


class ConfigError(ValueError):
    """The authentication settings are unusable."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``user`` is the actor recorded for what they do."""

    user: str
    method: str
    """``session``, ``bearer`` or ``basic``."""
    session: Session | None = None


@dataclass
class Session:
    """A login session (server side)."""

    user: str
    csrf_token: str
    expires_at: float
    created_at: float = field(default_factory=time.time)


class Authenticator:
    """Checks passwords, tokens and sessions."""

    def __init__(self, settings: Settings):
        self.users = parse_users(settings.web_users.get_secret_value() if settings.web_users else "")
        self.token = settings.api_token.get_secret_value() if settings.api_token else None
        self.token_actor = settings.api_token_actor
        if self.token is not None and (len(self.token) < 16):
            raise ConfigError("CRISISWATCH_API_TOKEN is too short: use at least 16 random characters")
        _check_user(self.token_actor)
        self.session_seconds = settings.web_session_seconds
        self._sessions: dict[bytes, Session] = {}
        self._dummy = secrets.token_urlsafe(16)

    @property
    def configured(self) -> bool:
        return bool(self.users) or self.token is not None

    def check_password(self, user: str, password: str) -> bool:
        """Whether ``password`` is ``user``'s; takes the same time whether the user exists or not."""
        expected = self.users.get(user)
        ok = secrets_equal(password, expected if expected is not None else self._dummy)
        return ok and expected is not None

    def check_token(self, token: str) -> bool:
        return self.token is not None and secrets_equal(token, self.token)

    # --- sessions ----------------------------------------------------------------------------------
    def create_session(self, user: str) -> tuple[str, Session]:
        """A new session for ``user``: (cookie value, session)."""
        self._expire()
        cookie = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(32), time.time() + self.session_seconds)
        self._sessions[_digest(cookie)] = session
        return cookie, session

    def session_for(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        key = _digest(cookie)
        session = self._sessions.get(key)
        if session is None:
            return None
        if session.expires_at <= time.time():
            self._sessions.pop(key, None)
            return None
        return session

    def end_session(self, cookie: str | None) -> None:
        if cookie:
            self._sessions.pop(_digest(cookie), None)

    def _expire(self) -> None:
        now = time.time()
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]


def parse_users(text: str) -> dict[str, str]:
    """``alice:password,bob:password`` -> {user: password} (passwords may contain ':' but not ',')."""
    users: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        user, sep, password = item.partition(":")
        user = user.strip()
        if not sep or not password:
            raise ConfigError("CRISISWATCH_WEB_USERS must look like 'alice:password,bob:password'")
        _check_user(user)
        users[user] = password
    return users


def _check_user(user: str) -> None:
    if not re.fullmatch(USER_PATTERN, user):
        raise ConfigError(f"invalid user name {user!r} (letters, digits, ' ._@+-')")
    if user in RESERVED_USERS:
        raise ConfigError(f"{user!r} is reserved for the system; people act under their own names")


class RateLimiter:
    """Token bucket per key: ``per_minute`` requests a minute, bursts up to ``per_minute``."""

    def __init__(self, per_minute: int, clock: object = time.monotonic):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """0.0 when allowed (a token is taken), otherwise the seconds to wait."""
        now = self._clock()  # type: ignore[operator]
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > 10_000:
                self._buckets.pop(next(iter(self._buckets)))
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

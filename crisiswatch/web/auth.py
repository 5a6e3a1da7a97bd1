"""Who is calling and with which role: password, bearer token, login session or SSO proxy header;
CSRF and rate limits. No I/O.

* Users come from ``CRISISWATCH_WEB_USERS`` (``alice:<argon2 hash>,bob:<argon2 hash>``; `hash_password`,
  ``crisiswatch users hash``). Plain-text passwords are refused unless
  ``CRISISWATCH_WEB_ALLOW_PLAINTEXT_PASSWORDS=true`` (a migration period; it warns loudly at start).
  Argon2id verification runs in a worker thread, at most two at a time, and an unknown user costs as
  much as a known one (a dummy hash with the configured parameters).
* Roles (`crisiswatch.web.governance`): ``CRISISWATCH_WEB_ROLES``, else ``CRISISWATCH_WEB_DEFAULT_ROLE``;
  the bearer token from ``CRISISWATCH_API_TOKEN`` acts as ``CRISISWATCH_API_TOKEN_ACTOR`` with
  ``CRISISWATCH_API_TOKEN_ROLE``. Secrets are compared in constant time (``hmac.compare_digest`` over
  SHA-256 digests, so lengths leak nothing either).
* SSO: a request whose TCP peer is one of ``CRISISWATCH_WEB_TRUSTED_PROXIES`` may name its user in
  ``CRISISWATCH_WEB_PROXY_USER_HEADER`` (``X-Forwarded-User``) and role/groups in
  ``CRISISWATCH_WEB_PROXY_ROLE_HEADER``; from any other peer those headers are ignored. Changes by a
  proxy-identified user need the CSRF token ``GET /api/session`` gives them (HMAC of the user name).
* A login creates a server-side session: the browser holds a random token in an HttpOnly,
  SameSite=Strict cookie; the session also holds a CSRF token the page sends back in the
  ``X-CSRF-Token`` header of every change (synchroniser token). Sessions live in memory: a restart
  logs everyone out.
* `RateLimiter` is a token bucket per key (user or client address).
* `LoginGuard` throttles password guessing per (account, client) without ever refusing a correct password
  to a client that has not been failing (the rule is in its docstring and in the README).
* `allowed_origins` is the list the CSRF/origin check compares ``Origin``/``Referer`` with; the request's
  ``Host`` header never enters it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from crisiswatch.settings import Settings
from crisiswatch.web.governance import Role, RoleConfigError, highest_role, parse_roles

log = logging.getLogger(__name__)

USER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._@+-]{0,127}$"
RESERVED_USERS = frozenset({"detector", "scheduler"})
HASH_PREFIX = "$argon2"
HASHER = PasswordHasher()
"""Argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile): what `hash_password` writes."""
_VERIFY_SLOTS = 2
"""Password verifications at once (each takes tens of ms and 64 MiB): more wait their turn."""


def hash_password(password: str) -> str:
    """The Argon2id hash to put in ``CRISISWATCH_WEB_USERS`` (``user:<hash>``)."""
    if not password:
        raise ValueError("empty password")
    return HASHER.hash(password)


def is_hash(stored: str) -> bool:
    return stored.startswith(HASH_PREFIX)


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
    """``session``, ``bearer``, ``basic`` or ``proxy``."""
    session: Session | None = None
    role: Role | None = None
    """viewer, operator or admin (None: no role, may do nothing)."""


@dataclass
class Session:
    """A login session (server side)."""

    user: str
    csrf_token: str
    expires_at: float
    created_at: float = field(default_factory=time.time)


class Authenticator:
    """Checks passwords, tokens, sessions and SSO proxy headers; knows every caller's role."""

    def __init__(self, settings: Settings):
        self.users = parse_users(settings.web.web_users.get_secret_value() if settings.web.web_users else "")
        bcrypt = sorted(user for user, stored in self.users.items() if stored.startswith(("$2a$", "$2b$", "$2y$")))
        if bcrypt:
            raise ConfigError(
                f"CRISISWATCH_WEB_USERS: bcrypt hashes ({', '.join(bcrypt)}) are not supported; make Argon2 hashes "
                "with `crisiswatch users hash <user>`"
            )
        plain = sorted(user for user, stored in self.users.items() if not is_hash(stored))
        if plain and not settings.web.web_allow_plaintext_passwords:
            raise ConfigError(
                f"CRISISWATCH_WEB_USERS holds plain-text passwords ({', '.join(plain)}): store Argon2 hashes "
                "instead (`crisiswatch users hash <user>`), or set CRISISWATCH_WEB_ALLOW_PLAINTEXT_PASSWORDS=true "
                "for a migration period"
            )
        if plain:
            log.warning(
                "DEPRECATED: plain-text passwords for %s in CRISISWATCH_WEB_USERS; replace them with Argon2 hashes "
                "(`crisiswatch users hash <user>`) and unset CRISISWATCH_WEB_ALLOW_PLAINTEXT_PASSWORDS",
                ", ".join(plain),
            )
        for user, stored in self.users.items():
            if is_hash(stored):
                try:
                    extract_parameters(stored)
                except InvalidHashError as exc:
                    raise ConfigError(
                        f"CRISISWATCH_WEB_USERS: the hash of {user!r} is not a valid Argon2 hash"
                    ) from exc
        try:
            self.roles = parse_roles(settings.web.web_roles or "")
        except RoleConfigError as exc:
            raise ConfigError(str(exc)) from exc
        for user in self.roles:
            _check_user(user)
        default_role = settings.web.web_default_role
        self.default_role: Role | None = None if default_role == "none" else default_role
        self.token = settings.web.api_token.get_secret_value() if settings.web.api_token else None
        self.token_actor = settings.web.api_token_actor
        self.token_role: Role = settings.web.api_token_role
        if self.token is not None and (len(self.token) < 16):
            raise ConfigError("CRISISWATCH_API_TOKEN is too short: use at least 16 random characters")
        _check_user(self.token_actor)
        self.proxies = parse_networks(settings.web.web_trusted_proxies or "")
        self.proxy_user_header = settings.web.web_proxy_user_header
        self.proxy_role_header = settings.web.web_proxy_role_header
        self.session_seconds = settings.web.web_session_seconds
        self._sessions: dict[bytes, Session] = {}
        self._key = secrets.token_bytes(32)
        # An unknown user is checked against this, with the parameters of a configured hash: same cost.
        model = next((extract_parameters(h) for h in self.users.values() if is_hash(h)), None)
        hasher = PasswordHasher.from_parameters(model) if model else HASHER
        self._dummy = hasher.hash(secrets.token_urlsafe(16))
        self._slots = asyncio.Semaphore(_VERIFY_SLOTS)

    @property
    def configured(self) -> bool:
        return bool(self.users) or self.token is not None or bool(self.proxies)

    def role_for(self, user: str) -> Role | None:
        """The role of a signed-in user: `CRISISWATCH_WEB_ROLES`, else the default role."""
        return self.roles.get(user, self.default_role)

    def check_password(self, user: str, password: str) -> bool:
        """Whether ``password`` is ``user``'s; takes the same time whether the user exists or not. Blocking
        (Argon2): from a coroutine use `verify_password`."""
        expected = self.users.get(user)
        stored = expected if expected is not None else self._dummy
        if is_hash(stored):
            try:
                ok = HASHER.verify(stored, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                ok = False
        else:
            ok = secrets_equal(password, stored)
        return ok and expected is not None

    async def verify_password(self, user: str, password: str) -> bool:
        """`check_password` in a worker thread (at most two at once), leaving the event loop free."""
        async with self._slots:
            return await asyncio.to_thread(self.check_password, user, password)

    def check_token(self, token: str) -> bool:
        return self.token is not None and secrets_equal(token, self.token)

    # --- SSO through a trusted reverse proxy ---------------------------------------------------------
    def proxy_identity(self, peer: str | None, headers: Mapping[str, str]) -> tuple[str, Role | None] | None:
        """(user, role) named by a trusted proxy's headers; None when the peer is not a trusted proxy or
        names nobody. A bad user name from a trusted proxy raises `ConfigError` (the proxy is misconfigured)."""
        if not self.proxies or not peer or not is_trusted(peer, self.proxies):
            return None
        user = headers.get(self.proxy_user_header, "").strip()
        if not user:
            return None
        _check_user(user)
        role: Role | None = None
        if self.proxy_role_header:
            role = highest_role(headers.get(self.proxy_role_header, ""))
        return user, role or self.role_for(user)

    def proxy_csrf(self, user: str) -> str:
        """The CSRF token of a proxy-identified user (per process; the page reads it from /api/session)."""
        mac = hmac.new(self._key, f"crisiswatch-proxy-csrf\0{user}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

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
    """``alice:<hash>,bob:<hash>`` -> {user: stored password}.

    Argon2 hashes contain commas (``m=65536,t=3,p=4``): a piece without ``:`` after a hash belongs to it.
    Plain-text passwords (deprecated) may contain ':' but not ','.
    """
    users: dict[str, str] = {}
    last: str | None = None
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        if ":" not in item and last is not None and is_hash(users[last]):
            users[last] += "," + item
            continue
        user, sep, password = item.partition(":")
        user = user.strip()
        if not sep or not password:
            raise ConfigError("CRISISWATCH_WEB_USERS must look like 'alice:<argon2 hash>,bob:<argon2 hash>'")
        _check_user(user)
        users[user] = password
        last = user
    return users


def parse_networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``10.0.0.5, 192.168.1.0/24, ::1`` -> networks (a bare address is a /32 or /128)."""
    networks = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ConfigError(f"CRISISWATCH_WEB_TRUSTED_PROXIES: {item!r} is not an address or network") from exc
    return networks


def is_trusted(peer: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether the TCP peer address ``peer`` is in one of ``networks``."""
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


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


# --- login throttling ---------------------------------------------------------------------------------


@dataclass
class _Pair:
    failures: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


class _Decaying:
    """Counters per key that leak ``rate`` per second (a leaky bucket), bounded to ``max_entries`` keys."""

    def __init__(self, rate: float, max_entries: int):
        self.rate = rate
        self.max_entries = max_entries
        self._values: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def value(self, key: str, now: float) -> float:
        level, last = self._values.get(key, (0.0, now))
        return max(0.0, level - (now - last) * self.rate)

    def add(self, key: str, now: float) -> float:
        level = self.value(key, now) + 1.0
        self._values[key] = (level, now)
        self._values.move_to_end(key)
        while len(self._values) > self.max_entries:
            self._values.popitem(last=False)
        return level


@dataclass(frozen=True)
class LoginAttempt:
    """One password attempt as `LoginGuard` sees it: who for, from which client, and the wait (0: go on)."""

    user: str
    address: str
    client: str
    """``device:<id>`` (a browser that logged in to this account before) or ``ip:<address>``."""
    trusted: bool
    wait: float
    """Seconds to wait: > 0 means answer 429 with ``Retry-After`` and do not check the password."""


class LoginGuard:
    """Throttles password guessing without letting one attacker lock other people out. No I/O.

    The rule (also in the README):

    * A **client** is a *trusted device* for an account when it presents the device cookie this server
      issued at an earlier successful login to that account (HMAC-bound to the account, unforgeable,
      per-process key); otherwise it is its IP address.
    * Each **(account, client) pair** gets ``free_failures`` (5) wrong passwords; after that, every further
      failure locks the pair for ``base_delay`` x 2^n seconds (1 s, 2 s, 4 s ... capped at ``max_delay``,
      15 min). A locked pair is answered 429 with ``Retry-After`` *before* the password is looked at, so
      the answer says nothing about it. A success clears the pair; an hour without failures forgets it.
    * An **account under attack** (more than ``account_failures`` failures from untrusted clients within
      ``window`` seconds) is never locked: a correct password from a pair that is not locked is accepted.
      Its pairs without a trusted device only get ``free_failures_under_attack`` (1) free failure.
    * A **client address** that fails more than ``ip_failures_per_minute`` times a minute (over all accounts:
      spraying) is answered 429 for clients without a trusted device. The limit is far above what one
      attacker on one account can reach (the pair lock stops them first), so people behind the same proxy
      are not locked out by them, and trusted devices are never affected by it.

    So an attacker guessing an account's password from a shared proxy is slowed to one guess per
    15 minutes, while the account's owner still logs in from any browser that logged in before, from
    any other address, and into any other account from the same address. The one case the server cannot
    tell apart: a first login to the *attacked* account, from the attacker's own address, from a new
    browser; it waits like the attacker (telling them apart would tell the attacker which guess was right).
    """

    def __init__(
        self,
        *,
        free_failures: int = 5,
        free_failures_under_attack: int = 1,
        base_delay: float = 1.0,
        max_delay: float = 900.0,
        forget_after: float = 3600.0,
        account_failures: int = 10,
        window: float = 900.0,
        ip_failures_per_minute: int = 60,
        max_entries: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
        key: bytes | None = None,
    ):
        self.free_failures = free_failures
        self.free_failures_under_attack = free_failures_under_attack
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.account_failures = account_failures
        self.ip_failures_per_minute = ip_failures_per_minute
        self.max_entries = max_entries
        self._clock = clock
        self._key = key or secrets.token_bytes(32)
        self._pairs: OrderedDict[tuple[str, str], _Pair] = OrderedDict()
        self._accounts = _Decaying(account_failures / window, max_entries)
        self._addresses = _Decaying(ip_failures_per_minute / 60.0, max_entries)

    # --- device cookies ------------------------------------------------------------------------------
    def _mac(self, device: str, user: str) -> str:
        digest = hmac.new(self._key, f"crisiswatch-device\0{device}\0{user}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def trusted_device(self, user: str, cookie: str | None) -> str | None:
        """The device id in ``cookie`` that this server issued for ``user``, if any."""
        if not cookie or len(cookie) > MAX_DEVICE_COOKIE:
            return None
        for entry in cookie.split("~")[:MAX_DEVICE_ENTRIES]:
            device, _, mac = entry.partition(".")
            if device and mac and hmac.compare_digest(mac.encode(), self._mac(device, user).encode()):
                return device
        return None

    def device_cookie(self, user: str, cookie: str | None) -> str:
        """The device cookie after a successful login to ``user``: its entry first, then the others kept."""
        device = self.trusted_device(user, cookie) or secrets.token_urlsafe(16)
        mine = f"{device}.{self._mac(device, user)}"
        kept = [e for e in (cookie or "").split("~")[:MAX_DEVICE_ENTRIES] if e and e != mine and "." in e]
        return "~".join([mine, *kept][:MAX_DEVICE_ENTRIES])

    # --- attempts --------------------------------------------------------------------------------------
    def attempt(self, user: str, address: str, device_cookie: str | None = None) -> LoginAttempt:
        """Start an attempt: check ``wait`` before checking the password, then report the outcome."""
        user = user[:128]
        now = self._clock()
        device = self.trusted_device(user, device_cookie)
        client = f"device:{device}" if device else f"ip:{address}"
        wait = 0.0
        pair = self._pair(user, client, now)
        if pair is not None and pair.locked_until > now:
            wait = pair.locked_until - now
        if not device:
            over = self._addresses.value(address, now) - self.ip_failures_per_minute
            if over >= 0:
                wait = max(wait, (over + 1.0) / self._addresses.rate)
        return LoginAttempt(user, address, client, device is not None, wait)

    def failed(self, attempt: LoginAttempt) -> float:
        """Record a wrong password; returns the lock (seconds) it puts on the pair, 0 when none."""
        now = self._clock()
        key = (attempt.user, attempt.client)
        pair = self._pair(attempt.user, attempt.client, now) or _Pair()
        pair.failures += 1
        pair.last_failure = now
        free = self.free_failures
        if not attempt.trusted:
            self._addresses.add(attempt.address, now)
            if self._accounts.add(attempt.user, now) > self.account_failures:
                free = min(free, self.free_failures_under_attack)
        lock = 0.0
        if pair.failures >= free:
            lock = min(self.max_delay, self.base_delay * 2.0 ** (pair.failures - free))
            pair.locked_until = now + lock
        self._pairs[key] = pair
        self._pairs.move_to_end(key)
        while len(self._pairs) > self.max_entries:
            self._pairs.popitem(last=False)
        return lock

    def succeeded(self, attempt: LoginAttempt) -> None:
        """Record a correct password: the pair starts afresh."""
        self._pairs.pop((attempt.user, attempt.client), None)

    def under_attack(self, user: str) -> bool:
        return self._accounts.value(user[:128], self._clock()) > self.account_failures

    def _pair(self, user: str, client: str, now: float) -> _Pair | None:
        pair = self._pairs.get((user, client))
        if pair is not None and pair.locked_until <= now and now - pair.last_failure > self.forget_after:
            del self._pairs[(user, client)]
            return None
        return pair


MAX_DEVICE_COOKIE = 2048
MAX_DEVICE_ENTRIES = 8


# --- origins ----------------------------------------------------------------------------------------------


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL or origin, lower-cased, default port dropped; else None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = 80 if scheme == "http" else 443
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def own_origins(host: str, port: int) -> set[str]:
    """The origins of a server bound to ``host:port``: that address, plus localhost and the loopbacks."""
    names = {"localhost", "127.0.0.1", "[::1]"}
    if host and host not in ("0.0.0.0", "::", "*"):
        names.add(f"[{host}]" if ":" in host and not host.startswith("[") else host)
    return {o for name in names if (o := origin_of(f"http://{name}:{port}"))}


def allowed_origins(settings: Settings, host: str, port: int) -> frozenset[str]:
    """Origins allowed to send changes and logins: ``CRISISWATCH_WEB_ALLOWED_ORIGINS`` when set, else the
    server's own (`own_origins`); plus ``CRISISWATCH_PUBLIC_URL``'s origin. Never the request's ``Host``."""
    configured = [o.strip() for o in (settings.web.web_allowed_origins or "").split(",") if o.strip()]
    origins: set[str] = set()
    for text in configured:
        origin = origin_of(text)
        if origin is None:
            raise ConfigError(f"CRISISWATCH_WEB_ALLOWED_ORIGINS: {text!r} is not an http(s) origin")
        origins.add(origin)
    if not configured:
        origins |= own_origins(host, port)
    if settings.web.public_url and (public := origin_of(settings.web.public_url)):
        origins.add(public)
    return frozenset(origins)

"""Records of the publishing control plane, and their signatures.

Three topics carry them:

* ``publishing.control`` (compacted, key = scope): `ControlMessage`, the signed pause/resume state of
  one scope. The latest valid message per scope *is* the state. The same topic carries the signed
  state `Heartbeat` (key ``heartbeat``): a writer re-signs every scope's state and then writes one,
  every ``control_reassert_seconds``; gates fail closed without a fresh one.
* ``publishing.audit`` (append-only, key = scope): `AuditRecord`, who changed what, why, when, and
  what the state was before.
* ``publishing.schedules`` (compacted, key = schedule id): `Schedule`, a signed absolute or recurring
  pause window.

Signing: Ed25519 over the canonical JSON encoding (sorted keys, no whitespace, UTF-8) of every field of
the record except ``sig`` (so ``kid`` is covered too); ``sig`` is the hex signature. Writers hold
private keys (``CRISISWATCH_CONTROL_KEYS``, the first signs); readers verify with public keys
(``CRISISWATCH_CONTROL_PUBLIC_KEYS``, plus the public halves of any private keys they hold). Keys are
looked up by ``kid``, which is how keys rotate (see `crisiswatch.control.keys` and the README).
Legacy HMAC-SHA256 keys (``kid:secret``) are honoured only with ``CRISISWATCH_CONTROL_HMAC_MIGRATION``.
Verification works on the raw JSON object as received, so that fields a newer writer adds are covered
by the signature too.

Freshness: ``signed_at`` is when the record was (re-)signed, ``issued_at`` when the decision was made.
`verify_record` can reject records signed more than ``control_max_age_seconds`` ago; *which* records a
reader holds to that rule is the reader's policy (see `crisiswatch.control.view`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from crisiswatch.control.keys import (
    KeyConfigError,
    SignKey,
    VerifyKey,
    ed25519_signer,
    ed25519_verifier,
    hmac_signer,
    parse_private_keys,
    parse_public_keys,
)
from crisiswatch.settings import Settings
from crisiswatch.stream.records import UtcDatetime, utcnow

log = logging.getLogger(__name__)

SCOPE_KINDS = ("global", "brand", "channel", "account")
SCOPE_PATTERN = r"^(global|(brand|channel|account):[A-Za-z0-9][A-Za-z0-9._@+/-]{0,127})$"
ACTOR_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._@+-]{0,127}$"
SCHEDULE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
HEARTBEAT_KEY = "heartbeat"
"""Record key of the state heartbeat on ``publishing.control`` (not a scope, so it never collides)."""

DETECTOR = "detector"
SCHEDULER = "scheduler"
SYSTEM_ACTORS = frozenset({DETECTOR, SCHEDULER})
"""Actors that are not people. Everything else is a person's user name."""

Scope = Annotated[str, StringConstraints(pattern=SCOPE_PATTERN)]
"""``global``, ``brand:<id>``, ``channel:<name>`` or ``account:<id>``."""
Actor = Annotated[str, StringConstraints(pattern=ACTOR_PATTERN)]
ControlState = Literal["paused", "active"]
OnResume = Literal["hold", "skip", "review"]
"""What happens to posts that fell due during a pause: ``hold`` releases them in order under a rate
limit, ``skip`` drops them (and lists them), ``review`` keeps them until a person decides."""
RejectReason = Literal[
    "malformed", "unsigned", "unknown_kid", "bad_signature", "stale", "replayed", "tombstone", "key_mismatch"
]


def is_scope(value: str) -> bool:
    """Whether ``value`` is a syntactically valid scope."""
    return re.fullmatch(SCOPE_PATTERN, value) is not None


def scope_of(kind: str, name: str | None = None) -> str:
    """Build a scope: ``scope_of("global")``, ``scope_of("brand", "acme")`` -> ``"brand:acme"``."""
    scope = kind if kind == "global" else f"{kind}:{name}"
    if not is_scope(scope):
        raise ValueError(f"invalid scope {scope!r}: use global, brand:<id>, channel:<name> or account:<id>")
    return scope


def is_person(actor: str) -> bool:
    """Whether ``actor`` names a person (not the detector or the scheduler)."""
    return actor not in SYSTEM_ACTORS


class ControlRejected(Exception):
    """A control-plane record failed verification. ``reason`` is a short, bounded metric label."""

    def __init__(self, reason: RejectReason, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason: RejectReason = reason
        self.detail = detail


class SigningUnavailable(RuntimeError):
    """No signing key is configured, so nothing can be published."""


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    """The byte string that is signed: sorted keys, no whitespace, UTF-8, no NaN."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class _Signed(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kid: str | None = Field(default=None, max_length=64, description="Id of the key that signed this.")
    sig: str | None = Field(default=None, max_length=128, description="Hex signature of the rest (Ed25519).")

    def signing_payload(self) -> bytes:
        """Canonical JSON of every field except ``sig``."""
        return canonical_json(self.model_dump(mode="json", exclude={"sig"}))

    def to_bytes(self) -> bytes:
        """The wire form (JSON)."""
        return self.model_dump_json().encode()


SignedT = TypeVar("SignedT", bound=_Signed)


KeyMaterial = bytes | Ed25519PrivateKey | Ed25519PublicKey | SignKey | VerifyKey


class Keyring:
    """Signing and verification keys by key id. The first signing key signs; every key verifies.

    ``Keyring({"k1": private_key})`` signs with Ed25519 and verifies with its public half;
    ``Keyring({"k1": public_key})`` only verifies (what a gate holds); ``Keyring({"k1": b"secret"})``
    is a legacy HMAC key. `from_settings` builds it from the environment and refuses HMAC keys unless
    ``control_hmac_migration`` is set.
    """

    def __init__(self, keys: Mapping[str, KeyMaterial] | None = None):
        self._signers: dict[str, SignKey] = {}
        self._verifiers: dict[str, VerifyKey] = {}
        for kid, key in (keys or {}).items():
            self._add(kid, key)

    def _add(self, kid: str, key: KeyMaterial) -> None:
        if isinstance(key, bytes):
            key = hmac_signer(kid, key)
        elif isinstance(key, Ed25519PrivateKey):
            key = ed25519_signer(kid, key)
        elif isinstance(key, Ed25519PublicKey):
            key = ed25519_verifier(kid, key)
        if isinstance(key, SignKey):
            self._signers.setdefault(kid, key)
            key = key.verify_key()
        known = self._verifiers.get(kid)
        if known is not None and known.public_text != key.public_text:
            raise KeyConfigError(f"key id {kid!r} is configured with two different keys")
        self._verifiers.setdefault(kid, key)

    @classmethod
    def generate(cls, kid: str) -> Keyring:
        """A keyring with a fresh Ed25519 private key (tests, demos; a forger in tests)."""
        return cls({kid: Ed25519PrivateKey.generate()})

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """The private keys of ``CRISISWATCH_CONTROL_KEYS`` and the public keys of
        ``CRISISWATCH_CONTROL_PUBLIC_KEYS`` (empty when neither is set). Raises `ValueError` on a bad
        key, and on an HMAC key without ``CRISISWATCH_CONTROL_HMAC_MIGRATION=true``."""
        ring = cls()
        private = settings.control_keys.get_secret_value() if settings.control_keys is not None else ""
        for key in parse_private_keys(private):
            if key.algorithm != "ed25519" and not settings.control_hmac_migration:
                raise KeyConfigError(
                    f"CRISISWATCH_CONTROL_KEYS holds a legacy HMAC key ({key.kid!r}): generate an Ed25519 key pair "
                    "with `crisiswatch keys generate`, or set CRISISWATCH_CONTROL_HMAC_MIGRATION=true for the "
                    "migration period (see the README)"
                )
            ring._add(key.kid, key)
        for verifier in parse_public_keys(settings.control_public_keys or ""):
            ring._add(verifier.kid, verifier)
        if settings.control_hmac_migration and any(k.algorithm != "ed25519" for k in ring._verifiers.values()):
            log.warning("CRISISWATCH_CONTROL_HMAC_MIGRATION: HMAC-signed control records are accepted; end it soon")
        return ring

    def verifying_only(self, *, hmac_allowed: bool = False) -> Keyring:
        """The public half of this keyring: what a gate holds. HMAC keys are kept only with
        ``hmac_allowed`` (a migration period), because whoever holds one can also sign."""
        ring = Keyring()
        for kid, verifier in self._verifiers.items():
            if verifier.algorithm == "ed25519" or hmac_allowed:
                ring._verifiers[kid] = verifier
        return ring

    def __bool__(self) -> bool:
        """Whether anything can be verified."""
        return bool(self._verifiers)

    def __repr__(self) -> str:  # never show key material
        return f"Keyring(signing={list(self._signers)}, verifying={list(self._verifiers)})"

    @property
    def signing_kid(self) -> str | None:
        return next(iter(self._signers), None)

    @property
    def can_sign(self) -> bool:
        return bool(self._signers)

    @property
    def kids(self) -> list[str]:
        """Key ids that verify."""
        return list(self._verifiers)

    def public_keys(self) -> list[str]:
        """``kid:ed25519:<public>`` of every Ed25519 key (what to put in CRISISWATCH_CONTROL_PUBLIC_KEYS)."""
        return [f"{kid}:{v.public_text}" for kid, v in self._verifiers.items() if v.public_text is not None]

    def sign(self, record: SignedT) -> SignedT:
        """A copy of ``record`` with ``kid`` and ``sig`` set by the signing key."""
        kid = self.signing_kid
        if kid is None:
            raise SigningUnavailable(
                "no signing key: set CRISISWATCH_CONTROL_KEYS='kid:ed25519:<private key>' "
                "(`crisiswatch keys generate`) in the environment"
            )
        unsigned = record.model_copy(update={"kid": kid, "sig": None})
        return unsigned.model_copy(update={"sig": self._signers[kid].sign(unsigned.signing_payload())})

    def verify_record(
        self,
        raw: bytes | str | Mapping[str, Any] | _Signed,
        model: type[SignedT],
        *,
        max_age_seconds: float | None = None,
        now: datetime | None = None,
    ) -> SignedT:
        """Check the signature of a raw record and parse it; raise `ControlRejected` when it fails.

        With ``max_age_seconds``, records whose ``signed_at`` is further than that from ``now`` (in
        either direction) are rejected as ``stale``.
        """
        if isinstance(raw, _Signed):
            obj: Any = raw.model_dump(mode="json")
        elif isinstance(raw, bytes | str):
            try:
                obj = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise ControlRejected("malformed", "not JSON") from exc
        else:
            obj = dict(raw)
        if not isinstance(obj, dict):
            raise ControlRejected("malformed", "not a JSON object")
        obj = dict(obj)
        sig, kid = obj.pop("sig", None), obj.get("kid")
        if not sig or not kid:
            raise ControlRejected("unsigned", "record carries no signature")
        if not isinstance(kid, str) or kid not in self._verifiers:
            raise ControlRejected("unknown_kid", f"unknown key id {str(kid)[:64]!r}")
        try:
            payload = canonical_json(obj)
        except (TypeError, ValueError) as exc:
            raise ControlRejected("malformed", "record cannot be canonicalised") from exc
        if not isinstance(sig, str) or not self._verifiers[kid].verify(payload, sig):
            raise ControlRejected("bad_signature", f"signature does not match key {kid!r}")
        try:
            record = model.model_validate({**obj, "sig": sig})
        except ValidationError as exc:
            raise ControlRejected("malformed", f"signed but invalid: {exc.error_count()} error(s)") from exc
        if max_age_seconds is not None:
            signed_at = getattr(record, "signed_at", None)
            if signed_at is None:
                raise ControlRejected("malformed", "record has no signed_at")
            age = ((now or utcnow()) - signed_at).total_seconds()
            if abs(age) > max_age_seconds:
                raise ControlRejected("stale", f"signed {age:.0f} s ago (max {max_age_seconds:.0f} s)")
        return record


class ControlMessage(_Signed):
    """The signed pause/resume state of one scope, on ``publishing.control`` (key: ``scope``)."""

    scope: Scope = Field(description="'global', 'brand:<id>', 'channel:<name>' or 'account:<id>'.")
    state: ControlState
    reason: str = Field(min_length=1, max_length=2000)
    actor: Actor = Field(description="'detector', 'scheduler', or the user name of a person.")
    alert_id: str | None = Field(default=None, max_length=256, description="The alert that caused it.")
    episode: str = Field(
        min_length=1,
        max_length=256,
        description="Idempotency key of the pause episode (alert id, schedule occurrence, or manual id); "
        "a resume carries the episode it ends.",
    )
    seq: int = Field(ge=1, description="Per-scope monotonic sequence: max(previous + 1, Unix time in ms).")
    issued_at: UtcDatetime = Field(description="When the change was decided.")
    signed_at: UtcDatetime = Field(description="When this record was signed (re-signed by re-assertion).")
    resume_at: UtcDatetime | None = Field(default=None, description="A pause ends by itself at this time.")
    on_resume: OnResume = Field(description="What happens to posts that fell due during the pause.")

    @property
    def paused(self) -> bool:
        return self.state == "paused"

    @property
    def change_key(self) -> str:
        """Idempotency key of this change for external systems: ``<scope>:<seq>``."""
        return f"{self.scope}:{self.seq}"

    def verify(self, keyring: Keyring, *, max_age_seconds: float | None = None, now: datetime | None = None) -> None:
        """Raise `ControlRejected` unless this message is signed by a key of ``keyring`` (and fresh)."""
        keyring.verify_record(self, ControlMessage, max_age_seconds=max_age_seconds, now=now)


class Heartbeat(_Signed):
    """The signed state heartbeat on ``publishing.control`` (key: ``heartbeat``).

    A writer whose view of the topic is complete re-signs the state of every scope and then writes
    this, every ``control_reassert_seconds``. It says "at ``signed_at``, the state was these scopes at
    these ``seq``". A gate answers "yes" only while its newest heartbeat is younger than
    ``control_heartbeat_max_age_seconds``, and treats a scope whose listed ``seq`` it does not hold as
    unknown, so a wrong key, a truncated or emptied log, and a log nobody signs any more fail closed.
    """

    kind: Literal["heartbeat"] = "heartbeat"
    writer: Annotated[str, StringConstraints(pattern=ACTOR_PATTERN)] = Field(
        description="Which writer process signed it (component and a random id)."
    )
    signed_at: UtcDatetime
    interval_seconds: float = Field(gt=0, description="How often this writer heartbeats.")
    states: dict[Scope, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="The seq of every scope's state, as this writer holds it."
    )


class AuditRecord(_Signed):
    """One control change on ``publishing.audit`` (key: scope): who, what, why, when, and before.

    Signed by the writer's key like every control record (``kid``, ``sig``); ``crisiswatch audit``
    verifies it. ``resume_requested`` / ``resume_approved`` record a two-person resume (see
    `crisiswatch.web.governance`).
    """

    action: Literal[
        "pause",
        "resume",
        "schedule_add",
        "schedule_remove",
        "resume_requested",
        "resume_approved",
        "resume_cancelled",
        "silence_add",
        "silence_remove",
    ]
    scope: Scope
    actor: Actor
    reason: str = Field(max_length=2000)
    at: UtcDatetime
    alert_id: str | None = None
    episode: str | None = None
    seq: int | None = Field(default=None, description="Seq of the control message this change published.")
    state: ControlState | None = Field(default=None, description="State after the change.")
    on_resume: OnResume | None = None
    resume_at: UtcDatetime | None = None
    schedule_id: str | None = None
    silence_id: str | None = Field(default=None, max_length=64, description="A silence added or removed.")
    previous_state: ControlState | None = Field(default=None, description="None: the scope had no state.")
    previous_seq: int | None = None
    previous_actor: str | None = None
    previous_reason: str | None = None
    previous_episode: str | None = None
    request_id: str | None = Field(default=None, max_length=64, description="A two-person resume request.")
    requested_by: str | None = Field(default=None, max_length=128, description="Who asked for the resume.")
    expires_at: UtcDatetime | None = Field(default=None, description="When the resume request lapses.")


class Window(BaseModel):
    """One occurrence of a schedule: ``[start, end)``."""

    start: UtcDatetime
    end: UtcDatetime


class Schedule(_Signed):
    """A planned pause on ``publishing.schedules`` (key: ``id``): one absolute window or a recurring one.

    Absolute: ``start`` and ``end`` (e.g. a national day of mourning). Recurring: a ``cron`` expression
    (5 fields, or 6 with seconds last) evaluated in ``timezone``, each occurrence lasting
    ``duration_seconds`` (e.g. ``0 22 * * SAT`` for 10 h in Europe/Paris: a weekly quiet window).
    Removal is a signed record with ``removed=True`` (never an unsigned tombstone).
    """

    id: Annotated[str, StringConstraints(pattern=SCHEDULE_ID_PATTERN)]
    scope: Scope = "global"
    reason: str = Field(min_length=1, max_length=2000)
    on_resume: OnResume = "hold"
    start: UtcDatetime | None = None
    end: UtcDatetime | None = None
    cron: str | None = Field(default=None, max_length=200)
    duration_seconds: float | None = Field(default=None, gt=0, le=31 * 86400)
    timezone: str = Field("UTC", max_length=64, description="IANA zone the cron expression is read in.")
    created_by: Actor
    created_at: UtcDatetime
    signed_at: UtcDatetime
    removed: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        if self.removed:
            return self
        absolute = self.start is not None or self.end is not None
        recurring = self.cron is not None or self.duration_seconds is not None
        if absolute == recurring:
            raise ValueError("give either start+end (absolute) or cron+duration (recurring)")
        if absolute:
            if self.start is None or self.end is None or self.end <= self.start:
                raise ValueError("an absolute window needs start < end")
        else:
            if self.cron is None or self.duration_seconds is None:
                raise ValueError("a recurring window needs both cron and duration")
            if not croniter.is_valid(self.cron):
                raise ValueError(f"invalid cron expression {self.cron!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        return self

    @property
    def recurring(self) -> bool:
        return self.cron is not None

    def window_at(self, now: datetime) -> Window | None:
        """The occurrence that contains ``now``, if any (the latest one when occurrences overlap)."""
        if self.removed:
            return None
        if not self.recurring:
            assert self.start is not None and self.end is not None
            return Window(start=self.start, end=self.end) if self.start <= now < self.end else None
        assert self.cron is not None and self.duration_seconds is not None
        local = now.astimezone(ZoneInfo(self.timezone)).replace(microsecond=0) + timedelta(seconds=1)
        start = croniter(self.cron, local).get_prev(datetime).astimezone(UTC)
        end = start + timedelta(seconds=self.duration_seconds)
        return Window(start=start, end=end) if start <= now < end else None

    def next_boundary(self, now: datetime) -> datetime | None:
        """The next instant after ``now`` at which an occurrence starts or ends."""
        if self.removed:
            return None
        current = self.window_at(now)
        candidates = [current.end] if current else []
        if not self.recurring:
            assert self.start is not None
            if self.start > now:
                candidates.append(self.start)
        else:
            assert self.cron is not None
            local = now.astimezone(ZoneInfo(self.timezone))
            candidates.append(croniter(self.cron, local).get_next(datetime).astimezone(UTC))
        future = [c for c in candidates if c > now]
        return min(future) if future else None

    def episode_for(self, window: Window) -> str:
        """Idempotency key of one occurrence: ``schedule:<id>:<start>``."""
        return f"schedule:{self.id}:{window.model_dump(mode='json')['start']}"


SCHEDULE_EPISODE_PREFIX = "schedule:"


def schedule_id_of(episode: str) -> str | None:
    """The schedule id inside a schedule episode key, or None for any other episode."""
    if not episode.startswith(SCHEDULE_EPISODE_PREFIX):
        return None
    return episode[len(SCHEDULE_EPISODE_PREFIX) :].split(":", 1)[0]


SCHEMA_FILES: dict[str, type[BaseModel]] = {
    "control.v1.json": ControlMessage,
    "audit.v1.json": AuditRecord,
    "schedule.v1.json": Schedule,
    "control_heartbeat.v1.json": Heartbeat,
}
"""Picked up by ``python -m crisiswatch.stream.schema_files``."""

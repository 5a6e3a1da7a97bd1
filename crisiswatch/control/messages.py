"""The signatures of the control-plane records: `Keyring` signs and verifies them.

The records (`ControlMessage` and its `Heartbeat` on ``publishing.control``, `AuditRecord`, `Schedule`,
`Silence`) are contracts: `crisiswatch.contracts.control`. Gates fail closed without a fresh heartbeat.

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
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from crisiswatch.contracts.control import SignedRecord, canonical_json
from crisiswatch.contracts.vocabulary import utcnow
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
from crisiswatch.settings import ControlSettings

log = logging.getLogger(__name__)

RejectReason = Literal[
    "malformed", "unsigned", "unknown_kid", "bad_signature", "stale", "replayed", "tombstone", "key_mismatch"
]


class ControlRejected(Exception):
    """A control-plane record failed verification. ``reason`` is a short, bounded metric label."""

    def __init__(self, reason: RejectReason, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason: RejectReason = reason
        self.detail = detail


class SigningUnavailable(RuntimeError):
    """No signing key is configured, so nothing can be published."""


SignedT = TypeVar("SignedT", bound=SignedRecord)


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
    def from_settings(cls, control: ControlSettings) -> Keyring:
        """The private keys of ``CRISISWATCH_CONTROL_KEYS`` and the public keys of
        ``CRISISWATCH_CONTROL_PUBLIC_KEYS`` (empty when neither is set). Raises `ValueError` on a bad
        key, and on an HMAC key without ``CRISISWATCH_CONTROL_HMAC_MIGRATION=true``."""
        ring = cls()
        private = control.control_keys.get_secret_value() if control.control_keys is not None else ""
        for key in parse_private_keys(private):
            if key.algorithm != "ed25519" and not control.control_hmac_migration:
                raise KeyConfigError(
                    f"CRISISWATCH_CONTROL_KEYS holds a legacy HMAC key ({key.kid!r}): generate an Ed25519 key pair "
                    "with `crisiswatch keys generate`, or set CRISISWATCH_CONTROL_HMAC_MIGRATION=true for the "
                    "migration period (see the README)"
                )
            ring._add(key.kid, key)
        for verifier in parse_public_keys(control.control_public_keys or ""):
            ring._add(verifier.kid, verifier)
        if control.control_hmac_migration and any(k.algorithm != "ed25519" for k in ring._verifiers.values()):
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
        raw: bytes | str | Mapping[str, Any] | SignedRecord,
        model: type[SignedT],
        *,
        max_age_seconds: float | None = None,
        now: datetime | None = None,
    ) -> SignedT:
        """Check the signature of a raw record and parse it; raise `ControlRejected` when it fails.

        With ``max_age_seconds``, records whose ``signed_at`` is further than that from ``now`` (in
        either direction) are rejected as ``stale``.
        """
        if isinstance(raw, SignedRecord):
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



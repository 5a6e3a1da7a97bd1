"""Key material of the control plane: Ed25519 key pairs (and legacy HMAC secrets, for migration only).

Writers (the control plane, the scheduler, the CLI's pause/resume, the page) hold a *private* key and
sign; gates and every other reader hold only *public* keys and verify, so a compromised publishing
service cannot forge a resume. Keys travel in environment variables as text:

* private (``CRISISWATCH_CONTROL_KEYS``, secret): ``kid:ed25519:<base64url 32-byte seed>``;
* public (``CRISISWATCH_CONTROL_PUBLIC_KEYS``): ``kid:ed25519:<base64url 32-byte public key>``;
* legacy HMAC (``CRISISWATCH_CONTROL_KEYS``, only with ``CRISISWATCH_CONTROL_HMAC_MIGRATION=true``):
  ``kid:<secret>``.

``crisiswatch keys generate`` prints a new pair. Nothing here ever puts key bytes in a repr or a log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = "ed25519"
KID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class KeyConfigError(ValueError):
    """A key in the configuration cannot be used (the message never contains key material)."""


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    text = text.strip().replace("+", "-").replace("/", "_")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise KeyConfigError("not base64") from exc


def _check_kid(kid: str) -> str:
    if not re.fullmatch(KID_PATTERN, kid):
        raise KeyConfigError(f"invalid key id {kid[:64]!r} (letters, digits, '.', '_', '-'; at most 64)")
    return kid


@dataclass(frozen=True)
class VerifyKey:
    """Something that checks a signature: an Ed25519 public key, or a legacy HMAC secret."""

    kid: str
    algorithm: str
    _public: Ed25519PublicKey | None = field(default=None, repr=False)
    _secret: bytes | None = field(default=None, repr=False)

    def verify(self, payload: bytes, sig: str) -> bool:
        if self._public is not None:
            try:
                self._public.verify(bytes.fromhex(sig), payload)
            except (InvalidSignature, ValueError):
                return False
            return True
        assert self._secret is not None
        expected = hmac.new(self._secret, payload, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, sig)

    @property
    def public_text(self) -> str | None:
        """``ed25519:<base64url>`` for an Ed25519 key (None for HMAC, which has no public half)."""
        if self._public is None:
            return None
        return f"{ED25519}:{_b64encode(self._public.public_bytes(Encoding.Raw, PublicFormat.Raw))}"


@dataclass(frozen=True)
class SignKey:
    """A key that signs: an Ed25519 private key, or a legacy HMAC secret."""

    kid: str
    algorithm: str
    _private: Ed25519PrivateKey | None = field(default=None, repr=False)
    _secret: bytes | None = field(default=None, repr=False)

    def sign(self, payload: bytes) -> str:
        """Hex signature of ``payload`` (Ed25519: 128 hex chars; HMAC-SHA256: 64)."""
        if self._private is not None:
            return self._private.sign(payload).hex()
        assert self._secret is not None
        return hmac.new(self._secret, payload, hashlib.sha256).hexdigest()

    def verify_key(self) -> VerifyKey:
        """What verifies this key's signatures (the public key; for HMAC, the secret itself)."""
        if self._private is not None:
            return VerifyKey(self.kid, ED25519, _public=self._private.public_key())
        return VerifyKey(self.kid, "hmac-sha256", _secret=self._secret)


def ed25519_signer(kid: str, private: Ed25519PrivateKey) -> SignKey:
    return SignKey(_check_kid(kid), ED25519, _private=private)


def ed25519_verifier(kid: str, public: Ed25519PublicKey) -> VerifyKey:
    return VerifyKey(_check_kid(kid), ED25519, _public=public)


def hmac_signer(kid: str, secret: bytes) -> SignKey:
    if not secret:
        raise KeyConfigError(f"empty HMAC secret for key {kid!r}")
    return SignKey(kid, "hmac-sha256", _secret=bytes(secret))


def _entries(text: str, what: str) -> list[tuple[str, str]]:
    entries: list[tuple[str, str]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        kid, sep, rest = item.partition(":")
        if not sep or not kid or not rest:
            raise KeyConfigError(f"{what} must look like 'kid:ed25519:<base64>[,kid:...]'")
        entries.append((kid, rest))
    return entries


def parse_private_keys(text: str) -> list[SignKey]:
    """``kid:ed25519:<seed>`` entries (Ed25519) and ``kid:<secret>`` entries (legacy HMAC), in order."""
    keys: list[SignKey] = []
    for kid, rest in _entries(text, "CRISISWATCH_CONTROL_KEYS"):
        algorithm, sep, encoded = rest.partition(":")
        if sep and algorithm == ED25519:
            seed = _b64decode(encoded)
            if len(seed) != 32:
                raise KeyConfigError(f"the Ed25519 private key {kid!r} must be 32 bytes (base64url)")
            keys.append(ed25519_signer(kid, Ed25519PrivateKey.from_private_bytes(seed)))
        else:
            keys.append(hmac_signer(kid, rest.encode()))
    return keys


def parse_public_keys(text: str) -> list[VerifyKey]:
    """``kid:ed25519:<base64url public key>`` entries (the ``ed25519:`` prefix may be left out)."""
    keys: list[VerifyKey] = []
    for kid, rest in _entries(text, "CRISISWATCH_CONTROL_PUBLIC_KEYS"):
        encoded = rest.removeprefix(f"{ED25519}:")
        raw = _b64decode(encoded)
        if len(raw) != 32:
            raise KeyConfigError(f"the Ed25519 public key {kid!r} must be 32 bytes (base64url)")
        keys.append(ed25519_verifier(kid, Ed25519PublicKey.from_public_bytes(raw)))
    return keys


@dataclass(frozen=True)
class KeyPair:
    """A new Ed25519 key pair as configuration text."""

    kid: str
    private: str = field(repr=False)
    """``kid:ed25519:<seed>``: for ``CRISISWATCH_CONTROL_KEYS`` of writers only. A secret."""
    public: str
    """``kid:ed25519:<public>``: for ``CRISISWATCH_CONTROL_PUBLIC_KEYS`` of every reader."""


def generate_key_pair(kid: str) -> KeyPair:
    """A fresh Ed25519 key pair (from the operating system's CSPRNG)."""
    private = Ed25519PrivateKey.generate()
    return key_pair_text(kid, private)


def key_pair_text(kid: str, private: Ed25519PrivateKey) -> KeyPair:
    _check_kid(kid)
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return KeyPair(kid, f"{kid}:{ED25519}:{_b64encode(seed)}", f"{kid}:{ED25519}:{_b64encode(public)}")


def public_text(key: SignKey | VerifyKey) -> str | None:
    """``kid:ed25519:<public>`` for an Ed25519 key; None for HMAC."""
    verifier = key.verify_key() if isinstance(key, SignKey) else key
    text = verifier.public_text
    return None if text is None else f"{verifier.kid}:{text}"

"""The in-memory view of ``publishing.control``: which scope is paused, and why. No Kafka, no I/O.

Every reader (gate, control plane, relay, scheduler) feeds the records it reads into a `ControlView`
through `ControlView.ingest`, which applies the one acceptance policy:

1. The signature must verify (`Keyring.verify_record`); the record key must equal its scope.
   Anything else is rejected, counted, logged, and **never changes state**.
2. Ordering: per scope, a record replaces the current state only when ``(seq, signed_at)`` is larger.
   A lower ``seq`` is rejected as ``replayed`` (an old genuine message written again); the same
   ``seq`` with a later ``signed_at`` is a re-assertion of the same change and is accepted.
3. Freshness: a *live* resume (one read after the reader caught up with the topic) signed more than
   ``control_max_age_seconds`` ago is rejected as ``stale``. History is not held to that rule,
   because the compacted latest state of a quiet scope is legitimately old; pauses are never
   rejected for age, because honouring a late pause is always the safe side.

Re-assertion closes the remaining gaps: a long-running `ControlPlane` (``reassert_seconds``, as in
``crisiswatch schedule run``) re-signs the current state of every scope periodically, and at once
after it sees a rejected record on a scope. It keeps the ``seq`` (readers treat it as the same
change), unless a genuinely signed record with a higher ``seq`` was refused (a resume that arrived too
late): then it takes a higher ``seq`` so that the state supersedes that record in every reader, new
or old. Either way the last record per key in the compacted topic is again a genuine, recent one, so
that (while such a plane runs) a forged, deleting (tombstone) or replayed record does not stay the
last record of a key, which is what a reader starting after log compaction would otherwise see.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from crisiswatch.control import metrics
from crisiswatch.control.messages import (
    ControlMessage,
    ControlRejected,
    Keyring,
    OnResume,
    is_scope,
)
from stream.records import utcnow

log = logging.getLogger(__name__)

Outcome = Literal["applied", "reasserted", "duplicate"]


@dataclass(frozen=True)
class Decision:
    """Whether a post may go out now, and if not, which scope blocks it and what happens on resume."""

    allowed: bool
    reason: str
    scope: str | None = None
    on_resume: OnResume | None = None
    resume_at: datetime | None = None
    alert_id: str | None = None

    def __bool__(self) -> bool:
        return self.allowed


def scopes_for(*, channel: str | None = None, account: str | None = None, brand: str | None = None) -> list[str]:
    """The scopes that govern a post, in precedence order: global, brand, channel, account."""
    scopes = ["global"]
    for kind, name in (("brand", brand), ("channel", channel), ("account", account)):
        if name:
            scopes.append(f"{kind}:{name}")
    return scopes


@dataclass(frozen=True)
class Ingested:
    """What `ControlView.ingest` did with one record."""

    outcome: Outcome | None
    message: ControlMessage | None = None
    previous: ControlMessage | None = None
    rejected: ControlRejected | None = None
    scope: str | None = None

    @property
    def changed(self) -> bool:
        """A new change (not a re-assertion or duplicate) was applied."""
        return self.outcome == "applied"


class ControlView:
    """Latest valid control message per scope, plus the episodes each scope has seen. Thread-safe.

    Every applied state is also reported to ``scopes`` (default: the process's
    ``crisiswatch_scope_paused`` gauge), so every process that follows the topic exports it.
    """

    def __init__(self, keyring: Keyring, max_age_seconds: float, *, scopes: metrics.ScopePausedTracker | None = None):
        self.keyring = keyring
        self.max_age_seconds = max_age_seconds
        self.scopes = scopes if scopes is not None else metrics.SCOPES
        self._states: dict[str, ControlMessage] = {}
        self._episodes: dict[str, set[str]] = {}
        self._max_seq: dict[str, int] = {}
        self._lock = threading.Lock()

    # --- reading ---------------------------------------------------------------------------------
    def get(self, scope: str) -> ControlMessage | None:
        with self._lock:
            return self._states.get(scope)

    def states(self) -> dict[str, ControlMessage]:
        """Latest valid message of every scope that has one, sorted by scope."""
        with self._lock:
            return dict(sorted(self._states.items()))

    def episode_seen(self, scope: str, episode: str) -> bool:
        """Whether any valid message for ``scope`` carried ``episode`` (idempotency of triggers)."""
        with self._lock:
            return episode in self._episodes.get(scope, ())

    def max_seq(self, scope: str) -> int:
        """Highest ``seq`` of any genuinely signed record seen for ``scope``, applied or refused as late."""
        with self._lock:
            return self._max_seq.get(scope, 0)

    def decide(self, scopes: Iterable[str]) -> Decision:
        """The decision for a post governed by ``scopes`` (precedence order; first pause wins)."""
        with self._lock:
            for scope in scopes:
                message = self._states.get(scope)
                if message is not None and message.paused:
                    return Decision(
                        allowed=False,
                        reason=f"{scope} paused by {message.actor}: {message.reason}",
                        scope=scope,
                        on_resume=message.on_resume,
                        resume_at=message.resume_at,
                        alert_id=message.alert_id,
                    )
        return Decision(allowed=True, reason="no matching scope is paused")

    # --- writing ---------------------------------------------------------------------------------
    def apply(self, message: ControlMessage) -> Ingested:
        """Apply an already verified message under the ordering rule (raises ``replayed``)."""
        with self._lock:
            current = self._states.get(message.scope)
            if current is not None:
                if message.seq < current.seq:
                    raise ControlRejected(
                        "replayed", f"{message.scope} seq {message.seq} is older than seq {current.seq}"
                    )
                if message.seq == current.seq and message.signed_at <= current.signed_at:
                    return Ingested("duplicate", current, current, scope=message.scope)
            self._states[message.scope] = message
            self._episodes.setdefault(message.scope, set()).add(message.episode)
            self.scopes.observe(message.scope, message.paused)
            outcome: Outcome = "reasserted" if current is not None and current.seq == message.seq else "applied"
            return Ingested(outcome, message, current, scope=message.scope)

    def ingest(self, key: bytes | None, value: bytes | None, *, live: bool, now: datetime | None = None) -> Ingested:
        """Verify one raw record of the control topic and apply it. Never raises on bad input."""
        scope = _decode_key(key)
        try:
            if value is None:
                raise ControlRejected("tombstone", "null record (deletion) on the control topic")
            message = self.keyring.verify_record(value, ControlMessage)
            if scope != message.scope:
                raise ControlRejected("key_mismatch", f"record key {scope!r} != scope {message.scope!r}")
            with self._lock:
                self._max_seq[scope] = max(self._max_seq.get(scope, 0), message.seq)
            if live and not message.paused:
                self.keyring.verify_record(
                    message, ControlMessage, max_age_seconds=self.max_age_seconds, now=now or utcnow()
                )
            return self.apply(message)
        except ControlRejected as rejected:
            log.warning("rejected control record for %r: %s", scope, rejected)
            return Ingested(None, rejected=rejected, scope=scope)


def _decode_key(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        text = key.decode()
    except UnicodeDecodeError:
        return None
    return text if is_scope(text) else None

"""The in-memory view of ``publishing.control``: which scope is paused, and why. No Kafka, no I/O.

Every reader (gate, control plane, relay, scheduler, status) feeds the records it reads into a
`ControlView` through `ControlView.ingest`, which applies the one acceptance policy:

1. The signature must verify (`Keyring.verify_record`); the record key must equal its scope.
   Anything else is rejected and counted, and **never changes state**; but a scope whose *newest*
   record fails verification (forged, unsigned, unknown key, deletion, key mismatch, garbage) is
   **unknown** until a verified record for it or a newer verified heartbeat follows, and unknown
   means "not allowed" (`decide`).
2. Ordering: per scope, a record replaces the current state only when ``(seq, signed_at)`` is larger.
   A lower ``seq`` is rejected as ``replayed`` (an old genuine message written again); the same
   ``seq`` with a later ``signed_at`` is a re-assertion of the same change and is accepted.
3. Lateness (resumes only; honouring a late pause is always the safe side): a resume is refused as
   ``stale`` when it was signed more than ``control_max_age_seconds`` before the newest ``signed_at``
   already in the log ahead of it (the *log clock*, kept from every verified record and heartbeat).
   That rule depends only on the log, so every reader, whenever it starts, makes the same decision;
   a running reader also refuses a resume signed more than that long before *now*.
4. The state heartbeat (`Heartbeat`, key ``heartbeat``): the newest verified one is kept (its age is
   what the gate checks) and vouches for the whole state: any scope it lists at a ``seq`` this view
   does not hold becomes unknown (this reader missed or could not verify a record the writer holds),
   and every other scope is settled.

Writers repair the log: a `ControlPlane` heartbeat re-signs the current state of every scope, and a
plane re-asserts a scope at once after it sees a rejected record on it, taking a higher ``seq`` when a
genuinely signed record with a higher one was refused as late, so that the last record per key in the
compacted topic is again a genuine, recent one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from crisiswatch.contracts.control import HEARTBEAT_KEY, ControlMessage, Heartbeat, OnResume, is_scope
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control import metrics
from crisiswatch.control.messages import ControlRejected, Keyring

Outcome = Literal["applied", "reasserted", "duplicate", "heartbeat"]
UNVERIFIABLE = frozenset({"malformed", "unsigned", "unknown_kid", "bad_signature", "tombstone", "key_mismatch"})
"""Rejections that leave a scope unknown: its newest record could not be verified as genuine."""


@dataclass(frozen=True)
class Decision:
    """Whether a post may go out now, and if not, which scope blocks it and what happens on resume."""

    allowed: bool
    reason: str
    scope: str | None = None
    on_resume: OnResume | None = None
    resume_at: datetime | None = None
    alert_id: str | None = None
    behind_held: bool = False
    """Not paused, but held posts of the same outlet go out first: defer this post behind them."""

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
    heartbeat: Heartbeat | None = None
    missing: tuple[str, ...] = ()
    """Scopes a heartbeat lists at a seq this view does not hold (they are now unknown)."""

    @property
    def changed(self) -> bool:
        """A new change (not a re-assertion, duplicate or heartbeat) was applied."""
        return self.outcome == "applied"


class ControlView:
    """Latest valid control message per scope, the episodes each scope has seen, the scopes whose
    state cannot be verified, and the newest state heartbeat. Thread-safe.

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
        self._unknown: dict[str, tuple[str, int]] = {}
        self._heartbeat: Heartbeat | None = None
        self._log_clock: datetime | None = None
        self._lock = threading.Lock()

    # --- reading ---------------------------------------------------------------------------------
    def get(self, scope: str) -> ControlMessage | None:
        with self._lock:
            return self._states.get(scope)

    def states(self) -> dict[str, ControlMessage]:
        """Latest valid message of every scope that has one, sorted by scope."""
        with self._lock:
            return dict(sorted(self._states.items()))

    def unknown(self) -> dict[str, str]:
        """Scopes whose state cannot be verified now, with the reason, sorted by scope."""
        with self._lock:
            return {scope: why for scope, (why, _) in sorted(self._unknown.items())}

    @property
    def heartbeat(self) -> Heartbeat | None:
        """The newest verified state heartbeat (None: none read)."""
        with self._lock:
            return self._heartbeat

    def heartbeat_age(self, now: datetime | None = None) -> float | None:
        """Seconds since the newest verified heartbeat was signed (None: none read)."""
        heartbeat = self.heartbeat
        if heartbeat is None:
            return None
        return ((now or utcnow()) - heartbeat.signed_at).total_seconds()

    @property
    def log_clock(self) -> datetime | None:
        """The newest ``signed_at`` of any verified record read so far (never ahead of the reader's now)."""
        with self._lock:
            return self._log_clock

    def episode_seen(self, scope: str, episode: str) -> bool:
        """Whether any valid message for ``scope`` carried ``episode`` (idempotency of triggers)."""
        with self._lock:
            return episode in self._episodes.get(scope, ())

    def max_seq(self, scope: str) -> int:
        """Highest ``seq`` of any genuinely signed record seen for ``scope``, applied or refused as late."""
        with self._lock:
            return self._max_seq.get(scope, 0)

    def decide(self, scopes: Iterable[str]) -> Decision:
        """The decision for a post governed by ``scopes`` (precedence order): the first paused scope
        blocks; otherwise the first scope whose state is unknown blocks; otherwise allowed."""
        scopes = list(scopes)
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
            for scope in scopes:
                if scope in self._unknown:
                    why = self._unknown[scope][0]
                    return Decision(allowed=False, reason=f"{scope} is unknown: {why}: failing closed", scope=scope)
        return Decision(allowed=True, reason="no matching scope is paused")

    # --- writing ---------------------------------------------------------------------------------
    def clear(self) -> dict[str, ControlMessage]:
        """Forget everything (the log was truncated or re-created); returns the states held before."""
        with self._lock:
            before = dict(self._states)
            self._states.clear()
            self._episodes.clear()
            self._max_seq.clear()
            self._unknown.clear()
            self._heartbeat = None
            self._log_clock = None
            return before

    def _tick(self, signed_at: datetime, now: datetime) -> None:
        """Advance the log clock (caller holds the lock); a record from the future moves it to now only."""
        moment = min(signed_at, now)
        if self._log_clock is None or moment > self._log_clock:
            self._log_clock = moment

    def apply(self, message: ControlMessage, *, now: datetime | None = None) -> Ingested:
        """Apply an already verified message under the ordering rule (raises ``replayed``)."""
        with self._lock:
            self._tick(message.signed_at, now or utcnow())
            current = self._states.get(message.scope)
            if current is not None:
                if message.seq < current.seq:
                    raise ControlRejected(
                        "replayed", f"{message.scope} seq {message.seq} is older than seq {current.seq}"
                    )
                if message.seq == current.seq and message.signed_at <= current.signed_at:
                    self._clear_unknown(message)
                    return Ingested("duplicate", current, current, scope=message.scope)
            self._states[message.scope] = message
            self._episodes.setdefault(message.scope, set()).add(message.episode)
            self._max_seq[message.scope] = max(self._max_seq.get(message.scope, 0), message.seq)
            self._clear_unknown(message)
            self.scopes.observe(message.scope, message.paused)
            outcome: Outcome = "reasserted" if current is not None and current.seq == message.seq else "applied"
            return Ingested(outcome, message, current, scope=message.scope)

    def _clear_unknown(self, message: ControlMessage) -> None:
        unknown = self._unknown.get(message.scope)
        if unknown is not None and message.seq >= unknown[1]:
            del self._unknown[message.scope]

    def _mark_unknown(self, scope: str, why: str, needed_seq: int = 0) -> None:
        with self._lock:
            self._unknown[scope] = (why, needed_seq)

    def ingest(self, key: bytes | None, value: bytes | None, *, live: bool, now: datetime | None = None) -> Ingested:
        """Verify one raw record of the control topic and apply it. Never raises on bad input."""
        now = now or utcnow()
        if key == HEARTBEAT_KEY.encode():
            return self._ingest_heartbeat(value, now)
        scope = _decode_key(key)
        try:
            if value is None:
                raise ControlRejected("tombstone", "null record (deletion) on the control topic")
            message = self.keyring.verify_record(value, ControlMessage)
            if scope != message.scope:
                raise ControlRejected("key_mismatch", f"record key {scope!r} != scope {message.scope!r}")
            with self._lock:
                self._max_seq[scope] = max(self._max_seq.get(scope, 0), message.seq)
            if not message.paused:
                self._check_late(message, live=live, now=now)
            return self.apply(message, now=now)
        except ControlRejected as rejected:
            if scope is not None and rejected.reason in UNVERIFIABLE:
                self._mark_unknown(scope, f"its newest control record failed verification ({rejected.reason})")
            return Ingested(None, rejected=rejected, scope=scope)

    def _check_late(self, message: ControlMessage, *, live: bool, now: datetime) -> None:
        """Refuse a resume that reached the log more than ``max_age_seconds`` after it was signed."""
        if live:
            self.keyring.verify_record(message, ControlMessage, max_age_seconds=self.max_age_seconds, now=now)
        clock = self.log_clock
        if clock is not None:
            behind = (clock - message.signed_at).total_seconds()
            if behind > self.max_age_seconds:
                raise ControlRejected(
                    "stale",
                    f"signed {behind:.0f} s before records already in the log (max {self.max_age_seconds:.0f} s)",
                )

    def _ingest_heartbeat(self, value: bytes | None, now: datetime) -> Ingested:
        try:
            if value is None:
                raise ControlRejected("tombstone", "null heartbeat record")
            heartbeat = self.keyring.verify_record(value, Heartbeat)
        except ControlRejected as rejected:
            return Ingested(None, rejected=rejected, scope=None)
        missing: list[str] = []
        with self._lock:
            self._tick(heartbeat.signed_at, now)
            if self._heartbeat is not None and heartbeat.signed_at <= self._heartbeat.signed_at:
                return Ingested("heartbeat", heartbeat=heartbeat)  # an older one (replayed, or another writer's)
            self._heartbeat = heartbeat
            # The newest heartbeat vouches for the whole state: what it lists at a seq this view does
            # not hold is unknown, and nothing else is (a forged record on a scope it lists as held, or
            # does not list at all, is settled by it).
            unknown: dict[str, tuple[str, int]] = {}
            for scope, seq in heartbeat.states.items():
                held = self._states.get(scope)
                if held is None or held.seq < seq:
                    missing.append(scope)
                    have = f"seq {held.seq}" if held else "nothing"
                    why = f"the heartbeat of {heartbeat.writer} holds seq {seq} and this reader {have}"
                    unknown[scope] = (why, seq)
            self._unknown = unknown
        return Ingested("heartbeat", heartbeat=heartbeat, missing=tuple(missing))


def _decode_key(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        text = key.decode()
    except UnicodeDecodeError:
        return None
    return text if is_scope(text) else None

"""The records of the publishing control plane, as they travel: signed, with their JSON Schemas.

- ``publishing.control`` (compacted, key = scope): `ControlMessage`, the signed pause/resume state of one
  scope (the latest valid message per scope *is* the state), and the signed state `Heartbeat` (key
  ``heartbeat``).
- ``publishing.audit`` (append-only, key = scope): `AuditRecord`, who changed what, why, when, and what the
  state was before.
- ``publishing.schedules`` (compacted, key = schedule id): `Schedule`, a signed absolute or recurring pause.
- ``publishing.silences`` (compacted, key = silence id): `Silence`, a signed planned event.
- ``publishing.held`` (compacted, key = reporting gate): `HeldReport`, advisory counts of held posts.

Signing covers the canonical JSON (`canonical_json`) of every field of a `SignedRecord` except ``sig``;
the keys that sign and verify, and the rules a reader applies, are `crisiswatch.control.messages.Keyring`'s.

Pure: pydantic, croniter and the standard library only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from crisiswatch.contracts.vocabulary import UtcDatetime

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


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    """The byte string that is signed: sorted keys, no whitespace, UTF-8, no NaN."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class SignedRecord(BaseModel):
    """A record signed by a control-plane writer: ``kid`` names the key, ``sig`` is the signature."""

    model_config = ConfigDict(extra="ignore")

    kid: str | None = Field(default=None, max_length=64, description="Id of the key that signed this.")
    sig: str | None = Field(default=None, max_length=128, description="Hex signature of the rest (Ed25519).")

    def signing_payload(self) -> bytes:
        """Canonical JSON of every field except ``sig``."""
        return canonical_json(self.model_dump(mode="json", exclude={"sig"}))

    def to_bytes(self) -> bytes:
        """The wire form (JSON)."""
        return self.model_dump_json().encode()


class ControlMessage(SignedRecord):
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


class Heartbeat(SignedRecord):
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


class AuditRecord(SignedRecord):
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


class Schedule(SignedRecord):
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


SILENCE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
BRAND_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+/-]{0,127}$"
MAX_SILENCE = timedelta(days=31)
"""The longest silence: a planned event, not a way to switch a brand off (use ``pause_scope: none``)."""


class Silence(SignedRecord):
    """A planned event on ``publishing.silences`` (key: ``id``): the brand's alerts are marked, never pause."""

    id: Annotated[str, StringConstraints(pattern=SILENCE_ID_PATTERN)]
    brand: Annotated[str, StringConstraints(pattern=BRAND_PATTERN)] = Field(description="Brand id.")
    start: UtcDatetime = Field(description="Event time the silence begins (inclusive).")
    end: UtcDatetime = Field(description="Event time the silence ends (exclusive).")
    reason: str = Field(min_length=1, max_length=2000, description="The planned event.")
    created_by: Annotated[str, StringConstraints(pattern=ACTOR_PATTERN)] = Field(description="Who planned it.")
    created_at: UtcDatetime
    signed_at: UtcDatetime
    removed: bool = False

    @model_validator(mode="after")
    def _window(self) -> Silence:
        if self.end <= self.start:
            raise ValueError("a silence needs start < end")
        if self.end - self.start > MAX_SILENCE:
            raise ValueError(f"a silence lasts at most {MAX_SILENCE.days} days")
        return self

    def covers(self, start: datetime, end: datetime) -> bool:
        """Whether the window ``[start, end)`` overlaps this silence (a removed silence covers nothing)."""
        return not self.removed and start < self.end and end > self.start

    def mark(self) -> dict[str, Any]:
        """What an alert carries in ``evidence.silence``."""
        return {
            "id": self.id,
            "reason": self.reason,
            "by": self.created_by,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }


class HeldCounts(BaseModel):
    """Posts of one scope in one gate's backlog."""

    model_config = ConfigDict(extra="ignore")

    waiting: int = Field(0, ge=0, description="Blocked by the pause: their fate is decided at resume.")
    review: int = Field(0, ge=0, description="Waiting for a person to approve or drop them.")
    ready: int = Field(0, ge=0, description="Released (held), going out under the rate limit.")


class HeldReport(BaseModel):
    """One gate's backlog counts per scope (``publishing.held``, key: ``gate``)."""

    model_config = ConfigDict(extra="ignore")

    gate: str = Field(min_length=1, max_length=256, description="host/pid/name of the reporting gate.")
    at: UtcDatetime
    scopes: dict[str, HeldCounts] = Field(default_factory=dict)

"""Silences for planned events: a brand's alerts go out marked *silenced* and never pause publishing.

A launch, a recall announced by the brand itself, a sponsored campaign: moments where a burst of
mentions, even negative ones, is expected. A `Silence` names a brand, an event-time window
``[start, end)``, a reason and who planned it. While a window of the brand's mentions overlaps it, the
risk stage (`stream.risk_stage`) still assesses the window and still publishes its alert (opened,
escalated, resolved) with ``evidence.silence`` set and a line in its explanation, but asks for no
pause. The episode is not marked as paused, so a crisis still critical after the silence ends pauses
at its next critical window.

Silences live in the compacted, signed ``publishing.silences`` topic (key: silence id), signed like
schedules (`crisiswatch.control.messages.Keyring`): writers need ``CRISISWATCH_CONTROL_KEYS``,
readers verify. Removal is a signed record with ``removed=True`` (never an unsigned tombstone).

`SilenceStore` reads and writes them; ``crisiswatch silence add|list|remove`` and the HTTP API
(``GET|POST /api/silences``, ``DELETE /api/silences/{id}``) use it.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from crisiswatch.contracts.control import AuditRecord, Silence
from crisiswatch.contracts.topics import PUBLISHING_SILENCES
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control.messages import Keyring
from crisiswatch.control.signed_store import SignedStore
from crisiswatch.settings import Settings

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^\+?((?:\d+(?:\.\d+)?[dhms])+)$")




def parse_duration(text: str) -> float:
    """Seconds of a duration with units: ``90m``, ``2h``, ``1h30m``, ``1d`` (a bare number is refused).

    `crisiswatch.durations` parses it (the one parser of durations); a leading ``+`` is allowed here.
    """
    from crisiswatch.durations import parse_duration as parse

    return parse(text.strip().removeprefix("+"))


def parse_when(text: str, *, base: datetime) -> datetime:
    """``now``, an ISO time with a zone, or a duration with units after ``base`` (``2h``, ``+30m``)."""
    value = text.strip()
    if value.lower() == "now":
        return utcnow()
    if _DURATION.fullmatch(value):
        return base + timedelta(seconds=parse_duration(value))
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        if re.fullmatch(r"\+?\d+(\.\d+)?", value):
            number = value.lstrip("+")
            raise ValueError(f"{text!r}: durations need units (e.g. {number}m or {number}h)") from None
        raise ValueError(f"not a time: {text!r} (use now, an ISO time with a zone, or a duration like 2h)") from None
    if when.tzinfo is None:
        raise ValueError(f"give a time zone in {text!r}, e.g. {value}Z")
    return when


def new_silence(
    brand: str,
    *,
    start: datetime,
    end: datetime,
    reason: str,
    created_by: str,
    silence_id: str | None = None,
    now: datetime | None = None,
) -> Silence:
    """An unsigned silence, validated; a window already over is refused."""
    now = now or utcnow()
    if end <= now:
        raise ValueError(f"the silence ends in the past ({end.isoformat()}): nothing to silence")
    ident = silence_id or f"{brand}-{start.astimezone(UTC).strftime('%Y%m%d-%H%M')}"
    return Silence(
        id=ident[:64],
        brand=brand,
        start=start,
        end=end,
        reason=reason,
        created_by=created_by,
        created_at=now,
        signed_at=now,
    )


class SilenceStore(SignedStore[Silence]):
    """Silences by id, read from and written to the compacted ``publishing.silences`` topic."""

    record_type = Silence
    noun = "silence"
    follower_name = "silences"
    component = "silences"

    def __init__(self, settings: Settings, *, keyring: Keyring | None = None):
        super().__init__(settings, settings.topic(PUBLISHING_SILENCES.name), keyring=keyring)

    async def start(self, timeout: float = 15.0, *, required: bool = True) -> None:
        """Read every silence before returning; without ``required`` a timeout only warns and the store keeps
        following the topic (silences apply once read)."""
        await self._follower.start()
        if not await self._follower.wait_caught_up(timeout):
            if not required:
                log.error(
                    "could not read %s within %.0f s (run `crisiswatch topics --create`?): silences apply once read",
                    self.topic,
                    timeout,
                )
                return
            await self.stop()
            raise TimeoutError(f"could not read {self.topic} within {timeout} s")

    async def __aenter__(self) -> SilenceStore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def silences(self, *, include_past: bool = True, now: datetime | None = None) -> list[Silence]:
        """Known silences (not removed), by start; without ``include_past`` only those not over yet."""
        now = now or utcnow()
        found = [s for s in self._records.values() if not s.removed and (include_past or s.end > now)]
        return sorted(found, key=lambda s: (s.start, s.id))

    def covering(self, brand: str, start: datetime, end: datetime) -> Silence | None:
        """The silence of ``brand`` that overlaps ``[start, end)`` (the one ending last), if any."""
        found = [s for s in self._records.values() if s.brand == brand and s.covers(start, end)]
        return max(found, key=lambda s: (s.end, s.id)) if found else None

    async def add(self, silence: Silence) -> Silence:
        """Sign and store ``silence``; an existing id is an error."""
        if self.get(silence.id) is not None:
            raise ValueError(f"silence {silence.id!r} exists (remove it first, or choose another --id)")
        signed = self.keyring.sign(silence.model_copy(update={"signed_at": utcnow(), "removed": False}))
        await self._write(signed, "silence_add", silence.reason)
        return signed

    async def remove(self, silence_id: str, *, actor: str) -> Silence | None:
        """Mark a silence removed (a signed record); returns the removed silence, None if unknown."""
        current = self.get(silence_id)
        if current is None:
            return None
        removed = self.keyring.sign(
            current.model_copy(update={"removed": True, "signed_at": utcnow(), "created_by": actor})
        )
        await self._write(removed, "silence_remove", f"removed the silence for: {current.reason}")
        return current

    async def _write(self, silence: Silence, action: str, reason: str) -> None:
        """Store the signed silence, then its signed audit record on ``publishing.audit`` (scope: the brand)."""
        await self._publish(silence)
        await self._audit(
            AuditRecord(
                action=action,  # type: ignore[arg-type]
                scope=f"brand:{silence.brand}",
                actor=silence.created_by,
                reason=reason[:2000],
                at=silence.signed_at,
                silence_id=silence.id,
                resume_at=silence.end,
                kid=silence.kid,
            )
        )


def silence_json(silence: Silence, now: datetime | None = None) -> dict[str, Any]:
    """One silence as the page and ``silence list --json`` show it."""
    now = now or utcnow()
    data = silence.model_dump(mode="json", exclude={"sig", "kid", "removed"})
    data["active_now"] = silence.start <= now < silence.end
    data["over"] = silence.end <= now
    return data


async def open_silences(settings: Settings, keyring: Keyring | None = None) -> SilenceStore | None:
    """A started store for a reader such as the risk stage, or ``None`` (with a warning) when nothing can verify."""
    try:
        keyring = keyring if keyring is not None else Keyring.from_settings(settings.control)
    except ValueError as exc:
        log.warning("silences are not applied: %s", exc)
        return None
    if not keyring or not settings.kafka.bootstrap_servers:
        log.warning("silences are not applied: no control keys to verify them (CRISISWATCH_CONTROL_KEYS)")
        return None
    store = SilenceStore(settings, keyring=keyring)
    await store.start(required=False)  # a missing topic must not stop the risk stage
    return store

"""Planned pauses: durable schedules in Kafka and the loop that fires them.

`ScheduleStore` keeps schedules (`crisiswatch.control.messages.Schedule`) in the compacted, signed
``publishing.schedules`` topic, so they survive restarts of every process::

    store = ScheduleStore(settings)
    await store.start()
    await store.add(Schedule(id="mourning", scope="global", reason="national day of mourning",
                             start=..., end=..., created_by="alice", ...))   # or new_schedule(...)

`Scheduler` is level-triggered, not edge-triggered: at every window boundary (and at least once a
second) it compares what the schedules want *now* with the current control state, and publishes only
the difference through the `ControlPlane`. Each occurrence has its own episode
(``schedule:<id>:<start>``), so a restart in the middle of a window neither pauses twice (the state
already carries that episode) nor misses the end (a scheduler pause whose window is over is resumed at
the first tick, however late). It also ends any pause whose ``resume_at`` has passed.

A scheduled pause never replaces a pause by the detector or a person, and the end of a window never
resumes one. A person who resumes during a window ends that occurrence. Removing a schedule during its
window ends its pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from pydantic import ValidationError

from crisiswatch.contracts.control import SCHEDULER, AuditRecord, OnResume, Schedule, Window, is_person, schedule_id_of
from crisiswatch.contracts.topics import PUBLISHING_SCHEDULES
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control import metrics
from crisiswatch.control.messages import Keyring
from crisiswatch.control.plane import ChangeResult, ControlPlane
from crisiswatch.control.signed_store import SignedStore
from crisiswatch.settings import Settings

log = logging.getLogger(__name__)


def new_schedule(
    schedule_id: str,
    *,
    reason: str,
    created_by: str,
    scope: str = "global",
    start: datetime | None = None,
    end: datetime | None = None,
    cron: str | None = None,
    duration_seconds: float | None = None,
    timezone: str = "UTC",
    on_resume: OnResume = "hold",
) -> Schedule:
    """An unsigned schedule, validated (absolute: start+end; recurring: cron+duration).

    A window that has already ended is refused (a `pydantic.ValidationError`, like every other invalid
    field): it would never pause anything, and accepting it without a word hides a mistyped date.
    """
    now = utcnow()
    if start is not None and end is not None and cron is None and end <= now:
        message = (
            f"the window ends at {end.isoformat()}, in the past (now {now:%Y-%m-%dT%H:%M:%SZ}): a schedule "
            "entirely in the past would never pause anything; check the dates"
        )
        raise ValidationError.from_exception_data(
            "Schedule", [{"type": "value_error", "loc": ("end",), "input": end, "ctx": {"error": ValueError(message)}}]
        )
    return Schedule(
        id=schedule_id,
        scope=scope,
        reason=reason,
        on_resume=on_resume,
        start=start,
        end=end,
        cron=cron,
        duration_seconds=duration_seconds,
        timezone=timezone,
        created_by=created_by,
        created_at=now,
        signed_at=now,
    )


class ScheduleStore(SignedStore[Schedule]):
    """Schedules by id, read from and written to the compacted ``publishing.schedules`` topic."""

    record_type = Schedule
    noun = "schedule"
    follower_name = "schedules"
    component = "scheduler"

    def __init__(self, settings: Settings, *, keyring: Keyring | None = None):
        super().__init__(settings, settings.topic(PUBLISHING_SCHEDULES.name), keyring=keyring)

    async def start(self, timeout: float = 15.0) -> None:
        """Read every schedule before returning."""
        await self._follower.start()
        if not await self._follower.wait_caught_up(timeout):
            await self.stop()
            raise TimeoutError(f"could not read {self.topic} within {timeout} s")

    def schedules(self, *, include_removed: bool = False) -> list[Schedule]:
        """Known schedules, sorted by id."""
        return sorted((s for s in self._records.values() if include_removed or not s.removed), key=lambda s: s.id)

    async def add(self, schedule: Schedule, *, replace: bool = False) -> Schedule:
        """Sign and store ``schedule``; with ``replace=False`` an existing id is an error."""
        if not replace and self.get(schedule.id) is not None:
            raise ValueError(f"schedule {schedule.id!r} exists (remove it first, or replace it)")
        signed = self.keyring.sign(schedule.model_copy(update={"signed_at": utcnow(), "removed": False}))
        await self._write(signed, "schedule_add", f"{signed.reason} ({_describe(signed)})")
        return signed

    async def remove(self, schedule_id: str, *, actor: str, reason: str = "removed") -> Schedule | None:
        """Mark a schedule removed (a signed record); returns the removed schedule, None if unknown."""
        current = self.get(schedule_id)
        if current is None:
            return None
        removed = self.keyring.sign(
            current.model_copy(update={"removed": True, "signed_at": utcnow(), "created_by": actor})
        )
        await self._write(removed, "schedule_remove", reason)
        return current

    async def _write(self, schedule: Schedule, action: str, reason: str) -> None:
        """Store the signed schedule, then its signed audit record on ``publishing.audit`` (scope: its scope)."""
        await self._publish(schedule)
        await self._audit(
            AuditRecord(
                action=action,  # type: ignore[arg-type]
                scope=schedule.scope,
                actor=schedule.created_by,
                reason=reason,
                at=schedule.signed_at,
                schedule_id=schedule.id,
                on_resume=schedule.on_resume,
                kid=schedule.kid,
            )
        )


def _describe(schedule: Schedule) -> str:
    if schedule.recurring:
        return f"cron '{schedule.cron}' {schedule.timezone}, {schedule.duration_seconds:g} s each"
    assert schedule.start is not None and schedule.end is not None
    return f"{schedule.start.isoformat()} to {schedule.end.isoformat()}"


class Scheduler:
    """Publishes the pauses and resumes that schedules and ``resume_at`` call for."""

    def __init__(self, plane: ControlPlane, store: ScheduleStore, *, max_sleep_seconds: float = 1.0):
        self.plane = plane
        self.store = store
        self.max_sleep_seconds = max_sleep_seconds

    def wanted(self, now: datetime) -> dict[str, list[tuple[Schedule, Window]]]:
        """Open occurrences by scope, oldest start first."""
        wanted: dict[str, list[tuple[Schedule, Window]]] = {}
        for schedule in self.store.schedules():
            window = schedule.window_at(now)
            if window is not None:
                wanted.setdefault(schedule.scope, []).append((schedule, window))
        for occurrences in wanted.values():
            occurrences.sort(key=lambda item: (item[1].start, item[0].id))
        return wanted

    async def tick(self, now: datetime | None = None) -> list[ChangeResult]:
        """Bring the control state in line with the schedules at ``now``; returns the changes made."""
        now = now or utcnow()
        wanted = self.wanted(now)
        changes: list[ChangeResult] = []
        for scope, occurrences in wanted.items():
            episodes = {schedule.episode_for(window) for schedule, window in occurrences}
            current = self.plane.get(scope)
            if current is not None and current.episode in episodes:
                continue  # already paused for this occurrence, or a person resumed it
            if current is not None and current.paused and current.actor != SCHEDULER:
                continue  # a pause by the detector or a person stands; a schedule never replaces it
            schedule, window = occurrences[-1]
            resumed_by_person = (
                current is not None
                and not current.paused
                and is_person(current.actor)
                and current.issued_at >= window.start
            )
            if resumed_by_person:
                continue
            result = await self.plane.pause(
                scope,
                reason=f"scheduled: {schedule.reason}",
                actor=SCHEDULER,
                episode=schedule.episode_for(window),
                resume_at=window.end,
                on_resume=schedule.on_resume,
            )
            if result.changed:
                metrics.SCHEDULE_TRANSITIONS.labels("pause").inc()
                changes.append(result)
        for scope, current in self.plane.status().items():
            if not current.paused:
                continue
            open_episodes = {s.episode_for(w) for s, w in wanted.get(scope, [])}
            ended = current.actor == SCHEDULER and current.episode not in open_episodes
            due = current.resume_at is not None and current.resume_at <= now
            if not (ended or due):
                continue
            why = "resume_at reached" if due else f"scheduled window ended ({schedule_id_of(current.episode)})"
            result = await self.plane.resume(scope, reason=why, actor=SCHEDULER, episode=current.episode)
            if result.changed:
                metrics.SCHEDULE_TRANSITIONS.labels("resume").inc()
                changes.append(result)
        return changes

    def next_wakeup(self, now: datetime) -> float:
        """Seconds until the next boundary of any schedule or ``resume_at`` (at most the max sleep)."""
        boundaries = [b for s in self.store.schedules() if (b := s.next_boundary(now)) is not None]
        boundaries += [m.resume_at for m in self.plane.status().values() if m.paused and m.resume_at]
        delays = [(b - now).total_seconds() for b in boundaries]
        return max(0.005, min([self.max_sleep_seconds, *[d for d in delays if d > 0]]))

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Tick at every boundary until ``stop`` is set (or forever)."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("scheduler tick failed")
            self.store.changed.clear()
            delay = self.next_wakeup(utcnow())
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.store.changed.wait())]
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter

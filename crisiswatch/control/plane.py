"""`ControlPlane`: the one writer of pause/resume changes.

The risk agent uses it like this::

    from crisiswatch.control import ControlPlane

    plane = ControlPlane.from_settings(settings)  # needs CRISISWATCH_CONTROL_KEYS (an Ed25519 private key)
    await plane.start()                     # reads the current state of every scope first
    result = await plane.pause("global", reason=alert.summary, actor="detector", alert_id=alert.alert_id)
    # result.changed is False when this alert already paused the scope (idempotent), or when the
    # scope was already paused by another alert or a person.
    ...
    await plane.stop()

A person resumes (``actor`` = their user name); the detector cannot resume, except a pause that was
given a ``resume_at`` once that time has passed. Every change is signed, written to
``publishing.control`` keyed by scope with ``acks="all"`` (the call returns after the broker
acknowledged it), then appended to ``publishing.audit``.

Rules when the scope is already paused: the same episode (alert id) never publishes twice, not even
after a person resumed; a detector pause replaces only a pause that would end by itself (scheduled or
with ``resume_at``); a person's pause replaces any pause (it updates reason and resume choice); a
schedule never replaces a pause that is not a schedule's.

The state heartbeat: every ``control_reassert_seconds`` a plane re-signs the current state of every
scope (new ``signed_at``) and then writes a signed `Heartbeat` listing every scope's ``seq``; gates fail
closed without a fresh one (see `crisiswatch.control.gate`). ``heartbeat="primary"`` (what
`crisiswatch schedule run` runs, and what ``reassert_seconds`` selects) always does it;
``"standby"`` (the default: the worker's plane, the page's) does it only while no other writer's
heartbeat is fresh, so a deployment without a scheduler is still covered and one with it writes one
heartbeat per period; ``"off"`` never (short-lived CLI commands). A heartbeating plane also re-signs
at once after it sees a rejected record, and when its follower sees the log go backwards (broker came
back empty, truncation, topic re-created) it re-publishes every state the new log lacks or holds at a
lower ``seq``, then heartbeats, so that the lost state comes back and newer changes still win.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from aiokafka import AIOKafkaProducer

from crisiswatch.contracts.control import (
    DETECTOR,
    HEARTBEAT_KEY,
    SCHEDULER,
    AuditRecord,
    ControlMessage,
    Heartbeat,
    OnResume,
    is_person,
    is_scope,
)
from crisiswatch.contracts.topics import PUBLISHING_AUDIT, PUBLISHING_CONTROL
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control import metrics
from crisiswatch.control.follower import ControlFeed
from crisiswatch.control.messages import ControlRejected, Keyring, SigningUnavailable
from crisiswatch.control.view import Ingested
from crisiswatch.follow import stop_quietly
from crisiswatch.kafka import new_producer
from crisiswatch.settings import ControlSettings, KafkaSettings, Settings

log = logging.getLogger(__name__)


HeartbeatMode = Literal["primary", "standby", "off"]


class ResumeRefused(PermissionError):
    """This actor may not resume this scope (a person must)."""


@dataclass(frozen=True)
class ChangeResult:
    """Outcome of `ControlPlane.pause` / `ControlPlane.resume`."""

    changed: bool
    """True when a new control message was published."""
    message: ControlMessage | None
    """The message now in force for the scope (None: the scope never had a state)."""
    note: str
    """What happened, for people."""


def _actor_kind(actor: str) -> str:
    return actor if actor in (DETECTOR, SCHEDULER) else "person"


class ControlPlane:
    """Signs and publishes pause/resume changes; knows the current state of every scope."""

    def __init__(
        self,
        kafka: KafkaSettings,
        control: ControlSettings,
        *,
        keyring: Keyring | None = None,
        reassert_seconds: float | None = None,
        create_topics: bool = True,
        heartbeat: HeartbeatMode | None = None,
        writer: str = "plane",
    ):
        if not kafka.bootstrap_servers:
            raise ValueError("no Kafka bootstrap servers: set KAFKA_BOOTSTRAP_SERVERS")
        self.kafka, self.control = kafka, control
        self.keyring = keyring if keyring is not None else Keyring.from_settings(control)
        if self.keyring.signing_kid is None:
            raise SigningUnavailable(
                "no signing key: set CRISISWATCH_CONTROL_KEYS='kid:ed25519:<private key>' in the environment "
                "(`crisiswatch keys generate` makes a pair)"
            )
        self.reassert_seconds = reassert_seconds
        self.heartbeat_mode: HeartbeatMode = heartbeat or ("primary" if reassert_seconds else "standby")
        self.heartbeat_seconds = reassert_seconds or control.control_reassert_seconds
        self.writer_id = f"{writer}-{uuid.uuid4().hex[:8]}"
        """Names this process in its heartbeats."""
        self.create_topics = create_topics
        self.feed = ControlFeed(kafka, control, self.keyring, component="plane")
        self.control_topic = kafka.topic(PUBLISHING_CONTROL.name)
        self.audit_topic = kafka.topic(PUBLISHING_AUDIT.name)
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._repairing: dict[str, float] = {}
        self.last_acked_at: float | None = None
        """``time.perf_counter()`` when the broker last acknowledged a change (for benchmarks)."""

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> ControlPlane:
        """The plane of whole settings: it reads only their ``kafka`` and ``control`` sections."""
        return cls(settings.kafka, settings.control, **options)

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self, timeout: float = 15.0) -> None:
        """Connect, and read the current state of every scope before accepting changes."""
        if self.create_topics:
            from crisiswatch.kafka import ensure_topics

            await ensure_topics(self.kafka.bootstrap_servers or "", self.kafka)
        self._producer = new_producer(settings=self.kafka, linger_ms=0, client_id="crisiswatch-control-plane")
        await self._producer.start()
        await self.feed.start()
        if not await self.feed.follower.wait_caught_up(timeout):
            await self.stop()
            raise TimeoutError(f"could not read {self.control_topic} within {timeout} s")
        if self.heartbeat_mode != "off":
            self.feed.listeners.append(self._on_ingested)
            self.feed.reset_listeners.append(self._on_reset)
            await self._beat_unless_another_writer_does()  # before returning: a started writer vouches
            self._spawn(self._heartbeat_loop())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.feed.stop()
        producer, self._producer = self._producer, None
        if producer is not None:
            await stop_quietly(producer.stop, "control plane")

    async def __aenter__(self) -> ControlPlane:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- reading ---------------------------------------------------------------------------------
    def status(self) -> dict[str, ControlMessage]:
        """Latest state of every scope that has one."""
        return self.feed.view.states()

    def get(self, scope: str) -> ControlMessage | None:
        return self.feed.view.get(scope)

    # --- changes ---------------------------------------------------------------------------------
    async def pause(
        self,
        scope: str = "global",
        *,
        reason: str,
        actor: str,
        alert_id: str | None = None,
        resume_at: datetime | None = None,
        on_resume: OnResume | None = None,
        episode: str | None = None,
    ) -> ChangeResult:
        """Pause publishing in ``scope``. Idempotent per episode (``episode``, else ``alert_id``).

        ``on_resume`` (default ``ControlSettings.control_default_on_resume``) says what happens to posts that
        fall due during the pause; ``resume_at`` makes the pause end by itself.
        """
        _check_scope(scope)
        now = utcnow()
        if resume_at is not None and resume_at <= now:
            raise ValueError("resume_at must be in the future")
        episode = episode or alert_id or f"{_actor_kind(actor)}:{uuid.uuid4().hex[:12]}"
        choice: OnResume = on_resume or self.control.control_default_on_resume
        async with self._lock:
            current = self.get(scope)
            if self.feed.view.episode_seen(scope, episode):
                return self._ignored("pause", current, f"episode {episode!r} already handled in {scope}")
            if current is not None and current.paused:
                supersede = _may_replace_pause(current, actor, resume_at)
                unchanged = (
                    current.actor == actor
                    and current.reason == reason
                    and current.on_resume == choice
                    and current.resume_at == resume_at
                )
                if not supersede or unchanged:
                    return self._ignored("pause", current, f"{scope} is already paused by {current.actor}")
            message = ControlMessage(
                scope=scope,
                state="paused",
                reason=reason,
                actor=actor,
                alert_id=alert_id,
                episode=episode,
                seq=_next_seq(current),
                issued_at=now,
                signed_at=now,
                resume_at=resume_at,
                on_resume=choice,
            )
            return await self._publish(message, "pause", current)

    async def resume(
        self,
        scope: str = "global",
        *,
        reason: str,
        actor: str,
        on_resume: OnResume | None = None,
        episode: str | None = None,
    ) -> ChangeResult:
        """Resume publishing in ``scope``. A person must do it (`ResumeRefused` otherwise), unless the
        pause had a ``resume_at`` that has passed, or the scheduler ends its own ``episode``.

        ``on_resume`` overrides the choice made at pause time for the posts deferred by this pause.
        """
        _check_scope(scope)
        now = utcnow()
        async with self._lock:
            current = self.get(scope)
            if current is None or not current.paused:
                return self._ignored("resume", current, f"{scope} is not paused")
            if not is_person(actor):
                due = current.resume_at is not None and current.resume_at <= now
                own_schedule = actor == SCHEDULER and episode is not None and episode == current.episode
                if not (due or own_schedule):
                    raise ResumeRefused(
                        f"{actor} may not resume {scope}: it was paused by {current.actor} "
                        f"({current.reason}); a person must resume it"
                    )
            message = ControlMessage(
                scope=scope,
                state="active",
                reason=reason,
                actor=actor,
                alert_id=current.alert_id,
                episode=current.episode,
                seq=_next_seq(current),
                issued_at=now,
                signed_at=now,
                resume_at=None,
                on_resume=on_resume or current.on_resume,
            )
            return await self._publish(message, "resume", current)

    async def reassert(self, scopes: list[str] | None = None) -> int:
        """Re-sign and re-publish the current state of ``scopes`` (default: all); returns how many.

        Only done when this plane's view was confirmed complete within the last 2 s, so that an old
        state is never re-asserted over a newer one.
        """
        if not self._view_is_current():
            return 0
        async with self._lock:
            return len(await self._resign(scopes))

    async def heartbeat(self) -> bool:
        """Re-sign every scope's state, then write a signed `Heartbeat` listing them; False when this
        plane's view is not current enough to vouch for the state."""
        if not self._view_is_current():
            return False
        async with self._lock:
            states = await self._resign(None)
            beat = self.keyring.sign(
                Heartbeat(
                    writer=self.writer_id,
                    signed_at=utcnow(),
                    interval_seconds=self.heartbeat_seconds,
                    states=states,
                )
            )
            await self._send(self.control_topic, HEARTBEAT_KEY, beat.to_bytes())
            self.feed.view.ingest(HEARTBEAT_KEY.encode(), beat.to_bytes(), live=True)
        metrics.HEARTBEATS.labels(self.heartbeat_mode).inc()
        log.debug("heartbeat of %d scope(s) by %s", len(states), self.writer_id)
        return True

    def _view_is_current(self) -> bool:
        age = self.feed.follower.view_age()
        if age is None or age > 2.0:
            log.warning("not re-signing the control state: this plane's view is %s s old", age)
            return False
        return True

    async def _resign(self, scopes: list[str] | None) -> dict[str, int]:
        """Re-sign the states of ``scopes`` (all: None) under the lock; returns scope -> seq published."""
        published: dict[str, int] = {}
        for scope, current in self.status().items():
            if scopes is not None and scope not in scopes:
                continue
            # Same seq, unless a later genuine record was refused (e.g. a resume that arrived too
            # late): then a new seq, so that this state supersedes it for every reader.
            seen = self.feed.view.max_seq(scope)
            seq = current.seq if seen <= current.seq else seen + 1
            fresh = self.keyring.sign(current.model_copy(update={"signed_at": utcnow(), "seq": seq, "sig": None}))
            await self._send(self.control_topic, scope, fresh.to_bytes())
            with contextlib.suppress(ControlRejected):
                self.feed.view.apply(fresh)
            published[scope] = seq
        return published

    # --- internals -------------------------------------------------------------------------------
    def _ignored(self, action: str, current: ControlMessage | None, note: str) -> ChangeResult:
        metrics.TRIGGERS_IGNORED.labels(action).inc()
        log.info("%s ignored: %s", action, note)
        return ChangeResult(False, current, note)

    async def _publish(self, message: ControlMessage, action: str, previous: ControlMessage | None) -> ChangeResult:
        signed = self.keyring.sign(message)
        await self._send(self.control_topic, signed.scope, signed.to_bytes())
        self.last_acked_at = time.perf_counter()
        try:
            self.feed.view.apply(signed)
        except ControlRejected as exc:  # another writer got a newer seq in between
            log.warning("published %s but the view holds a newer state: %s", signed.change_key, exc)
        audit = AuditRecord(
            action="pause" if action == "pause" else "resume",
            scope=signed.scope,
            actor=signed.actor,
            reason=signed.reason,
            at=signed.issued_at,
            alert_id=signed.alert_id,
            episode=signed.episode,
            seq=signed.seq,
            state=signed.state,
            on_resume=signed.on_resume,
            resume_at=signed.resume_at,
            previous_state=previous.state if previous else None,
            previous_seq=previous.seq if previous else None,
            previous_actor=previous.actor if previous else None,
            previous_reason=previous.reason if previous else None,
            previous_episode=previous.episode if previous else None,
            kid=signed.kid,
        )
        await self.append_audit(audit)
        metrics.CHANGES_PUBLISHED.labels(action, _actor_kind(signed.actor)).inc()
        log.info(
            "%s %s by %s (seq %d, episode %s): %s",
            action,
            signed.scope,
            signed.actor,
            signed.seq,
            signed.episode,
            signed.reason,
        )
        return ChangeResult(True, signed, f"{signed.scope} {signed.state} (seq {signed.seq})")

    async def append_audit(self, record: AuditRecord) -> None:
        """Sign and append one record to ``publishing.audit`` (waits for the broker's acknowledgement)."""
        await self._send(self.audit_topic, record.scope, self.keyring.sign(record).to_bytes())

    async def _send(self, topic: str, key: str, value: bytes) -> None:
        if self._producer is None:
            raise RuntimeError("ControlPlane is not started")
        await self._producer.send_and_wait(topic, value=value, key=key.encode())

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _heartbeat_loop(self) -> None:
        """Heartbeat every period (standby: only while no other writer's is fresh)."""
        while True:
            jitter = 1.0 if self.heartbeat_mode == "primary" else random.uniform(1.0, 1.25)
            await asyncio.sleep(self.heartbeat_seconds * jitter)
            await self._beat_unless_another_writer_does()

    async def _beat_unless_another_writer_does(self) -> None:
        if self.heartbeat_mode == "standby" and self._other_writer_beats():
            return
        try:
            await self.heartbeat()
        except Exception:
            log.exception("state heartbeat failed")

    def _other_writer_beats(self) -> bool:
        beat = self.feed.view.heartbeat
        if beat is None or beat.writer == self.writer_id:
            return False
        age = self.feed.view.heartbeat_age()
        return age is not None and age < 1.5 * self.heartbeat_seconds

    def _on_ingested(self, result: Ingested) -> None:
        """After a rejected record on a scope, re-sign the state (at most every 2 s). A record under a key
        this plane does not hold (``unknown_kid``: another writer's new key, not rolled out here yet) is
        no reason: two writers that do not trust each other's keys would otherwise re-sign in turn."""
        if result.rejected is None or result.scope is None or result.rejected.reason == "unknown_kid":
            return
        now = time.monotonic()
        if now - self._repairing.get("*", -10.0) < 2.0:
            return
        self._repairing["*"] = now
        self._spawn(self._repair(result.scope))

    async def _repair(self, scope: str | None) -> None:
        await asyncio.sleep(0.2)  # let the follower read what else arrived
        try:
            if await self.heartbeat():
                log.warning("re-signed the control state after a rejected record (key %r)", scope)
        except Exception:
            log.exception("repair after a rejected record failed")

    def _on_reset(self, before: dict[str, ControlMessage]) -> None:
        """The log went backwards: once re-read, publish again what it lost."""
        self._spawn(self._restore(before))

    async def _restore(self, before: dict[str, ControlMessage]) -> None:
        if not await self.feed.follower.wait_caught_up(60.0):
            log.error("could not re-read %s after it went backwards: state not restored", self.control_topic)
            return
        restored = 0
        async with self._lock:
            for scope, old in before.items():
                current = self.get(scope)
                if current is not None and current.seq >= old.seq:
                    continue  # the new log holds this state, or a newer one
                fresh = self.keyring.sign(old.model_copy(update={"signed_at": utcnow(), "sig": None}))
                await self._send(self.control_topic, scope, fresh.to_bytes())
                with contextlib.suppress(ControlRejected):
                    self.feed.view.apply(fresh)
                restored += 1
                log.warning("re-published %s (%s, seq %d) that the control topic lost", scope, old.state, old.seq)
        if restored:
            log.warning("restored %d scope state(s) after the control topic went backwards", restored)
        with contextlib.suppress(Exception):
            await self.heartbeat()


def _check_scope(scope: str) -> None:
    if not is_scope(scope):
        raise ValueError(f"invalid scope {scope!r}: use global, brand:<id>, channel:<name> or account:<id>")


def _next_seq(current: ControlMessage | None) -> int:
    """Monotonic per scope, and larger than anything written before even by a writer with a stale view."""
    return max((current.seq + 1) if current else 1, int(time.time() * 1000))


def _may_replace_pause(current: ControlMessage, actor: str, resume_at: datetime | None) -> bool:
    if is_person(actor):
        return True
    if actor == SCHEDULER or current.actor == SCHEDULER:
        return current.actor == SCHEDULER  # the detector replaces a schedule's pause; a schedule, only its own
    if current.resume_at is None:
        return False  # a pause that needs a person stays as it is
    return resume_at is None or resume_at > current.resume_at

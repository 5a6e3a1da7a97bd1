"""`PublishingGate`: the client every publishing service embeds to ask "may this post go out now?".

Async services::

    from crisiswatch.control import PublishingGate
    from crisiswatch.settings import ControlSettings, KafkaSettings

    gate = PublishingGate(KafkaSettings(), ControlSettings())  # needs CRISISWATCH_CONTROL_PUBLIC_KEYS to verify
    await gate.start()
    decision = gate.allowed(channel="twitter", account="acme_us", brand="acme")
    if decision.allowed:
        await publish(post)
    else:
        gate.backlog.defer(post.id, decision, channel="twitter", account="acme_us", brand="acme")
    ...
    async for post in gate.backlog.release():      # after resume, per the scope's resume choice
        await publish(post.payload)

Threaded services use `SyncPublishingGate` (same API, runs its own event loop in a thread).

The gate follows ``publishing.control`` from the beginning with its own consumer (no group), verifies
every record with **public keys only** (forged, unsigned, replayed and late resumes are ignored,
counted and logged at a bounded rate; see `crisiswatch.control.view`), and answers from memory in
microseconds. Precedence: ``global``, then ``brand:<id>``, ``channel:<name>``, ``account:<id>``; any
paused matching scope blocks and the first one in that order is reported.

It **fails closed**, with the reason in `Decision.reason`, when it cannot vouch for the state:

* until it has read the whole topic, while it re-reads it after the log went backwards (data loss,
  topic re-created), and whenever its last confirmation of being caught up is older than
  ``gate_max_staleness_seconds``;
* when its newest verified state heartbeat is older than ``control_heartbeat_max_age_seconds`` or
  absent: no writer re-signs the state any more, or this gate cannot verify it (wrong public key);
* for a post governed by a scope that is *unknown* (its newest record failed verification).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from crisiswatch.contracts.control import ControlMessage
from crisiswatch.control import metrics
from crisiswatch.control.backlog import Backlog
from crisiswatch.control.follower import ControlFeed
from crisiswatch.control.held import HeldReporter
from crisiswatch.control.messages import Keyring
from crisiswatch.control.view import Decision, Ingested, scopes_for
from crisiswatch.settings import ControlSettings, KafkaSettings, Settings


class PublishingGate:
    """Answers `allowed()` from a verified, fresh view of the control topic."""

    def __init__(
        self,
        kafka: KafkaSettings,
        control: ControlSettings,
        *,
        name: str = "gate",
        keyring: Keyring | None = None,
        bootstrap_servers: str | None = None,
        fetch_max_wait_ms: int = 100,
    ):
        self.kafka, self.control = kafka, control
        self.name = name
        keyring = keyring if keyring is not None else Keyring.from_settings(control)
        keyring = keyring.verifying_only(hmac_allowed=control.control_hmac_migration)
        if not keyring:
            raise ValueError(
                "the gate cannot verify control messages: "
                "set CRISISWATCH_CONTROL_PUBLIC_KEYS='kid:ed25519:<public key>'"
            )
        if control.control_heartbeat_max_age_seconds <= control.control_reassert_seconds:
            raise ValueError(
                "CRISISWATCH_CONTROL_HEARTBEAT_MAX_AGE_SECONDS must be larger than CRISISWATCH_CONTROL_REASSERT_SECONDS"
            )
        self.max_staleness_seconds = control.gate_max_staleness_seconds
        self.heartbeat_max_age_seconds = control.control_heartbeat_max_age_seconds
        self.feed = ControlFeed(
            kafka,
            control,
            keyring,
            component="gate",
            name=name,
            fetch_max_wait_ms=fetch_max_wait_ms,
            bootstrap_servers=bootstrap_servers,
        )
        self.backlog = Backlog(self.decide, self.feed.view.get, control.backlog_release_per_second)
        self.reporter: HeldReporter | None = None
        if control.gate_held_report_seconds > 0:
            self.reporter = HeldReporter(kafka, control, self.backlog, name, bootstrap_servers)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> PublishingGate:
        """The gate of whole settings: it reads only their ``kafka`` and ``control`` sections."""
        return cls(settings.kafka, settings.control, **options)

    async def start(self) -> None:
        """Start following the control topic (returns at once; see `wait_ready`)."""
        await self.feed.start()
        if self.reporter is not None:
            await self.reporter.start()
        metrics.GATE_VIEW_AGE.labels(self.name).set_function(self._age_or_minus_one)
        metrics.GATE_HEARTBEAT_AGE.labels(self.name).set_function(self._heartbeat_age_or_minus_one)

    async def stop(self) -> None:
        if self.reporter is not None:
            await self.reporter.stop()
        await self.feed.stop()
        for gauge in (metrics.GATE_VIEW_AGE, metrics.GATE_HEARTBEAT_AGE):
            with contextlib.suppress(KeyError):
                gauge.remove(self.name)

    async def wait_ready(self, timeout: float = 15.0) -> bool:
        """Wait until the gate has read the whole control topic; False on timeout."""
        return await self.feed.follower.wait_caught_up(timeout)

    async def __aenter__(self) -> PublishingGate:
        await self.start()
        await self.wait_ready()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- answers ---------------------------------------------------------------------------------
    def allowed(self, *, channel: str | None = None, account: str | None = None, brand: str | None = None) -> Decision:
        """May a post for this channel/account/brand go out now?"""
        decision = self.decide(scopes_for(channel=channel, account=account, brand=brand))
        if decision.allowed:
            first = self.backlog.first_in_line(channel, account)
            if first is not None:
                decision = Decision(
                    False,
                    "held posts of this channel and account go out first (releasing under the rate limit)",
                    scope=first.scope,
                    on_resume="hold",
                    behind_held=True,
                )
        # "unknown": not caught up, stale, no fresh heartbeat, or a scope that cannot be verified.
        why = (
            "open"
            if decision.allowed
            else "behind_held"
            if decision.behind_held
            else "paused"
            if decision.on_resume is not None
            else "unknown"
        )
        metrics.GATE_DECISIONS.labels(str(decision.allowed).lower(), why).inc()
        return decision

    def decide(self, scopes: list[str]) -> Decision:
        """The decision for explicit scopes (precedence order), failing closed when the state cannot be
        vouched for (see the module doc)."""
        follower = self.feed.follower
        age = follower.view_age()
        if age is None:
            if follower.reset_reason:
                return Decision(False, f"control view unknown: re-reading the control topic ({follower.reset_reason})")
            return Decision(False, "control view unknown: the gate has not caught up with the control topic yet")
        if age > self.max_staleness_seconds:
            return Decision(
                False,
                f"control view is {age:.0f} s old (max {self.max_staleness_seconds:.0f} s): failing closed",
            )
        decision = self.feed.view.decide(scopes)
        if not decision.allowed:
            return decision
        problem = self.heartbeat_problem()
        if problem is not None:
            return Decision(False, f"{problem}: failing closed")
        return decision

    def heartbeat_problem(self) -> str | None:
        """Why the state heartbeat does not vouch for the view now (None: it does)."""
        return heartbeat_problem(self.feed, self.heartbeat_max_age_seconds)

    @property
    def view_age_seconds(self) -> float | None:
        """Seconds since the gate last confirmed it was caught up (None: never)."""
        return self.feed.follower.view_age()

    def _age_or_minus_one(self) -> float:
        age = self.view_age_seconds
        return -1.0 if age is None else age

    def _heartbeat_age_or_minus_one(self) -> float:
        age = self.feed.view.heartbeat_age()
        return -1.0 if age is None else max(0.0, age)

    def unknown(self) -> dict[str, str]:
        """Scopes whose state cannot be verified now, with the reason."""
        return self.feed.view.unknown()

    def status(self) -> dict[str, ControlMessage]:
        """Latest verified state of every scope."""
        return self.feed.view.states()

    @property
    def rejected(self) -> Counter[str]:
        """Rejected control records by reason, since start."""
        return self.feed.rejected

    def add_listener(self, listener: Callable[[Ingested], None]) -> None:
        """Call ``listener`` with every record the gate reads (accepted or rejected), in its loop."""
        self.feed.listeners.append(listener)


def heartbeat_problem(feed: ControlFeed, max_age_seconds: float) -> str | None:
    """Why ``feed``'s newest state heartbeat does not vouch for its view (None: it does)."""
    age = feed.view.heartbeat_age()
    if age is None:
        refused = sum(feed.rejected.values())
        if refused:
            reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(feed.rejected.items()))
            return (
                f"cannot verify the control state: no valid signed heartbeat, and {refused} record(s) refused "
                f"({reasons}); are CRISISWATCH_CONTROL_PUBLIC_KEYS right?"
            )
        return (
            "no signed state heartbeat in the control topic: no writer (a worker, `crisiswatch schedule run`, "
            "`crisiswatch serve`) re-signs the state, or the log lost it"
        )
    if abs(age) > max_age_seconds:
        when = "old" if age > 0 else "in the future"
        return (
            f"the newest signed state heartbeat is {abs(age):.0f} s {when} (max {max_age_seconds:.0f} s): "
            "no writer re-signs the state any more"
        )
    return None


class SyncPublishingGate:
    """`PublishingGate` for threaded code: runs the gate's event loop in a daemon thread.

    >>> with SyncPublishingGate(settings.kafka, settings.control) as gate:
    ...     if gate.allowed(channel="email").allowed: ...
    """

    def __init__(self, kafka: KafkaSettings, control: ControlSettings, **kwargs: object):
        self._sections = (kafka, control)
        self._kwargs = kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.gate: PublishingGate | None = None

    def start(self, timeout: float = 15.0) -> bool:
        """Start the gate and wait until it is ready; False if not ready within ``timeout``."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="publishing-gate", daemon=True)
        self._thread.start()
        self.gate = PublishingGate(*self._sections, **self._kwargs)  # type: ignore[arg-type]
        self._call(self.gate.start(), timeout)
        return bool(self._call(self.gate.wait_ready(timeout), timeout + 5))

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self.gate is not None:
            self._call(self.gate.stop(), 10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    def _call(self, coro: object, timeout: float) -> object:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)  # type: ignore[arg-type]

    def __enter__(self) -> SyncPublishingGate:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _gate(self) -> PublishingGate:
        if self.gate is None:
            raise RuntimeError("SyncPublishingGate is not started")
        return self.gate

    def allowed(self, *, channel: str | None = None, account: str | None = None, brand: str | None = None) -> Decision:
        """May a post for this channel/account/brand go out now? (thread-safe)"""
        return self._gate().allowed(channel=channel, account=account, brand=brand)

    @property
    def backlog(self) -> Backlog:
        """The deferred posts (thread-safe; use ``take()`` to release held posts)."""
        return self._gate().backlog

    def status(self) -> dict[str, ControlMessage]:
        return self._gate().status()

    def unknown(self) -> dict[str, str]:
        return self._gate().unknown()

    @property
    def rejected(self) -> Counter[str]:
        return self._gate().rejected

"""Liveness that tells the truth: what each stage of a worker is doing, whether the broker answers,
and Kafka client logging an operator can read.

- `WorkerHealth` holds each stage's state (``starting``, ``joining``, ``running``, ``rebalancing``,
  ``recovering``, ``stopped``), exports ``crisiswatch_stage_up{stage}`` and
  ``crisiswatch_stage_failures_total{stage,reason}``, and answers ``/healthz`` (503 once a stage stopped)
  and ``/readyz`` (503 until every stage has joined its group, while one rebalances or recovers, while the
  broker is unreachable, and once one stopped).
- `BrokerWatch` probes the bootstrap servers once a second and logs ONE line when the broker becomes
  unreachable ("broker unreachable at X since T") and one when it is back, with the outage's duration.
- `ClientLogFilter` drops aiokafka/faust/mode warnings and errors while the broker is known to be down
  (they are all the same outage) and lets one line per message template through every 60 s otherwise,
  counting what it held back in ``crisiswatch_client_log_lines_suppressed_total{library}``.
- `HealthMonitor` (a service of the worker's app) ticks the probe, notices a stage whose loop stopped
  turning, and calls ``on_fatal`` once when a stage stopped: the worker then exits non-zero so that its
  supervisor (systemd ``Restart=always``, Kubernetes) restarts it.

Recoverable failures (a refused commit after the group moved on, any other Kafka error) never stop a
stage: `stream.batch_stage.BatchStage` rejoins and retries from its last commit or checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mode import Service

from crisiswatch.stream import metrics

log = logging.getLogger(__name__)

STATES = ("starting", "joining", "running", "rebalancing", "recovering", "stopped")
RECOVERED_REASONS = ("commit_failed", "kafka_error")
FATAL_REASONS = ("restore_failed", "crashed", "stalled")
STALL_SECONDS = 120.0
"""A stage whose loop has not turned for this long while the broker answers is stopped as ``stalled``."""
STUCK_STATES = ("joining", "rebalancing", "recovering")
"""States a stage passes through on its way back to ``running``: staying in one for `STALL_SECONDS` is a stall."""
PROBE_SECONDS = 1.0
PROBE_TIMEOUT = 2.0
CLIENT_LIBRARIES = ("aiokafka", "kafka", "faust", "mode")
REPEAT_WINDOW_SECONDS = 60.0
EXIT_LINE = "crisiswatch worker exiting:"
"""Start of the one log line that says why a worker exits non-zero (`crisiswatch run` quotes it)."""


def _iso(wall: float | None) -> str | None:
    if wall is None:
        return None
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _describe(exc: BaseException) -> str:
    text = str(exc).split("\n")[0].strip()
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


@dataclass
class StageHealth:
    """One stage's state, why it is in it, and since when."""

    state: str = "starting"
    since: float = field(default_factory=time.time)
    since_mono: float = field(default_factory=time.monotonic)
    reason: str | None = None
    detail: str | None = None
    failures: int = 0
    last_turn: float = field(default_factory=time.monotonic)
    loop_watched: bool = False
    """Whether the stage reports its loop's turns (only those are checked for stalls)."""

    def as_json(self, now_mono: float) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": _iso(self.since),
            "reason": self.reason,
            "detail": self.detail,
            "failures": self.failures,
            "seconds_since_poll": round(now_mono - self.last_turn, 1) if self.loop_watched else None,
        }


class WorkerHealth:
    """The state of every stage of one worker, exported as metrics and as the probes' JSON body."""

    def __init__(self, stages: tuple[str, ...] = ()) -> None:
        self.stages: dict[str, StageHealth] = {}
        self.broker: BrokerWatch | None = None
        self.fatal: tuple[str, str, str] | None = None
        """(stage, reason, detail) of the first stage that stopped."""
        for stage in stages:
            self.register(stage)

    def register(self, stage: str) -> None:
        if stage not in self.stages:
            self.stages[stage] = StageHealth()
            metrics.STAGE_UP.labels(stage).set(0)

    def _set(self, stage: str, state: str, reason: str | None = None, detail: str | None = None) -> StageHealth:
        self.register(stage)
        entry = self.stages[stage]
        if entry.state == "stopped":  # final: a stopped stage is only revived by a new process
            return entry
        if entry.state != state or entry.reason != reason:
            entry.state, entry.since, entry.reason, entry.detail = state, time.time(), reason, detail
            entry.since_mono = time.monotonic()
        metrics.STAGE_UP.labels(stage).set(1 if state == "running" else 0)
        return entry

    def joining(self, stage: str) -> None:
        self._set(stage, "joining")

    def running(self, stage: str) -> None:
        self._set(stage, "running")

    def rebalancing(self, stage: str) -> None:
        self._set(stage, "rebalancing")

    def turned(self, stage: str) -> None:
        """The stage's loop came round once more (it is not hung)."""
        self.register(stage)
        entry = self.stages[stage]
        entry.last_turn, entry.loop_watched = time.monotonic(), True

    def recovering(self, stage: str, reason: str, exc: BaseException) -> None:
        """A recoverable failure: counted, logged once, and the stage goes on (rejoin, retry)."""
        assert reason in RECOVERED_REASONS, reason
        detail = _describe(exc)
        entry = self._set(stage, "recovering", reason, detail)
        entry.failures += 1
        metrics.STAGE_FAILURES.labels(stage, reason).inc()
        log.warning("%s stage: %s (%s); rejoining and retrying from its last commit/checkpoint", stage, reason, detail)

    def stopped(self, stage: str, reason: str, exc: BaseException | str) -> None:
        """The stage will process nothing more in this process."""
        assert reason in FATAL_REASONS, reason
        self.register(stage)
        entry = self.stages[stage]
        if entry.state == "stopped":
            return
        detail = exc if isinstance(exc, str) else _describe(exc)
        entry.state, entry.since, entry.reason, entry.detail = "stopped", time.time(), reason, detail
        entry.failures += 1
        metrics.STAGE_UP.labels(stage).set(0)
        metrics.STAGE_FAILURES.labels(stage, reason).inc()
        if self.fatal is None:
            self.fatal = (stage, reason, detail)
        if isinstance(exc, BaseException):
            log.error("%s stage stopped (%s): %s", stage, reason, detail, exc_info=exc)
        else:
            log.error("%s stage stopped (%s): %s", stage, reason, detail)

    @property
    def alive(self) -> bool:
        return self.fatal is None

    @property
    def ready(self) -> bool:
        broker_ok = self.broker is None or self.broker.reachable
        return self.alive and broker_ok and all(s.state == "running" for s in self.stages.values())

    def payload(self) -> dict[str, Any]:
        """The JSON body of ``/healthz`` and ``/readyz``."""
        now_mono = time.monotonic()
        status = "stopped" if not self.alive else "ok" if self.ready else "not_ready"
        body: dict[str, Any] = {
            "status": status,
            "alive": self.alive,
            "ready": self.ready,
            "stages": {name: entry.as_json(now_mono) for name, entry in self.stages.items()},
        }
        if self.broker is not None:
            body["broker"] = self.broker.as_json()
        return body


def _addresses(bootstrap_servers: str) -> list[tuple[str, int]]:
    found = []
    for item in bootstrap_servers.split(","):
        item = item.strip().rsplit("://", 1)[-1]
        if not item:
            continue
        host, _, port = item.rpartition(":")
        found.append((host.strip("[]") or "localhost", int(port or 9092)))
    return found


class BrokerWatch:
    """Whether any bootstrap server accepts a connection, with one log line per change."""

    def __init__(
        self, bootstrap_servers: str, on_back: Callable[[], Awaitable[None]] | None = None, failures_to_down: int = 2
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.addresses = _addresses(bootstrap_servers)
        self.on_back = on_back
        """Run once the broker answers again (and retried at every probe until it succeeds)."""
        self.failures_to_down = failures_to_down
        self.reachable = True
        self.changed_at = time.time()
        self.reachable_since_mono = time.monotonic()
        self._failed_probes = 0
        self._first_failure: float | None = None
        self._last_error = ""
        self._pending_back = False
        self.suppressed_during_outage = 0
        metrics.BROKER_REACHABLE.set(1)

    def as_json(self) -> dict[str, Any]:
        since = _iso(self.changed_at)
        return {"bootstrap_servers": self.bootstrap_servers, "reachable": self.reachable, "since": since}

    async def _answers(self) -> bool:
        for host, port in self.addresses:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_TIMEOUT)
            except (TimeoutError, OSError) as exc:
                self._last_error = _describe(exc)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return True
        return False

    async def probe(self) -> None:
        """Probe once; log and run ``on_back`` on a change."""
        if await self._answers():
            self._failed_probes, self._first_failure = 0, None
            if not self.reachable:
                down_for = time.time() - self.changed_at
                log.warning(
                    "broker at %s reachable again after %.1f s (unreachable since %s); %d Kafka client log lines "
                    "were held back during the outage",
                    self.bootstrap_servers, down_for, _iso(self.changed_at), self.suppressed_during_outage,
                )  # fmt: skip
                self.reachable, self.changed_at = True, time.time()
                self.reachable_since_mono = time.monotonic()
                self._pending_back = True
                metrics.BROKER_REACHABLE.set(1)
            if self._pending_back and self.on_back is not None:
                try:
                    await self.on_back()
                except Exception as exc:  # retried at the next probe
                    log.warning("broker at %s is back but not usable yet: %s", self.bootstrap_servers, _describe(exc))
                    return
            self._pending_back = False
            return
        self._failed_probes += 1
        if self._first_failure is None:
            self._first_failure = time.time()
        if self.reachable and self._failed_probes >= self.failures_to_down:
            self.reachable, self.changed_at = False, self._first_failure
            self.suppressed_during_outage = 0
            metrics.BROKER_REACHABLE.set(0)
            log.warning(
                "broker unreachable at %s since %s (%s); Kafka client errors are held back until it is back",
                self.bootstrap_servers, _iso(self.changed_at), self._last_error,
            )  # fmt: skip


class ClientLogFilter(logging.Filter):
    """Keeps the Kafka client libraries' warnings and errors readable (install on the handlers)."""

    def __init__(self, watch: BrokerWatch | None = None, window: float = REPEAT_WINDOW_SECONDS, max_keys: int = 500):
        super().__init__()
        self.watch = watch
        self.window = window
        self.max_keys = max_keys
        self._seen: dict[tuple[str, int, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        library = record.name.split(".", 1)[0]
        if record.levelno < logging.WARNING or library not in CLIENT_LIBRARIES:
            return True
        if self.watch is not None and not self.watch.reachable:
            self.watch.suppressed_during_outage += 1
            metrics.CLIENT_LOG_LINES_SUPPRESSED.labels(library).inc()
            return False
        key = (record.name, record.levelno, str(record.msg)[:200])
        now = time.monotonic()
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self.window:
            entry[1] += 1
            metrics.CLIENT_LOG_LINES_SUPPRESSED.labels(library).inc()
            return False
        if len(self._seen) >= self.max_keys:
            self._seen.clear()
        held = int(entry[1]) if entry is not None else 0
        self._seen[key] = [now, 0]
        if held:
            record.msg = f"{record.msg} [{held} similar lines held back in the last {self.window:.0f} s]"
        return True


def install_log_filter(log_filter: logging.Filter) -> None:
    """Put ``log_filter`` on every handler of the root logger (a logger's own filter misses its children)."""
    for handler in logging.getLogger().handlers:
        if log_filter not in handler.filters:
            handler.addFilter(log_filter)


class HealthMonitor(Service):
    """Probes the broker, watches the stages' loops, and calls ``on_fatal`` once when a stage stopped."""

    def __init__(
        self,
        health: WorkerHealth,
        watch: BrokerWatch,
        on_fatal: Callable[[str, str, str], None] | None = None,
        extra_checks: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        self.health = health
        self.watch = watch
        self.on_fatal = on_fatal
        self.extra_checks = extra_checks
        self.log_filter = ClientLogFilter(watch)
        self._fired = False
        health.broker = watch
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        install_log_filter(self.log_filter)

    def check_stalls(self) -> None:
        """Stop (as ``stalled``) a stage whose loop has not turned, or that has not got back to ``running``
        (stuck joining, rebalancing or recovering), for `STALL_SECONDS` while the broker answers."""
        now = time.monotonic()
        if not self.watch.reachable:
            return
        for name, entry in self.health.stages.items():
            if entry.state == "stopped":
                continue
            if entry.loop_watched and now - max(entry.last_turn, self.watch.reachable_since_mono) > STALL_SECONDS:
                self.health.stopped(name, "stalled", f"its loop has not turned for {now - entry.last_turn:.0f} s")
            elif entry.state in STUCK_STATES and now - max(entry.since_mono, self.watch.reachable_since_mono) > (
                STALL_SECONDS
            ):
                self.health.stopped(name, "stalled", f"stuck {entry.state} for {now - entry.since_mono:.0f} s")

    async def tick(self) -> None:
        install_log_filter(self.log_filter)  # cheap; catches handlers added after start
        await self.watch.probe()
        if self.extra_checks is not None:
            self.extra_checks()
        self.check_stalls()
        if self.health.fatal is not None and not self._fired:
            self._fired = True
            if self.on_fatal is not None:
                self.on_fatal(*self.health.fatal)

    @Service.task
    async def _run(self) -> None:
        while not self.should_stop:
            try:
                await self.tick()
            except Exception:  # the monitor must outlive anything it watches
                log.exception("health monitor tick failed")
            await self.sleep(PROBE_SECONDS)

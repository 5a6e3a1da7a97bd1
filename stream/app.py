"""The crisiswatch faust application: one app, its stages and agents, its web pages.

- ``EnrichStage`` (batch service): ``mentions.raw`` → ``mentions.enriched`` / ``mentions.dlq``
- ``WindowStage`` (batch service): ``mentions.enriched`` → ``signals``
- ``assess_risk`` (faust agent): ``signals`` → ``alerts`` → ``publishing.control``
- ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz`` (JSON: each stage's state, the broker's);
  a timer exports the event-loop lag; `stream.health.HealthMonitor` probes the broker.

`create_app` builds it for a given cluster; `run_worker` runs it until stopped, and exits with
``EXIT_STAGE_STOPPED`` when a stage stopped (a supervisor restarts it; the reason is logged on one line
starting ``crisiswatch worker exiting:``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import faust
from aiokafka.errors import KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from crisiswatch.contracts.records import DeadLetterReason, Signal
from crisiswatch.contracts.topics import MENTIONS_DLQ, SIGNALS
from crisiswatch.kafka import faust_credentials, forbid_topic_auto_creation
from crisiswatch.settings import Settings
from crisiswatch.stream import metrics
from crisiswatch.stream.dead_letters import DeadLetterLog, is_outage, publish_dead_letter
from crisiswatch.stream.enrich_stage import EnrichStage
from crisiswatch.stream.health import EXIT_LINE, BrokerWatch, HealthMonitor, WorkerHealth
from crisiswatch.stream.risk_stage import RiskStage
from crisiswatch.stream.window_stage import WindowStage

log = logging.getLogger(__name__)

STAGES = ("enrich", "window", "risk")
EXIT_STAGE_STOPPED = 70
"""Exit status of a worker whose stage stopped (EX_SOFTWARE): restart it."""
EXIT_GRACE_SECONDS = 15.0
"""How long a worker whose stage stopped may take to shut down cleanly before it exits regardless."""


async def ensure_worker_topics(bootstrap_servers: str, settings: Settings) -> None:
    """Create the topics a worker needs (at start-up, and again whenever the broker comes back)."""
    from crisiswatch.kafka import ensure_topics

    created = await ensure_topics(bootstrap_servers, settings)
    if created:
        log.warning("created missing topics: %s", ", ".join(created))


def create_app(
    settings: Settings,
    bootstrap_servers: str,
    datadir: str | None = None,
    on_fatal: Callable[[str, str, str], None] | None = None,
) -> faust.App:
    """The faust app of a crisiswatch worker, bound to ``bootstrap_servers`` (``datadir``: faust's scratch folder).

    ``on_fatal(stage, reason, detail)`` is called once when a stage stopped (`run_worker`: exit non-zero)."""
    app = faust.App(
        settings.kafka.app_id,
        broker=f"kafka://{bootstrap_servers}",
        broker_credentials=faust_credentials(settings),  # TLS/SASL, the same as every other client
        store="memory://",
        datadir=datadir or tempfile.mkdtemp(prefix="crisiswatch-faust-"),
        topic_partitions=settings.kafka.partitions,
        topic_allow_declare=False,
        topic_disable_leader=True,  # no on_leader timers; and no topic that only auto-creation would make
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10.0,
        broker_rebalance_timeout=10.0,
        broker_heartbeat_interval=1.0,
        web_enabled=True,
        web_host=settings.web.web_host,
        web_port=settings.web.web_port,
        web_in_thread=False,
    )
    health = WorkerHealth(STAGES)
    risk = RiskStage(settings, bootstrap_servers)
    risk_dead_letters = DeadLetterLog(log, settings.worker.dead_letter_log_seconds)

    async def reject_signal(message: Any, reason: DeadLetterReason, exc: Exception) -> None:
        assert risk.producer is not None
        await publish_dead_letter(
            risk.producer, settings.topic(MENTIONS_DLQ.name), risk_dead_letters, message, reason,
            f"{type(exc).__name__}: {exc}", stage="risk", max_bytes=settings.worker.dead_letter_max_bytes,
        )  # fmt: skip

    @app.service
    class Enrich(EnrichStage):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(settings, bootstrap_servers, health=health, **kwargs)

    @app.service
    class Windows(WindowStage):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(settings, bootstrap_servers, health=health, **kwargs)

    def check_risk_consumer() -> None:
        """faust crashes its consumer on some commit errors and the process lives on: that is a stop."""
        consumer = app._consumer
        if consumer is not None and consumer.crashed:
            health.stopped("risk", "crashed", consumer.crash_reason or "faust's consumer crashed")

    @app.service
    class Monitor(HealthMonitor):
        def __init__(self, **kwargs: Any) -> None:
            watch = BrokerWatch(bootstrap_servers, on_back=lambda: ensure_worker_topics(bootstrap_servers, settings))
            super().__init__(health, watch, on_fatal=on_fatal, extra_checks=check_risk_consumer,
                             **kwargs)  # fmt: skip

    signals = app.topic(settings.topic(SIGNALS.name), key_serializer="raw", value_serializer="raw")

    @app.agent(signals, name="assess_risk")
    async def assess_risk(stream: faust.StreamT[bytes]) -> None:
        """`assess_signals`, reported: faust restarts the agent after a broker outage; anything else stops
        the risk stage, and the worker exits non-zero (a crash loop inside a live process tells no one)."""
        if health.stages["risk"].state == "recovering":
            health.running("risk")  # faust restarted the agent after an outage
        try:
            await assess_signals(stream)
        except Exception as exc:
            if isinstance(exc, KafkaError | OSError):
                health.recovering("risk", "kafka_error", exc)
            else:
                health.stopped("risk", "crashed", exc)
            raise

    async def assess_signals(stream: faust.StreamT[bytes]) -> None:
        """Turn each closed window into a risk decision; publish alerts and pauses."""
        await risk.start()
        try:
            async for event in stream.events():
                # A signal that cannot be read or assessed is dead-lettered (stage "risk"), and the next one
                # is handled; only a broker outage stops the agent.
                try:
                    signal = Signal.model_validate_json(event.value or b"")
                except Exception as exc:
                    await reject_signal(event.message, "invalid_signal", exc)
                    continue
                try:
                    await risk.handle(signal, event.message.partition)
                except Exception as exc:
                    if is_outage(exc):
                        raise
                    await reject_signal(event.message, "risk_error", exc)
        finally:
            await risk.stop()

    @app.on_partitions_assigned.connect
    async def _reload_risk_state(sender: Any, assigned: Any, **kwargs: Any) -> None:
        risk.invalidate(tp.partition for tp in assigned if tp.topic == settings.topic(SIGNALS.name))
        health.running("risk")

    @app.on_partitions_revoked.connect
    async def _risk_rebalancing(sender: Any, revoked: Any, **kwargs: Any) -> None:
        health.rebalancing("risk")

    @app.timer(interval=0.25)
    async def measure_event_loop_lag() -> None:
        """Export how late the loop wakes from a short sleep (long synchronous work shows up here)."""
        started = time.perf_counter()
        await asyncio.sleep(0.05)
        metrics.EVENT_LOOP_LAG.set(max(0.0, time.perf_counter() - started - 0.05))

    @app.page("/metrics")
    async def prometheus_metrics(web: Any, request: Any) -> Any:
        # aiohttp (under faust's web driver) refuses a charset inside content_type; UTF-8 is the default.
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        """Alive: 200 unless a stage stopped (503); the body lists every stage's state."""
        return web.json(health.payload(), status=200 if health.alive else 503)

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        """Ready: 200 once every stage joined its group and runs, with the broker reachable; else 503."""
        return web.json(health.payload(), status=200 if health.ready else 503)

    app.crisiswatch_risk = risk  # type: ignore[attr-defined]
    app.crisiswatch_health = health  # type: ignore[attr-defined]
    return app


def _exit_on_fatal(stage: str, reason: str, detail: str) -> None:
    """A stage stopped: log why on one line, stop the worker (SIGTERM to itself), and make sure it exits."""
    log.critical("%s stage %s stopped (%s): %s; exit status %d", EXIT_LINE, stage, reason, detail, EXIT_STAGE_STOPPED)
    timer = threading.Timer(EXIT_GRACE_SECONDS, os._exit, [EXIT_STAGE_STOPPED])
    timer.daemon = True
    timer.start()
    os.kill(os.getpid(), signal.SIGTERM)


def run_worker(settings: Settings, bootstrap_servers: str, loglevel: str = "warning") -> None:
    """Run a worker in this process until SIGINT/SIGTERM; exit ``EXIT_STAGE_STOPPED`` when a stage stopped."""
    forbid_topic_auto_creation()
    asyncio.run(ensure_worker_topics(bootstrap_servers, settings))
    with tempfile.TemporaryDirectory(prefix="crisiswatch-faust-") as datadir:  # state lives in Kafka, not here
        app = create_app(settings, bootstrap_servers, datadir, on_fatal=_exit_on_fatal)
        health: WorkerHealth = app.crisiswatch_health  # type: ignore[attr-defined]
        try:
            faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()  # exits via SystemExit
        except BaseException:
            if health.fatal is None:
                raise
        if health.fatal is not None:
            raise SystemExit(EXIT_STAGE_STOPPED)

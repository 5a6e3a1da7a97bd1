"""The crisiswatch faust application: one app, its stages and agents, its web pages.

- ``EnrichStage`` (batch service): ``mentions.raw`` → ``mentions.enriched`` / ``mentions.dlq``
- ``WindowStage`` (batch service): ``mentions.enriched`` → ``signals``
- ``assess_risk`` (faust agent): ``signals`` → ``alerts`` → ``publishing.control``
- ``/metrics`` (Prometheus), ``/healthz``; a timer exports the event-loop lag.

`create_app` builds it for a given cluster; `run_worker` runs it until stopped.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from crisiswatch.kafka import faust_credentials
from crisiswatch.settings import Settings
from stream import metrics
from stream.enrich_stage import EnrichStage
from stream.records import Signal
from stream.risk_stage import RiskStage
from stream.topics import SIGNALS
from stream.window_stage import WindowStage

log = logging.getLogger(__name__)


def create_app(settings: Settings, bootstrap_servers: str, datadir: str | None = None) -> faust.App:
    """The faust app of a crisiswatch worker, bound to ``bootstrap_servers`` (``datadir``: faust's scratch folder)."""
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{bootstrap_servers}",
        broker_credentials=faust_credentials(settings),  # TLS/SASL, the same as every other client
        store="memory://",
        datadir=datadir or tempfile.mkdtemp(prefix="crisiswatch-faust-"),
        topic_partitions=settings.partitions,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10.0,
        broker_rebalance_timeout=10.0,
        broker_heartbeat_interval=1.0,
        web_enabled=True,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
    )
    risk = RiskStage(settings, bootstrap_servers)

    @app.service
    class Enrich(EnrichStage):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(settings, bootstrap_servers, **kwargs)

    @app.service
    class Windows(WindowStage):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(settings, bootstrap_servers, **kwargs)

    signals = app.topic(settings.topic(SIGNALS.name), key_serializer="raw", value_serializer="raw")

    @app.agent(signals, name="assess_risk")
    async def assess_risk(stream: faust.StreamT[bytes]) -> None:
        """Turn each closed window into a risk decision; publish alerts and pauses."""
        await risk.start()
        try:
            async for event in stream.events():
                try:
                    signal = Signal.model_validate_json(event.value)
                except ValueError:
                    log.exception("invalid signal at %s/%s", event.message.partition, event.message.offset)
                    continue
                await risk.handle(signal, event.message.partition)
        finally:
            await risk.stop()

    @app.on_partitions_assigned.connect
    async def _reload_risk_state(sender: Any, assigned: Any, **kwargs: Any) -> None:
        risk.invalidate()

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
        return web.json({"status": "ok"})

    app.crisiswatch_risk = risk  # type: ignore[attr-defined]
    return app


def run_worker(settings: Settings, bootstrap_servers: str, loglevel: str = "warning") -> None:
    """Run a worker in this process until SIGINT/SIGTERM."""
    from stream.topics import ensure_topics

    asyncio.run(ensure_topics(bootstrap_servers, settings))
    with tempfile.TemporaryDirectory(prefix="crisiswatch-faust-") as datadir:  # state lives in Kafka, not here
        app = create_app(settings, bootstrap_servers, datadir)
        faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()  # exits via SystemExit

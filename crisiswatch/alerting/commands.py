"""What the alerting commands of the `crisiswatch` CLI do (``crisiswatch/cli.py`` stays thin)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal

import typer

from crisiswatch.alerting.book import AckPublisher, AlertFeed
from crisiswatch.alerting.dispatcher import AlertDispatcher
from crisiswatch.contracts.records import ACK_ACTOR_PATTERN, AlertAck
from crisiswatch.contracts.topics import ALERTS
from crisiswatch.settings import Settings
from crisiswatch.tables import ID, TEXT, new_table, print_table


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _settings() -> Settings:
    settings = Settings()
    if not settings.kafka.bootstrap_servers:
        raise _fail("no Kafka cluster: set KAFKA_BOOTSTRAP_SERVERS")
    return settings


def run_dispatcher(metrics_port: int = 0) -> None:
    """Run the alert dispatcher until SIGINT/SIGTERM."""
    settings = _settings()
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=settings.web.web_host)

    async def main() -> None:
        dispatcher = AlertDispatcher(settings)
        names = ", ".join(c.name for c in dispatcher.channels) or "none (configure CRISISWATCH_SLACK_WEBHOOK_URL, …)"
        typer.echo(f"delivering alerts from {dispatcher.alerts_topic} to: {names}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await dispatcher.start()
        try:
            await stop.wait()
        finally:
            await dispatcher.stop()

    asyncio.run(main())


def acknowledge(alert_id: str, actor: str | None, note: str) -> None:
    """Record that ``actor`` acknowledged ``alert_id``."""
    if not actor:
        raise _fail("who is acknowledging? set CRISISWATCH_USER or pass --actor <your user name>")
    if not re.fullmatch(ACK_ACTOR_PATTERN, actor):
        raise _fail(f"invalid user name {actor!r}")
    settings = _settings()

    async def main() -> AlertAck:
        feed = AlertFeed(settings)
        await feed.start()
        try:
            await asyncio.wait_for(feed.caught_up.wait(), 15)
        finally:
            await feed.stop()
        episode = feed.book.get(alert_id)
        if episode is None:
            raise _fail(f"no alert {alert_id!r} on {feed.alerts_topic}")
        async with AckPublisher(settings) as publisher:
            return await publisher.publish(AlertAck(alert_id=alert_id, brand=episode.brand, actor=actor, note=note))

    ack = asyncio.run(main())
    typer.echo(f"acknowledged {ack.alert_id} as {ack.actor} at {ack.at.isoformat()}")


def list_alerts(limit: int, as_json: bool) -> None:
    """Print recent alert episodes with their acknowledgements."""
    settings = _settings()

    async def main() -> list[dict[str, object]]:
        feed = AlertFeed(settings)
        await feed.start()
        try:
            await asyncio.wait_for(feed.caught_up.wait(), 15)
        finally:
            await feed.stop()
        return [e.to_json() for e in feed.book.recent(limit)]

    episodes = asyncio.run(main())
    if as_json:
        typer.echo(json.dumps(episodes, indent=2, ensure_ascii=False))
        return
    if not episodes:
        typer.echo(f"no alerts on {settings.topic(ALERTS.name)}")
        return
    # The alert id starts with the brand, and is never cut (it is what `crisiswatch ack` takes).
    table = new_table(
        ("alert id", ID), ("status", ID), ("severity", ID), ("risk", ID), ("acknowledged by", TEXT), ("summary", TEXT)
    )
    for e in episodes:
        acks = ", ".join(a["actor"] for a in e["acks"])  # type: ignore[index,union-attr]
        table.add_row(
            str(e["alert_id"]), str(e["status"]), str(e["peak_severity"]), f"{e['risk']:.0f}", acks or "-",
            str(e["summary"]),
        )  # fmt: skip
    print_table(table)

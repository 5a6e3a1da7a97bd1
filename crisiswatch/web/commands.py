"""What `crisiswatch serve` does (``crisiswatch/cli.py`` stays thin)."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import typer

from crisiswatch.settings import Settings


def serve(host: str | None = None, port: int | None = None) -> None:
    """Serve the page and the API until SIGINT/SIGTERM."""
    from crisiswatch.control.messages import SigningUnavailable
    from crisiswatch.web.auth import ConfigError
    from crisiswatch.web.server import WebServer

    settings = Settings()
    if not settings.kafka.bootstrap_servers:
        typer.echo("error: no Kafka cluster: set KAFKA_BOOTSTRAP_SERVERS", err=True)
        raise typer.Exit(1)
    if not settings.web.web_users and not settings.web.api_token and not settings.web.web_trusted_proxies:
        typer.echo(
            "error: nobody could sign in: set CRISISWATCH_WEB_USERS, CRISISWATCH_API_TOKEN and/or "
            "CRISISWATCH_WEB_TRUSTED_PROXIES (SSO)",
            err=True,
        )
        raise typer.Exit(1)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        async with WebServer(settings, host=host, port=port) as server:
            typer.echo(f"crisiswatch page: {settings.web.public_url or server.url}  (Ctrl-C stops)")
            await stop.wait()

    try:
        asyncio.run(main())
    except (ConfigError, SigningUnavailable, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc

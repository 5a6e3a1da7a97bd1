"""Glue of the ``crisiswatch connect …`` commands: settings → connectors → sink → run until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from crisiswatch.connectors.base import Backoff, Connector, StateStore, run_connectors
from crisiswatch.connectors.mapping import FieldMapping
from crisiswatch.settings import Settings


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def parse_headers(values: list[str]) -> dict[str, str]:
    """``Name: value`` strings to a dict; ``${VAR}`` in a value is read from the environment."""
    from crisiswatch.connectors.poll import expand_env

    headers: dict[str, str] = {}
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise _fail(f"--header must look like 'Name: value', got {name.strip()!r}…")
        headers[name.strip()] = expand_env(content.strip())
    return headers


def file_headers(mapping: FieldMapping) -> dict[str, str]:
    """The mapping file's ``headers`` section, ``${VAR}`` expanded."""
    from crisiswatch.connectors.poll import expand_env

    return {str(k): expand_env(str(v)) for k, v in (mapping.extra.get("headers") or {}).items()}


def parse_pairs(values: list[str], option: str) -> dict[str, str]:
    """``key=value`` strings to a dict."""
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, content = value.partition("=")
        if not sep or not key:
            raise _fail(f"{option} must look like key=value, got {value!r}")
        pairs[key] = content
    return pairs


def load_mapping(path: Path, source: str | None) -> FieldMapping:
    """Read a mapping file, with command-line errors instead of tracebacks."""
    if not path.is_file():
        raise _fail(f"mapping file not found: {path}")
    try:
        return FieldMapping.load(path, source)
    except (ValueError, OSError) as exc:
        raise _fail(f"{path}: {exc}") from None


def backoff(settings: Settings) -> Backoff:
    return Backoff(
        settings.connectors.connector_backoff_initial_seconds, settings.connectors.connector_backoff_max_seconds
    )


def state(settings: Settings, kind: str, identity: str) -> StateStore:
    return StateStore.for_connector(settings.connectors.connector_state_dir, kind, identity)


def common(settings: Settings) -> dict[str, Any]:
    """Keyword arguments every HTTP connector takes from settings."""
    return {
        "backoff": backoff(settings),
        "timeout": settings.connectors.connector_timeout_seconds,
        "user_agent": settings.connectors.connector_user_agent,
    }


def run(build: Callable[[Settings], list[Connector]], metrics_port: int = 0) -> None:
    """Build connectors from settings and run them on the configured cluster until SIGINT/SIGTERM."""
    from crisiswatch.broker import broker_for
    from crisiswatch.connectors.sink import MentionSink
    from crisiswatch.kafka import ensure_topics

    settings = Settings()
    checkpoints = settings.connectors.connector_checkpoints
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry full URLs (API keys in queries)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=settings.web.web_host)

    async def main() -> None:
        with broker_for(settings) as bootstrap:
            await ensure_topics(bootstrap, settings)
            async with MentionSink(settings, bootstrap, checkpoints=checkpoints) as sink:
                connectors = build(settings)  # once the checkpoints were read: their stores bind to them
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError):
                        loop.add_signal_handler(sig, stop.set)
                typer.echo(f"handing mentions to {sink.topic} (Ctrl-C to stop)", err=True)
                await run_connectors(connectors, sink, stop)
                typer.echo(f"stopped; {sink.sent} records handed over", err=True)

    asyncio.run(main())


def rss(urls: list[str], interval: float, source: str, metrics_port: int) -> None:
    """``crisiswatch connect rss``: one feed connector per URL."""
    from crisiswatch.connectors.rss import FeedConnector

    def build(settings: Settings) -> list[Connector]:
        return [
            FeedConnector(url, source=source, interval=interval, state=state(settings, "rss", url), **common(settings))
            for url in urls
        ]

    run(build, metrics_port)


def webhook(host: str | None, port: int | None, mappings: list[str]) -> None:
    """``crisiswatch connect webhook``: the push receiver (serves its own /metrics)."""
    from crisiswatch.connectors.webhook import WebhookReceiver

    per_source = {src: load_mapping(Path(file), src) for src, file in parse_pairs(mappings, "--mapping").items()}

    def build(settings: Settings) -> list[Connector]:
        secret = settings.connectors.connector_webhook_secret
        token = settings.connectors.connector_webhook_token
        if secret is None and token is None:
            raise _fail("set CRISISWATCH_CONNECTOR_WEBHOOK_SECRET (HMAC) or CRISISWATCH_CONNECTOR_WEBHOOK_TOKEN")
        sources = settings.connectors.connector_webhook_sources
        receiver = WebhookReceiver(
            secret=secret.get_secret_value().encode() if secret else None,
            token=token.get_secret_value() if token else None,
            host=host or settings.connectors.connector_webhook_host,
            port=settings.connectors.connector_webhook_port if port is None else port,
            max_bytes=settings.connectors.connector_webhook_max_bytes,
            sources=[s.strip() for s in sources.split(",") if s.strip()] if sources else None,
            mappings=per_source,
        )
        typer.echo(f"listening on http://{receiver.host}:{receiver.port}/webhooks/{{source}}", err=True)
        return [receiver]

    run(build)


def sse(url: str, mapping: Path, source: str | None, headers: list[str], events: list[str], metrics_port: int) -> None:
    """``crisiswatch connect sse``."""
    from crisiswatch.connectors.sse import SseConnector

    field_mapping = load_mapping(mapping, source)
    header_map = {**file_headers(field_mapping), **parse_headers(headers)}
    wanted = set(events or field_mapping.extra.get("events") or []) or None

    def build(settings: Settings) -> list[Connector]:
        return [
            SseConnector(
                url,
                field_mapping,
                headers=header_map,
                events=wanted,
                state=state(settings, "sse", url),
                **common(settings),
            )
        ]

    run(build, metrics_port)


def websocket(
    url: str,
    mapping: Path,
    source: str | None,
    subscribe: list[str],
    headers: list[str],
    heartbeat: float,
    metrics_port: int,
) -> None:
    """``crisiswatch connect websocket``."""
    from crisiswatch.connectors.websocket import WebSocketConnector

    field_mapping = load_mapping(mapping, source)
    messages: list[Any] = list(field_mapping.extra.get("subscribe") or [])
    for text in subscribe:
        try:
            messages.append(json.loads(text))
        except ValueError:
            raise _fail(f"--subscribe is not JSON: {text[:60]!r}") from None
    header_map = {**file_headers(field_mapping), **parse_headers(headers)}

    def build(settings: Settings) -> list[Connector]:
        return [
            WebSocketConnector(
                url,
                field_mapping,
                subscribe=messages,
                headers=header_map,
                heartbeat=heartbeat,
                state=state(settings, "websocket", url),
                backoff=backoff(settings),
                timeout=settings.connectors.connector_timeout_seconds,
                user_agent=settings.connectors.connector_user_agent,
            )
        ]

    run(build, metrics_port)


def poll(
    url: str,
    mapping: Path,
    source: str | None,
    interval: float,
    params: list[str],
    headers: list[str],
    metrics_port: int,
) -> None:
    """``crisiswatch connect poll``."""
    from crisiswatch.connectors.poll import JsonApiPoller

    field_mapping = load_mapping(mapping, source)
    param_map = parse_pairs(params, "--param")
    header_map = parse_headers(headers)

    def build(settings: Settings) -> list[Connector]:
        try:
            poller = JsonApiPoller(
                url,
                field_mapping,
                params=param_map,
                headers=header_map,
                interval=interval,
                state=state(settings, "poll", f"{url}?{sorted(param_map.items())}"),
                **common(settings),
            )
        except (TypeError, ValueError) as exc:
            raise _fail(f"{mapping}: {exc}") from None
        return [poller]

    run(build, metrics_port)


def sources(path: Path, only: str | None, metrics_port: int) -> None:
    """``crisiswatch connect --sources FILE [--only NAME]``: every entry of a sources file (or one)."""
    from crisiswatch.connectors.sources import SourcesFileError, load_sources

    try:
        sources_file = load_sources(path)
        sources_file.build(Settings(), only)  # every problem (an unset credential too) before touching Kafka
    except SourcesFileError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None

    def build(settings: Settings) -> list[Connector]:
        try:
            connectors = sources_file.build(settings, only)
        except SourcesFileError as exc:
            for problem in exc.problems:
                typer.echo(f"error: {problem}", err=True)
            raise typer.Exit(2) from None
        names = ", ".join(f"{s.name} ({s.kind})" for s in sources_file.select(only))
        typer.echo(f"running {len(connectors)} source(s): {names}", err=True)
        return connectors

    run(build, metrics_port)

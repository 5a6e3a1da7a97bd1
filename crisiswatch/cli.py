"""The `crisiswatch` command line. Commands import their heavy modules lazily so `--help` stays fast."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer

from crisiswatch.settings import Settings

app = typer.Typer(help="Kafka-native brand crisis detection that pauses publishing.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that write a markdown + JSON report.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="Port to listen on (0 = a free one).")] = 0,
) -> None:
    """Start the embedded memory-only Kafka-protocol broker and keep it running until Ctrl-C."""
    from crisiswatch.broker import EmbeddedBroker

    _logging(True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with EmbeddedBroker(port=port or None) as embedded:
        typer.echo(f"KAFKA_BOOTSTRAP_SERVERS={embedded.bootstrap_servers}")
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass


def main() -> None:
    """Console-script entry point."""
    app()


def settings_from_env() -> Settings:
    return Settings()


if __name__ == "__main__":
    main()

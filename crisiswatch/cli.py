"""The `crisiswatch` command line. Commands import their heavy modules lazily so `--help` stays fast."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from crisiswatch.settings import Settings

app = typer.Typer(help="Kafka-native brand crisis detection that pauses publishing.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that write a markdown + JSON report.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
from crisiswatch.control.silence_commands import silence_app  # noqa: E402

app.add_typer(silence_app, name="silence")


@silence_app.callback()
def _silence_preflight() -> None:
    # Every silence command talks to Kafka: one line when it cannot (see `_preflight`, defined below).
    _preflight()


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _preflight(*topics: str, settings: Settings | None = None) -> None:
    """One line and an exit status, not a traceback, when Kafka does not answer or ``topics`` are missing.

    Only for a configured cluster (``KAFKA_BOOTSTRAP_SERVERS``): without one, each command says what it
    needs (or starts the embedded broker). See `crisiswatch.preflight` for the exit statuses.
    """
    import asyncio

    from crisiswatch.preflight import OperatorError, check_cluster, quiet_shutdown

    settings = settings or Settings()
    if not settings.kafka.bootstrap_servers:
        return
    try:
        asyncio.run(check_cluster(settings, settings.kafka.bootstrap_servers, topics))
    except OperatorError as exc:
        quiet_shutdown()
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(exc.exit_code) from None


def _duration(value: str | None) -> str | None:
    """Typer callback: a duration must carry its unit (`crisiswatch.durations`); the text is kept."""
    from crisiswatch.durations import DurationError, parse_duration

    if value is not None:
        try:
            parse_duration(value)
        except DurationError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


def _seconds(value: str) -> float:
    """Seconds of a duration already checked by `_duration`."""
    from crisiswatch.durations import parse_duration

    return parse_duration(value)


@app.command()
def run(
    replay: Annotated[
        Path | None, typer.Option(help="JSONL or CSV file of mentions. Default: the bundled demo crisis.")
    ] = None,
    speed: Annotated[float, typer.Option(help="Event-time speed-up: 60 = an hour per minute; 0 = flat out.")] = 0.0,
    brands: Annotated[Path | None, typer.Option(help="Brands YAML file.")] = None,
    until_idle: Annotated[bool, typer.Option("--until-idle", help="Exit 0 once the replay has drained.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line on stdout, nothing else.")] = False,
    page: Annotated[
        bool | None,
        typer.Option("--page/--no-page", help="Also serve the one-button page (default: unless --until-idle)."),
    ] = None,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Use the configured topics. Default: a rehearsal on its own topic prefix "
            "(CRISISWATCH_REHEARSAL_PREFIX, else rehearsal-<id>.), which can never pause real publishing.",
        ),
    ] = False,
) -> None:
    """Run the whole pipeline on the embedded broker (or KAFKA_BOOTSTRAP_SERVERS) and print alerts and pauses.

    SIGINT/SIGTERM stop the worker (the signal is passed on and waited for), the page and the embedded
    broker, and remove the run's temporary folder; the exit status is then 130 / 143.
    """
    from crisiswatch.preflight import EXIT_INTERRUPTED, EXIT_TERMINATED
    from crisiswatch.runner import Stopped, run_command

    _logging(False)
    _preflight()
    try:
        run_command(replay, speed, brands, until_idle, as_json, page, live=live)
    except Stopped as stopped:
        raise typer.Exit(EXIT_TERMINATED if stopped.signum == signal.SIGTERM else EXIT_INTERRUPTED) from None
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (FileNotFoundError, TimeoutError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def backtest(
    mentions: Annotated[Path, typer.Argument(help="Mention file in the replay format (JSONL, JSONL.gz or CSV).")],
    labels: Annotated[
        Path | None, typer.Option(help="Labels file: per brand, event windows and expected pauses.")
    ] = None,
    brands: Annotated[Path | None, typer.Option(help="Brands YAML file (default: CRISISWATCH_BRANDS_FILE).")] = None,
    policy: Annotated[Path | None, typer.Option(help="YAML/JSON file of risk policy fields to try.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the report, pictures and enrichment cache.")] = Path(
        "reports/backtest"
    ),
    pictures: Annotated[bool, typer.Option("--pictures/--no-pictures", help="Draw a timeline PNG per brand.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Replay a history through the worker's own decision code, event-time exact, and report alerts and pauses."""
    from crisiswatch.backtest.commands import backtest_command

    _logging(False)
    try:
        backtest_command(mentions, labels, brands, policy, out, pictures, as_json)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def worker(
    loglevel: Annotated[
        str | None, typer.Option(help="Log level: warn, info or debug (default: CRISISWATCH_LOG_LEVEL).")
    ] = None,
) -> None:
    """Run a stream worker (enrich, window, risk stages). Scale out by starting more."""
    from crisiswatch.broker import broker_for
    from crisiswatch.stream.app import run_worker

    settings = Settings()
    _preflight(settings=settings)
    with broker_for(settings) as bootstrap:
        run_worker(settings, bootstrap, loglevel=loglevel or settings.worker.log_level)


@app.command()
def topics(
    create: Annotated[bool, typer.Option("--create", help="Create the missing topics on the cluster.")] = False,
) -> None:
    """List the topic contracts (name, key, partitions, configs); with --create, create them."""
    import asyncio

    from crisiswatch.contracts.topics import ALL_TOPICS
    from crisiswatch.kafka import ensure_topics, partitions_for
    from crisiswatch.tables import ID, TEXT, new_table, print_table

    settings = Settings()
    if create and settings.kafka.bootstrap_servers:
        _preflight(settings=settings)
    table = new_table(
        ("topic", ID), ("partitions", ID), ("compacted", ID), ("schema", TEXT), ("key", TEXT), ("what", TEXT)
    )
    for spec in ALL_TOPICS:
        table.add_row(
            settings.topic(spec.name),
            str(partitions_for(spec, settings)),
            "yes" if spec.compacted else "no",
            f"crisiswatch/contracts/schemas/{spec.schema}" if spec.schema else "— (internal)",
            spec.key,
            spec.description,
        )
    print_table(table)
    if create:
        if not settings.kafka.bootstrap_servers:
            typer.echo("error: set KAFKA_BOOTSTRAP_SERVERS to create topics", err=True)
            raise typer.Exit(2)
        created = asyncio.run(ensure_topics(settings.kafka.bootstrap_servers, settings))
        typer.echo(f"created: {', '.join(created) or 'nothing (all exist)'}")


@app.command()
def tail(
    topic: Annotated[str, typer.Argument(help="Logical topic name: alerts, publishing.control, mentions.dlq, …")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new records until Ctrl-C.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per record.")] = False,
    from_beginning: Annotated[bool, typer.Option("--from-beginning", help="Every record, not the last N.")] = False,
    last: Annotated[int | None, typer.Option("--last", min=0, help="The last N records (default 10).")] = None,
    key: Annotated[bool, typer.Option("--key", help="Also print each record's key.")] = False,
) -> None:
    """Print a topic's records (the configured prefix is applied); signed control records are verified."""
    from crisiswatch.tail import DEFAULT_LAST, UnknownTopic, resolve_topic, tail_command

    if from_beginning and last is not None:
        raise typer.BadParameter("give --from-beginning or --last, not both", param_hint="--last")
    settings = Settings()
    try:
        logical, _ = resolve_topic(topic, settings)
    except UnknownTopic as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not settings.kafka.bootstrap_servers:
        typer.echo("error: no Kafka cluster: set KAFKA_BOOTSTRAP_SERVERS", err=True)
        raise typer.Exit(1)
    _preflight(logical, settings=settings)
    count = None if from_beginning else (DEFAULT_LAST if last is None else last)
    tail_command(topic, last=count, follow=follow, as_json=as_json, show_key=key)


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option(help="Folder to write demo.jsonl and brands.yaml into.")] = Path("demo"),
) -> None:
    """Write the bundled demo stream (and its brands file) to a folder."""
    from crisiswatch.demo import write_demo

    data, brands_file = write_demo(out)
    typer.echo(f"{data}\n{brands_file}")


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
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


# --- publishing control (crisiswatch/control) ------------------------------------------------------
schedule_app = typer.Typer(help="Planned pause windows (absolute or recurring).", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")
_ActorOpt = Annotated[str | None, typer.Option("--actor", envvar="CRISISWATCH_USER", help="You (user name).")]
_ScopeOpt = Annotated[str, typer.Option(help="global, brand:<id>, channel:<name> or account:<id>.")]
_OnResumeOpt = Annotated[
    str | None, typer.Option(help="hold | skip | review: what happens to posts due during the pause.")
]


def _on_resume(value: str | None) -> str | None:
    if value is not None and value not in ("hold", "skip", "review"):
        raise typer.BadParameter("use hold, skip or review", param_hint="--on-resume")
    return value


@app.command()
def pause(
    scope: _ScopeOpt = "global",
    reason: Annotated[str | None, typer.Option(help="Why (required; kept in the audit log).")] = None,
    resume_at: Annotated[str | None, typer.Option(help="ISO time with zone: resume by itself then.")] = None,
    on_resume: _OnResumeOpt = None,
    actor: _ActorOpt = None,
) -> None:
    """Pause all publishing in a scope now (signed; needs a private key in CRISISWATCH_CONTROL_KEYS)."""
    from crisiswatch.control import commands

    _preflight()
    commands.change(
        "pause", scope=scope, reason=reason, actor=actor, resume_at=resume_at, on_resume=_on_resume(on_resume)
    )  # type: ignore[arg-type]


@app.command()
def resume(
    scope: _ScopeOpt = "global",
    reason: Annotated[str | None, typer.Option(help="Why (required; kept in the audit log).")] = None,
    on_resume: _OnResumeOpt = None,
    actor: _ActorOpt = None,
) -> None:
    """Resume publishing in a scope (a person decides; signed)."""
    from crisiswatch.control import commands

    _preflight()
    commands.change("resume", scope=scope, reason=reason, actor=actor, on_resume=_on_resume(on_resume))  # type: ignore[arg-type]


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False) -> None:
    """Show the verified pause/resume state of every scope; exits 1 saying why when it cannot verify it."""
    from crisiswatch.control import commands

    _preflight()
    commands.status(as_json)


@app.command()
def audit(
    since: Annotated[str | None, typer.Option(help="2h, 30m, 7d or an ISO time with zone (default: all).")] = None,
    scope: Annotated[str | None, typer.Option(help="Only this scope (global, brand:<id> ...).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Show the audit log (who paused/resumed what, why, when), each record's signature verified."""
    from crisiswatch.control import commands

    _preflight()
    commands.audit(since=since, scope=scope, as_json=as_json)


users_app = typer.Typer(help="People who sign in to the page and the API.", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("hash")
def users_hash(user: Annotated[str | None, typer.Argument(help="User name (prints user:<hash>).")] = None) -> None:
    """Hash a password (read from a hidden prompt or stdin, never the command line) for CRISISWATCH_WEB_USERS."""
    from crisiswatch.web.users import hash_command

    hash_command(user)


keys_app = typer.Typer(help="Ed25519 keys: writers sign control records, gates verify them.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("generate")
def keys_generate(
    kid: Annotated[str, typer.Option(help="Key id, e.g. k2026a (rotate by adding a new id).")] = "k1",
) -> None:
    """Print a new key pair: CRISISWATCH_CONTROL_KEYS (writers, secret) and CRISISWATCH_CONTROL_PUBLIC_KEYS."""
    from crisiswatch.control import commands

    commands.keys_generate(kid)


@keys_app.command("public")
def keys_public() -> None:
    """Print the public keys that verify the private keys of CRISISWATCH_CONTROL_KEYS."""
    from crisiswatch.control import commands

    commands.keys_public()


@schedule_app.command("add")
def schedule_add(
    schedule_id: Annotated[str, typer.Argument(help="Short id, e.g. mourning-2026 or weekend-quiet.")],
    reason: Annotated[str, typer.Option(help="Why.")],
    scope: _ScopeOpt = "global",
    start: Annotated[str | None, typer.Option(help="Absolute window start (ISO with zone).")] = None,
    end: Annotated[str | None, typer.Option(help="Absolute window end (ISO with zone).")] = None,
    cron: Annotated[str | None, typer.Option(help="Recurring: start times, e.g. '0 22 * * SAT'.")] = None,
    duration: Annotated[
        str | None,
        typer.Option(
            callback=_duration, help="Recurring: length of each window with its unit: 90m, 10h, 1d or ISO PT10H."
        ),
    ] = None,
    timezone: Annotated[str, typer.Option(help="IANA zone the cron is read in.")] = "UTC",
    on_resume: Annotated[str, typer.Option(help="hold | skip | review.")] = "hold",
    replace: Annotated[bool, typer.Option(help="Replace a schedule with the same id.")] = False,
    actor: _ActorOpt = None,
) -> None:
    """Add a planned pause window."""
    from crisiswatch.control import commands

    _preflight()
    commands.schedule_add(
        schedule_id=schedule_id, scope=scope, reason=reason, actor=actor, start=start, end=end, cron=cron,
        duration=duration, timezone=timezone, on_resume=_on_resume(on_resume), replace=replace,  # type: ignore[arg-type]
    )  # fmt: skip


@schedule_app.command("list")
def schedule_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List the planned pause windows."""
    from crisiswatch.control import commands

    _preflight()
    commands.schedule_list(as_json)


@schedule_app.command("remove")
def schedule_remove(
    schedule_id: Annotated[str, typer.Argument(help="Id of the schedule.")],
    reason: Annotated[str, typer.Option(help="Why.")] = "removed",
    actor: _ActorOpt = None,
) -> None:
    """Remove a planned pause window (an open window of it ends)."""
    from crisiswatch.control import commands

    _preflight()
    commands.schedule_remove(schedule_id, actor=actor, reason=reason)


@schedule_app.command("run")
def schedule_run(
    metrics_port: Annotated[int, typer.Option(help="Serve Prometheus metrics on this port (0: off).")] = 0,
    verbose: bool = True,
) -> None:
    """Fire scheduled pauses/resumes and re-sign the current state periodically (keep one running)."""
    from crisiswatch.control import commands

    _logging(verbose)
    _preflight()
    commands.schedule_run(metrics_port)


@app.command()
def relay(
    metrics_port: Annotated[int, typer.Option(help="Serve Prometheus metrics on this port (0: off).")] = 0,
    verbose: bool = True,
) -> None:
    """Push every pause/resume to the webhooks of CRISISWATCH_RELAY_URLS (retries, idempotency keys)."""
    from crisiswatch.control import commands

    _logging(verbose)
    _preflight()  # the relay waits for publishing.control to appear
    commands.relay(metrics_port)


@bench_app.command("pipeline")
def bench_pipeline(
    mentions: Annotated[int, typer.Option(help="Mentions in the throughput phase.")] = 200_000,
    rate: Annotated[float, typer.Option(help="Produce rate of the latency phase (mentions/s).")] = 10_000,
    seconds: Annotated[float, typer.Option(help="Length of the latency phase.")] = 20,
    workers: Annotated[int, typer.Option(help="Worker processes (one consumer group; 2 = one per core here).")] = 2,
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports"),
) -> None:
    """End-to-end throughput, processing latency and peak memory on a real broker."""
    from crisiswatch.bench.pipeline import run_pipeline_bench

    _logging(False)
    _preflight()
    run_pipeline_bench(mentions, rate, seconds, workers, out)


@bench_app.command("control")
def bench_control(
    gates: Annotated[int, typer.Option(help="Gates following the control topic.")] = 50,
    rounds: Annotated[int, typer.Option(help="Pause/resume changes to time.")] = 200,
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports"),
) -> None:
    """Alert -> signed control message acked, and control message -> every gate (p99 <= 1 s)."""
    from crisiswatch.bench.control import run_control_bench

    _logging(False)
    _preflight()
    run_control_bench(Settings(), gates=gates, rounds=rounds, out=out)


# --- spike detectors (detectors/spikes.py, crisiswatch/series.py) -----------------------------------
@app.command("detect-series")
def detect_series(
    file: Annotated[Path, typer.Argument(help="CSV with columns timestamp,value (UTC timestamps).")],
    bucket: Annotated[
        str | None,
        typer.Option(callback=_duration, help="Bucket size with its unit: 60s, 5m, 1h (default: the rows' spacing)."),
    ] = None,
) -> None:
    """Run the online volume-spike detector over a series; print timestamp,value,score,alert."""
    import sys

    from crisiswatch import series

    bucket_seconds = _seconds(bucket) if bucket else None
    try:
        rows = series.read_series(file)
    except (ValueError, OSError, UnicodeDecodeError) as error:
        typer.echo(f"error: {file}: {error}", err=True)
        raise typer.Exit(2) from None
    series.write_alerts(sys.stdout, series.detect(rows, bucket_seconds or series.infer_bucket(rows)))


@bench_app.command("spikes")
def bench_spikes(
    data: Annotated[Path, typer.Option(help="Folder with the NAB tweet series.")] = Path("../shared/data/nab-tweets"),
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports"),
) -> None:
    """NAB score of the online volume alerts on the tweet series, plus sparse and negativity checks."""
    from crisiswatch.bench.spikes import write_report

    if not (data / "windows.json").is_file():
        typer.echo(f"error: {data} has no windows.json (the NAB tweet series from ../shared/data)", err=True)
        raise typer.Exit(2)
    typer.echo(write_report(data, out))


# --- alert delivery and the web page (crisiswatch/alerting, crisiswatch/web) ------------------------
@app.command()
def alerts(
    metrics_port: Annotated[int, typer.Option(help="Serve Prometheus metrics on this port (0: off).")] = 0,
    recent: Annotated[int, typer.Option(help="Only print the N most recent episodes and exit.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="With --recent: JSON instead of a table.")] = False,
    verbose: bool = True,
) -> None:
    """Deliver alerts to Alertmanager, Slack, webhooks and e-mail (keep exactly one running)."""
    from crisiswatch.alerting import commands
    from crisiswatch.contracts.topics import ALERTS, ALERTS_ACK

    if recent:
        _preflight(ALERTS.name, ALERTS_ACK.name)
        commands.list_alerts(recent, as_json)
        return
    _logging(verbose)
    _preflight()
    commands.run_dispatcher(metrics_port)


@app.command()
def ack(
    alert_id: Annotated[str, typer.Argument(help="The alert (episode) id.")],
    note: Annotated[str, typer.Option(help="What you are doing about it.")] = "",
    actor: Annotated[str | None, typer.Option("--actor", envvar="CRISISWATCH_USER", help="You.")] = None,
) -> None:
    """Acknowledge an alert: record who is on it (shown on the page and sent to every channel)."""
    from crisiswatch.alerting import commands
    from crisiswatch.contracts.topics import ALERTS, ALERTS_ACK

    _preflight(ALERTS.name, ALERTS_ACK.name)
    commands.acknowledge(alert_id, actor, note)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (default CRISISWATCH_WEB_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default CRISISWATCH_PAGE_PORT).")] = None,
    verbose: bool = True,
) -> None:
    """Serve the HTTP API and the one-button page (needs users or a token, and control keys)."""
    from crisiswatch.web import commands

    _logging(verbose)
    settings = Settings()
    _preflight(settings=settings)
    if "brands_file" not in settings.worker.model_fields_set:  # the default is the demo's brands file, not yours
        typer.echo(
            "no brands file: the page lists no brand scopes (a paused brand still shows); set "
            "CRISISWATCH_BRANDS_FILE to your brands file to list them",
            err=True,
        )
    commands.serve(host=host, port=port)


# --- live connectors (connectors/) -------------------------------------------------------------------
connect_app = typer.Typer(
    help="Live connectors: fetch or receive mentions, hand them to mentions.raw.", invoke_without_command=True
)
app.add_typer(connect_app, name="connect")


@connect_app.callback()
def connect_sources(
    ctx: typer.Context,
    sources: Annotated[Path | None, typer.Option(help="Sources file (YAML): run every entry, see README.")] = None,
    only: Annotated[str | None, typer.Option(help="With --sources: run only the entry with this name.")] = None,
    metrics_port: Annotated[int, typer.Option(help="With --sources: Prometheus metrics port (0: off).")] = 0,
    verbose: bool = True,
) -> None:
    """Run many connectors from a sources file (--sources), or one with a subcommand."""
    if ctx.invoked_subcommand is not None:
        if sources is not None or only is not None:
            raise typer.BadParameter("--sources/--only go without a subcommand")
        return
    if sources is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0 if only is None else 2)
    from crisiswatch.connectors import commands

    _logging(verbose)
    _preflight()
    commands.sources(sources, only, metrics_port)


_MappingArg = Annotated[Path, typer.Option("--mapping", help="Mapping file (YAML/JSON), see README.")]
_SourceOpt = Annotated[str | None, typer.Option(help="Mention source name (overrides the mapping file's).")]
_HeaderOpt = Annotated[list[str] | None, typer.Option("--header", help="'Name: value' (${VAR} from env).")]
_ConnMetricsOpt = Annotated[int, typer.Option(help="Serve Prometheus metrics on this port (0: off).")]


@connect_app.command("rss")
def connect_rss(
    urls: Annotated[list[str], typer.Argument(help="Feed URLs (RSS or Atom); one connector each.")],
    interval: Annotated[str, typer.Option(callback=_duration, help="Time between polls of a feed: 60s, 5m.")] = "60s",
    source: Annotated[str, typer.Option(help="Mention source: news, blog, …")] = "news",
    metrics_port: _ConnMetricsOpt = 0,
    verbose: bool = True,
) -> None:
    """Poll RSS/Atom feeds (conditional GET) and publish new entries."""
    from crisiswatch.connectors import commands

    _logging(verbose)
    _preflight()
    commands.rss(urls, _seconds(interval), source, metrics_port)


@connect_app.command("webhook")
def connect_webhook(
    port: Annotated[int | None, typer.Option(help="Port (default CRISISWATCH_CONNECTOR_WEBHOOK_PORT).")] = None,
    host: Annotated[str | None, typer.Option(help="Listen address (default ..._WEBHOOK_HOST).")] = None,
    mapping: Annotated[list[str] | None, typer.Option(help="SOURCE=FILE: a mapping for one source.")] = None,
    verbose: bool = True,
) -> None:
    """Receive pushed mentions on POST /webhooks/{source} (HMAC signature or bearer token)."""
    from crisiswatch.connectors import commands

    _logging(verbose)
    _preflight()
    commands.webhook(host, port, mapping or [])


@connect_app.command("sse")
def connect_sse(
    url: Annotated[str, typer.Argument(help="Event-stream URL.")],
    mapping: _MappingArg,
    source: _SourceOpt = None,
    header: _HeaderOpt = None,
    event: Annotated[list[str] | None, typer.Option(help="Only these event types (default: all).")] = None,
    metrics_port: _ConnMetricsOpt = 0,
    verbose: bool = True,
) -> None:
    """Follow a Server-Sent Events stream (reconnects with Last-Event-ID)."""
    from crisiswatch.connectors import commands

    _logging(verbose)
    _preflight()
    commands.sse(url, mapping, source, header or [], event or [], metrics_port)


@connect_app.command("websocket")
def connect_websocket(
    url: Annotated[str, typer.Argument(help="ws:// or wss:// URL.")],
    mapping: _MappingArg,
    subscribe: Annotated[list[str] | None, typer.Option(help="JSON message sent on connect (repeatable).")] = None,
    source: _SourceOpt = None,
    header: _HeaderOpt = None,
    heartbeat: Annotated[str, typer.Option(callback=_duration, help="Ping interval: 30s, 1m.")] = "30s",
    metrics_port: _ConnMetricsOpt = 0,
    verbose: bool = True,
) -> None:
    """Follow a WebSocket stream (subscribe on connect, ping/pong, reconnect with backoff)."""
    from crisiswatch.connectors import commands

    _logging(verbose)
    _preflight()
    commands.websocket(url, mapping, source, subscribe or [], header or [], _seconds(heartbeat), metrics_port)


@connect_app.command("poll")
def connect_poll(
    url: Annotated[str, typer.Argument(help="JSON API URL.")],
    mapping: _MappingArg,
    interval: Annotated[str, typer.Option(callback=_duration, help="Time between poll cycles: 60s, 5m.")] = "60s",
    param: Annotated[list[str] | None, typer.Option(help="Query parameter key=value (repeatable).")] = None,
    source: _SourceOpt = None,
    header: _HeaderOpt = None,
    metrics_port: _ConnMetricsOpt = 0,
    verbose: bool = True,
) -> None:
    """Poll a JSON HTTP API (cursor/since pagination, honours Retry-After)."""
    from crisiswatch.connectors import commands

    _logging(verbose)
    _preflight()
    commands.poll(url, mapping, source, _seconds(interval), param or [], header or [], metrics_port)


# --- sentiment model (detectors/sentiment.py, crisiswatch/offline/training.py) ------------------------------
@app.command("train-sentiment")
def train_sentiment(
    data: Annotated[
        Path, typer.Option(help="Labelled .csv/.jsonl (text,label[,lang]) or a UMSAB folder (<lang>/train_*.txt).")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the model (.npz).")] = Path("sentiment-model.npz"),
    val: Annotated[Path | None, typer.Option(help="Validation file (default: hold out part of --data).")] = None,
    val_fraction: Annotated[float, typer.Option(help="Part held out when there is no --val.")] = 0.15,
    c: Annotated[float, typer.Option("--c", help="Inverse L2 regularisation of the logistic regression.")] = 10.0,
    nb_weight: Annotated[float, typer.Option(help="Weight of the naive-Bayes logits added (0: none).")] = 0.3,
    static_weight: Annotated[
        float, typer.Option(help="Weight (0-1) of the e5-distilled word lexicon in the logits (0: n-grams only).")
    ] = 0.7,
    lexicon: Annotated[
        str, typer.Option(help="Lexicon file: a name in detectors/models (the shipped one) or a path.")
    ] = "sentiment-e5-lexicon.npz",
    word_bits: Annotated[int, typer.Option(min=10, max=24, help="log2 of the hashed word-n-gram columns.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the hold-out split.")] = 0,
    report: Annotated[Path | None, typer.Option(help="Also write the validation report as JSON here.")] = None,
) -> None:
    """Train a sentiment model, print a per-language validation report and save the model."""
    import json

    from crisiswatch.detectors.sentiment_features import HashedFeatures
    from crisiswatch.offline.training import DataError, format_report, train_sentiment

    options = {"C": c, "nb_weight": nb_weight, "static_weight": static_weight, "lexicon": lexicon}
    try:
        path, result = train_sentiment(
            data, out, val=val, val_fraction=val_fraction, seed=seed,
            model_options={**options, "features": HashedFeatures(word_bits=word_bits)},
        )  # fmt: skip
    except (DataError, ValueError, OSError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(format_report(result))
    settings = {"word_bits": word_bits, **options}
    if not static_weight:
        del settings["lexicon"]
    typer.echo("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result, indent=2) + "\n")
    typer.echo(f"model written to {path} ({path.stat().st_size / 1e6:.1f} MB)")


@bench_app.command("sentiment")
def bench_sentiment(
    data: Annotated[Path, typer.Option(help="UMSAB folder (validation split).")] = Path(
        "../shared/data/sentiment-umsab"
    ),
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports"),
) -> None:
    """Macro-F1 per language of the shipped sentiment model, throughput on one core, artifact size."""
    from crisiswatch.bench.sentiment import write_report

    typer.echo(write_report(data, out))


# --- language identification (detectors/language.py) -------------------------------------------------------
@bench_app.command("language")
def bench_language(
    data: Annotated[Path, typer.Option(help="Shared data folder (or its sentiment-umsab/).")] = Path("../shared/data"),
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports"),
) -> None:
    """Language identification per backend: accuracy on UMSAB tweets and two-word phrases, throughput."""
    from crisiswatch.bench.language import write_report

    typer.echo(write_report(data, out))


# --- risk and all detectors together (crisiswatch/bench/risk.py, crisiswatch/bench/detectors.py) ---------------
@bench_app.command("risk")
def bench_risk(
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports"),
) -> None:
    """Crisis scenarios through windows, detectors and risk; near-duplicates, lexicon, throughput (no data)."""
    from crisiswatch.bench.risk import write_report

    typer.echo(write_report(out))


@bench_app.command("backtest")
def bench_backtest(
    corpus: Annotated[Path, typer.Option(help="Corpus folder (`crisiswatch corpus generate` output).")] = Path(
        "corpora/check"
    ),
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports"),
) -> None:
    """Backtest speed (enrichment, decisions, a busy brand's month) and scores on a scenario corpus."""
    from crisiswatch.bench.backtest import write_report

    try:
        typer.echo(write_report(corpus, out))
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@bench_app.command("ingest")
def bench_ingest(
    mentions: Annotated[int, typer.Option(help="Mentions in the replay file.")] = 300_000,
    webhook_mentions: Annotated[int, typer.Option(help="Mentions posted to the webhook.")] = 100_000,
    clients: Annotated[int, typer.Option(help="Concurrent HTTP clients posting to the webhook.")] = 64,
    batch: Annotated[int, typer.Option(help="Mentions per webhook request.")] = 20,
    runs: Annotated[int, typer.Option(help="Runs of each part (the best is reported).")] = 1,
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports"),
) -> None:
    """Mentions/s into mentions.raw from replay and through the webhook (concurrent clients), with peak memory."""
    from crisiswatch.bench.ingest import write_report

    typer.echo(
        write_report(out, mentions=mentions, webhook_mentions=webhook_mentions, clients=clients, batch=batch, runs=runs)
    )


@bench_app.command("detectors")
def bench_detectors(
    data: Annotated[Path, typer.Option(help="Shared data folder (sentiment-umsab/, nab-tweets/).")] = Path(
        "../shared/data"
    ),
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports"),
    part: Annotated[
        list[str] | None, typer.Option(help="Only this part (repeatable): language, sentiment, spikes, risk.")
    ] = None,
) -> None:
    """Language, sentiment, spikes and risk benchmarks, each in its own process, checked against the targets."""
    from crisiswatch.bench.detectors import PARTS, summary_text, write_report

    unknown = [p for p in part or [] if p not in PARTS]
    if unknown:
        raise typer.BadParameter(f"{', '.join(unknown)}: choose from {', '.join(PARTS)}", param_hint="--part")
    report = write_report(data, out, part or tuple(PARTS), progress=lambda line: typer.echo(line, err=True))
    typer.echo(summary_text(report))
    typer.echo(f"written: {out / 'bench-detectors.md'}, {out / 'bench-detectors.json'}")


# --- scenario corpora (crisiswatch/scenarios) -------------------------------------------------------
corpus_app = typer.Typer(help="Scenario corpora: weeks of traffic with labelled crises.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")


@corpus_app.command("generate")
def corpus_generate(
    split: Annotated[str, typer.Option(help="tune (NAB AAPL/IBM, UMSAB train) or check (AMZN/FB/GOOG, val).")],
    out: Annotated[Path | None, typer.Option(help="Output folder. Default: corpora/<split>.")] = None,
    days: Annotated[int, typer.Option(help="Days of traffic.")] = 14,
    brands: Annotated[int, typer.Option(help="Number of brands.")] = 8,
    seed: Annotated[int | None, typer.Option(help="Seed (default: the split's, in scenarios/seeds.py).")] = None,
    start: Annotated[str, typer.Option(help="UTC start, e.g. 2026-09-01.")] = "2026-09-01",
    data: Annotated[Path, typer.Option(help="Shared data folder (nab-tweets/, sentiment-umsab/).")] = Path(
        "../shared/data"
    ),
) -> None:
    """Generate a scenario corpus: mentions.jsonl.gz, brands.yaml, labels.json, manifest.json."""
    import time

    from crisiswatch.scenarios.generate import generate_corpus
    from crisiswatch.scenarios.seeds import SPLITS

    if split not in SPLITS:
        raise typer.BadParameter(f"use {' or '.join(SPLITS)}", param_hint="--split")
    folder = out or Path("corpora") / split
    began = time.perf_counter()
    try:
        manifest = generate_corpus(folder, split, days, brands, seed, start, data, progress=True)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    elapsed = time.perf_counter() - began
    typer.echo(
        f"{folder}: {manifest['mentions']:,} mentions, {len(manifest['brands'])} brands, {manifest['days']} days, "
        f"{manifest['mentions_bytes_gz'] / 1e6:.0f} MB gzipped, in {elapsed:.0f} s (seed {manifest['seed']})"
    )
    typer.echo("events: " + ", ".join(f"{k} {v}" for k, v in manifest["event_counts"].items()))
    if manifest["skipped"]:
        typer.echo(f"did not fit: {', '.join(manifest['skipped'])}")


def main() -> None:
    """Console-script entry point: an error an operator can fix (Kafka unreachable, topics missing) is one line."""
    import sys

    from crisiswatch.preflight import operator_error, quiet_shutdown

    try:
        app()
    except Exception as exc:
        error = operator_error(exc)
        if error is None:
            raise
        quiet_shutdown()
        print(f"error: {error.message}", file=sys.stderr)
        sys.exit(error.exit_code)


def settings_from_env() -> Settings:
    return Settings()


if __name__ == "__main__":
    main()

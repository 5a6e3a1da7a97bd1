"""What the control-plane commands of the `crisiswatch` CLI do (``crisiswatch/cli.py`` stays thin).

Manual changes are authenticated twice: the CLI acts as the person named by ``--actor`` or
``CRISISWATCH_USER`` (never ``detector`` or ``scheduler``), and it can only sign with a private key
from ``CRISISWATCH_CONTROL_KEYS``; without one it refuses. Reading commands (``status``, ``schedule
list``, ``relay``) verify with public keys only (``CRISISWATCH_CONTROL_PUBLIC_KEYS``).

``status`` exits 1 and says why when it cannot vouch for the state, exactly when a gate would refuse
every post: records it cannot verify, a scope whose newest record fails verification, or no fresh
signed state heartbeat.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import typer
from pydantic import ValidationError
from rich.table import Table

from crisiswatch import durations
from crisiswatch.contracts.control import ACTOR_PATTERN, ControlMessage, OnResume, Schedule, is_person, is_scope
from crisiswatch.control.audit import AuditEntry
from crisiswatch.control.follower import ControlFeed
from crisiswatch.control.gate import heartbeat_problem
from crisiswatch.control.held import describe_held, read_held
from crisiswatch.control.keys import generate_key_pair
from crisiswatch.control.messages import Keyring, SigningUnavailable
from crisiswatch.control.plane import ChangeResult, ControlPlane, ResumeRefused
from crisiswatch.durations import format_duration
from crisiswatch.settings import Settings
from crisiswatch.tables import ID, TEXT, new_table, print_table


def fail(message: str) -> typer.Exit:
    """Print ``message`` to stderr and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def checked_settings(*, signing: bool) -> tuple[Settings, Keyring]:
    """Settings with a cluster and the keys the command needs, or a clear error.

    Signing commands get the whole keyring (private keys sign, their public halves verify); reading
    commands get its public half only.
    """
    settings = Settings()
    if not settings.kafka.bootstrap_servers:
        raise fail("no Kafka cluster: set KAFKA_BOOTSTRAP_SERVERS (the control topic must be durable)")
    try:
        keyring = Keyring.from_settings(settings.control)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    if signing and not keyring.can_sign:
        raise fail(
            "cannot sign control messages: set CRISISWATCH_CONTROL_KEYS='kid:ed25519:<private key>' in the "
            "environment (`crisiswatch keys generate` makes a key pair)"
        )
    if not signing:
        keyring = keyring.verifying_only(hmac_allowed=settings.control.control_hmac_migration)
        if not keyring:
            raise fail(
                "cannot verify control messages: set CRISISWATCH_CONTROL_PUBLIC_KEYS='kid:ed25519:<public key>' "
                "(or CRISISWATCH_CONTROL_KEYS on a writer)"
            )
    return settings, keyring


def person(actor: str | None) -> str:
    """The authenticated person acting, or a clear error."""
    if not actor:
        raise fail("who is acting? set CRISISWATCH_USER or pass --actor <your user name>")
    if not is_person(actor):
        raise fail(f"{actor!r} is a system actor; a person acts under their own user name")
    if not re.fullmatch(ACTOR_PATTERN, actor):
        raise fail(f"invalid user name {actor!r}")
    return actor


def scope_arg(scope: str) -> str:
    if not is_scope(scope):
        raise fail(f"invalid scope {scope!r}: use global, brand:<id>, channel:<name> or account:<id>")
    return scope


def parse_time(text: str | None) -> datetime | None:
    """An ISO-8601 time with a zone (``2026-11-24T09:00:00Z``, ``...+01:00``)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise fail(f"not an ISO-8601 time: {text!r}") from exc
    if value.tzinfo is None:
        raise fail(f"give a time zone in {text!r}, e.g. {text}Z")
    return value


def parse_duration(text: str) -> float:
    """Seconds from a duration with its unit (``90s``, ``15m``, ``10h``, ``1d``, ``1h30m``, ``PT10M``), or an error.

    A bare number is refused: `crisiswatch.durations` is the one parser of every duration on the CLI.
    """
    try:
        return durations.parse_duration(text)
    except durations.DurationError as exc:
        raise fail(f"--duration: {exc}") from exc


def run_async(main: Callable[[], Awaitable[object]]) -> object:
    return asyncio.run(main())  # type: ignore[arg-type]


# --- pause / resume / status ---------------------------------------------------------------------
def change(
    action: str,
    *,
    scope: str,
    reason: str | None,
    actor: str | None,
    resume_at: str | None = None,
    on_resume: OnResume | None = None,
) -> ChangeResult:
    """Pause or resume ``scope`` as a person; prints what happened. ``reason`` is required unless
    ``CRISISWATCH_CONTROL_REQUIRE_REASON=false``."""
    who = person(actor)
    scope = scope_arg(scope)
    when = parse_time(resume_at)
    settings, keyring = checked_settings(signing=True)
    reason = required_reason(settings, reason, action)

    async def main() -> ChangeResult:
        plane = ControlPlane.from_settings(settings, keyring=keyring, heartbeat="off", writer="cli")
        await plane.start()
        try:
            if action == "pause":
                result = await plane.pause(scope, reason=reason, actor=who, resume_at=when, on_resume=on_resume)
            else:
                current = plane.status().get(scope)
                choice = on_resume or (current.on_resume if current is not None else None)
                typer.echo(describe_held(await read_held(settings), scope) + f"; on resume: {choice or 'n/a'}")
                result = await plane.resume(scope, reason=reason, actor=who, on_resume=on_resume)
            await plane.heartbeat()  # this command read the whole state: it may vouch for it
            return result
        finally:
            await plane.stop()

    try:
        result: ChangeResult = run_async(main)  # type: ignore[assignment]
    except (ResumeRefused, SigningUnavailable, ValueError) as exc:
        raise fail(str(exc)) from exc
    typer.echo(("done: " if result.changed else "no change: ") + result.note)
    return result


def required_reason(settings: Settings, reason: str | None, action: str) -> str:
    """The reason to record, or a clear error when one is required and missing (the default)."""
    reason = (reason or "").strip()
    if reason:
        return reason
    if settings.control.control_require_reason:
        raise fail(
            f"a reason is required: crisiswatch {action} --reason '...' (kept in the audit log; "
            "CRISISWATCH_CONTROL_REQUIRE_REASON=false makes it optional)"
        )
    return f"manual {action} from the command line"


@dataclass(frozen=True)
class ControlReading:
    """What a reader made of the control topic: the verified states, and why it cannot vouch for them."""

    states: dict[str, ControlMessage]
    unknown: dict[str, str]
    """Scopes whose newest record failed verification (or that a heartbeat names at a seq not read)."""
    heartbeat_problem: str | None
    rejected: dict[str, int]

    @property
    def problems(self) -> list[str]:
        """Why a gate reading the same would refuse every post (or the posts of some scopes)."""
        problems = [f"{scope} is unknown: {why}" for scope, why in self.unknown.items()]
        if self.heartbeat_problem:
            problems.append(self.heartbeat_problem)
        return problems


async def read_control(settings: Settings, keyring: Keyring, timeout: float = 15.0) -> ControlReading:
    """Read the whole control topic once, verifying every record."""
    feed = ControlFeed(settings.kafka, settings.control, keyring, component="status")
    await feed.start()
    try:
        if not await feed.follower.wait_caught_up(timeout):
            raise fail("could not read the control topic in time")
        return ControlReading(
            states=feed.view.states(),
            unknown=feed.view.unknown(),
            heartbeat_problem=heartbeat_problem(feed, settings.control.control_heartbeat_max_age_seconds),
            rejected=dict(feed.rejected),
        )
    finally:
        await feed.stop()


async def read_states(settings: Settings, keyring: Keyring, timeout: float = 15.0) -> dict[str, ControlMessage]:
    """The verified current state of every scope."""
    return (await read_control(settings, keyring, timeout)).states


def status_table(states: dict[str, ControlMessage]) -> Table:
    """Every scope's state; scopes, alert ids and times are never cut (`crisiswatch.tables`)."""
    table = new_table(
        ("scope", ID), ("state", ID), ("since", ID), ("by", ID), ("alert", ID), ("on resume", ID),
        ("resume at", ID), ("seq", ID), ("reason", TEXT), title="publishing control",
    )  # fmt: skip
    for scope, message in states.items():
        table.add_row(
            scope,
            "[red]PAUSED[/red]" if message.paused else "[green]active[/green]",
            message.issued_at.strftime("%Y-%m-%d %H:%M:%SZ"),
            message.actor,
            message.alert_id or "",
            message.on_resume,
            message.resume_at.strftime("%Y-%m-%d %H:%M:%SZ") if message.resume_at else "",
            str(message.seq),
            message.reason,
        )
    return table


def status(as_json: bool) -> dict[str, ControlMessage]:
    """Print the verified state; exit 1 (saying why) when it cannot be verified."""
    settings, keyring = checked_settings(signing=False)

    async def main() -> ControlReading:
        await _ensure_topics(settings)
        return await read_control(settings, keyring)

    reading: ControlReading = run_async(main)  # type: ignore[assignment]
    states = reading.states
    if not as_json and any(m.paused for m in states.values()):
        typer.echo(describe_held(run_async(lambda: read_held(settings))))  # type: ignore[arg-type]
    if as_json:
        import json

        typer.echo(json.dumps({s: m.model_dump(mode="json") for s, m in states.items()}, indent=2))
    elif reading.problems:
        if states:
            print_table(status_table(states))
    elif not states:
        typer.echo("no scope has ever been paused: publishing is active everywhere")
    else:
        print_table(status_table(states))
    if reading.problems:
        lines = "\n".join(f"  - {problem}" for problem in reading.problems)
        raise fail(f"cannot verify the publishing control state; gates refuse posts until this is fixed:\n{lines}")
    return states


# --- keys ----------------------------------------------------------------------------------------
def keys_generate(kid: str) -> None:
    """Print a new Ed25519 key pair as the two environment variables that hold it."""
    try:
        pair = generate_key_pair(kid)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    typer.echo("# writers only (workers, `serve`, `schedule run`, the CLI's pause/resume). SECRET: keep it out of")
    typer.echo("# logs, tickets and images; put it in the secret store / 0600 env file.")
    typer.echo(f"CRISISWATCH_CONTROL_KEYS={pair.private}")
    typer.echo("# every reader (publishing services' gates, relay, status): public, not secret.")
    typer.echo("# Rotation: append it to the readers' list first, then give the writers the new private key.")
    typer.echo(f"CRISISWATCH_CONTROL_PUBLIC_KEYS={pair.public}")


def keys_public() -> None:
    """Print the public keys of the configured private keys (and configured public keys)."""
    settings = Settings()
    try:
        keyring = Keyring.from_settings(settings.control)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    public = keyring.public_keys()
    if not public:
        raise fail("no Ed25519 key configured: set CRISISWATCH_CONTROL_KEYS or CRISISWATCH_CONTROL_PUBLIC_KEYS")
    typer.echo(f"CRISISWATCH_CONTROL_PUBLIC_KEYS={','.join(public)}")


# --- schedules -----------------------------------------------------------------------------------
def schedule_add(
    *,
    schedule_id: str,
    scope: str,
    reason: str,
    actor: str | None,
    start: str | None,
    end: str | None,
    cron: str | None,
    duration: str | None,
    timezone: str,
    on_resume: OnResume,
    replace: bool,
) -> Schedule:
    from crisiswatch.control.schedules import ScheduleStore, new_schedule

    who = person(actor)
    scope = scope_arg(scope)
    try:
        schedule = new_schedule(
            schedule_id,
            reason=reason,
            created_by=who,
            scope=scope,
            start=parse_time(start),
            end=parse_time(end),
            cron=cron,
            duration_seconds=parse_duration(duration) if duration else None,
            timezone=timezone,
            on_resume=on_resume,
        )
    except ValidationError as exc:
        raise fail("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from exc
    settings, keyring = checked_settings(signing=True)

    async def main() -> Schedule:
        await _ensure_topics(settings)
        store = ScheduleStore(settings, keyring=keyring)
        await store.start()
        try:
            return await store.add(schedule, replace=replace)
        finally:
            await store.stop()

    try:
        stored: Schedule = run_async(main)  # type: ignore[assignment]
    except ValueError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"scheduled {stored.id}: {stored.scope} paused ({_when(stored)})")
    return stored


def schedule_list(as_json: bool) -> list[Schedule]:
    from crisiswatch.control.schedules import ScheduleStore

    settings, keyring = checked_settings(signing=False)

    async def main() -> list[Schedule]:
        await _ensure_topics(settings)
        store = ScheduleStore(settings, keyring=keyring)
        await store.start()
        try:
            return store.schedules()
        finally:
            await store.stop()

    schedules: list[Schedule] = run_async(main)  # type: ignore[assignment]
    if as_json:
        import json

        typer.echo(json.dumps([s.model_dump(mode="json", exclude={"sig"}) for s in schedules], indent=2))
        return schedules
    table = new_table(
        ("id", ID), ("scope", ID), ("by", ID), ("on resume", ID), ("when", TEXT), ("reason", TEXT),
        title="publishing schedules",
    )  # fmt: skip
    for s in schedules:
        table.add_row(s.id, s.scope, s.created_by, s.on_resume, _when(s), s.reason)
    print_table(table)
    return schedules


def schedule_remove(schedule_id: str, *, actor: str | None, reason: str) -> None:
    from crisiswatch.control.schedules import ScheduleStore

    who = person(actor)
    settings, keyring = checked_settings(signing=True)

    async def main() -> Schedule | None:
        await _ensure_topics(settings)
        store = ScheduleStore(settings, keyring=keyring)
        await store.start()
        try:
            return await store.remove(schedule_id, actor=who, reason=reason)
        finally:
            await store.stop()

    if run_async(main) is None:
        raise fail(f"no schedule {schedule_id!r}")
    typer.echo(f"removed schedule {schedule_id}")


def schedule_run(metrics_port: int) -> None:
    """Run the scheduler and the state heartbeat until SIGINT/SIGTERM."""
    from crisiswatch.control.schedules import Scheduler, ScheduleStore

    settings, keyring = checked_settings(signing=True)
    _serve_metrics(metrics_port, settings)

    async def main() -> None:
        plane = ControlPlane.from_settings(settings, keyring=keyring, heartbeat="primary", writer="scheduler")
        await plane.start()
        store = ScheduleStore(settings, keyring=keyring)
        await store.start()
        typer.echo(f"scheduler running: {len(store.schedules())} schedule(s); Ctrl-C stops")
        try:
            await Scheduler(plane, store).run(_stop_on_signals())
        finally:
            await store.stop()
            await plane.stop()

    run_async(main)


def relay(metrics_port: int) -> None:
    """Run the webhook relay until SIGINT/SIGTERM."""
    from crisiswatch.control.relay import Relay

    settings, keyring = checked_settings(signing=False)
    try:
        relay_ = Relay(settings, keyring=keyring)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    _serve_metrics(metrics_port, settings)
    typer.echo(f"relaying control changes to {len(relay_.urls)} URL(s); Ctrl-C stops")
    run_async(lambda: relay_.run(_stop_on_signals()))


# --- audit log -----------------------------------------------------------------------------------
def audit(*, since: str | None, scope: str | None, as_json: bool, limit: int = 1000) -> list[AuditEntry]:
    """Print the audit log (oldest first), each record verified; say which cannot be."""
    from crisiswatch.control.audit import parse_since, read_audit

    try:
        start = parse_since(since) if since else None
    except ValueError as exc:
        raise fail(str(exc)) from exc
    if scope is not None:
        scope = scope_arg(scope)
    settings, keyring = checked_settings(signing=False)

    async def main() -> list[AuditEntry]:
        await _ensure_topics(settings)
        return await read_audit(settings, keyring, since=start, scope=scope, limit=limit)

    try:
        entries: list[AuditEntry] = run_async(main)  # type: ignore[assignment]
    except TimeoutError as exc:
        raise fail(str(exc)) from exc
    unverified = [e for e in entries if not e.verified]
    if as_json:
        import json

        typer.echo(json.dumps([e.to_json() for e in entries], indent=2))
    elif not entries:
        typer.echo("no audit records" + (f" since {start:%Y-%m-%d %H:%M:%SZ}" if start else ""))
    else:
        print_table(audit_table(entries))
    if unverified:
        offsets = ", ".join(str(e.offset) for e in unverified[:20])
        typer.echo(
            f"warning: {len(unverified)} record(s) cannot be verified (offsets {offsets}): do not trust them; "
            "records written before audit signing are unsigned",
            err=True,
        )
    return entries


def audit_table(entries: list[AuditEntry]) -> Table:
    """The audit log as a table (ids never cut; an unverifiable record says why in its last column)."""
    table = new_table(
        ("when", ID), ("action", ID), ("scope", ID), ("by", ID), ("reason", TEXT), ("detail", TEXT),
        ("verified", TEXT), title="publishing audit log",
    )  # fmt: skip
    for entry in entries:
        r = entry.record
        if r is None:
            when = f"{entry.timestamp:%Y-%m-%d %H:%M:%SZ}"
            table.add_row(when, "?", "?", "?", "", "", f"[red]NO: {entry.problem}[/red]")
            continue
        detail = []
        if r.requested_by and r.requested_by != r.actor:
            detail.append(f"asked by {r.requested_by}")
        if r.request_id:
            detail.append(f"request {r.request_id}")
        if r.schedule_id:
            detail.append(f"schedule {r.schedule_id}")
        if r.silence_id:
            detail.append(
                f"silence {r.silence_id} until {r.resume_at:%Y-%m-%d %H:%M}Z"
                if r.resume_at
                else f"silence {r.silence_id}"
            )
        if r.previous_state:
            detail.append(f"was {r.previous_state} ({r.previous_actor})")
        if r.seq is not None:
            detail.append(f"seq {r.seq}")
        table.add_row(
            f"{r.at:%Y-%m-%d %H:%M:%SZ}",
            r.action,
            r.scope,
            r.actor,
            r.reason,
            "; ".join(detail),
            "[green]yes[/green]" if entry.verified else f"[red]NO: {entry.problem}[/red]",
        )
    return table


# --- helpers -------------------------------------------------------------------------------------
async def _ensure_topics(settings: Settings) -> None:
    from crisiswatch.kafka import ensure_topics

    await ensure_topics(settings.kafka.bootstrap_servers or "", settings)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _serve_metrics(port: int, settings: Settings) -> None:
    """Serve /metrics on ``port`` (0: not at all), on ``CRISISWATCH_WEB_HOST`` like every other process."""
    if port:
        from prometheus_client import start_http_server

        start_http_server(port, addr=settings.web.web_host)


def _when(schedule: Schedule) -> str:
    if schedule.recurring:
        assert schedule.duration_seconds is not None
        return f"cron '{schedule.cron}' ({schedule.timezone}), {format_duration(schedule.duration_seconds)} each"
    assert schedule.start is not None and schedule.end is not None
    return f"{schedule.start:%Y-%m-%d %H:%M:%SZ} to {schedule.end:%Y-%m-%d %H:%M:%SZ}"

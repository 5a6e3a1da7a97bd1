"""``crisiswatch silence add|list|remove``: silences for planned events (`crisiswatch.control.silences`).

Adding and removing sign a record, so they need ``CRISISWATCH_CONTROL_KEYS`` and a person
(``--actor`` or ``CRISISWATCH_USER``); listing verifies with public keys only.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # the CLI imports this module at start: Kafka and friends only when a command runs
    from crisiswatch.contracts.control import Silence

silence_app = typer.Typer(
    help="Silences for planned events: the brand's alerts are marked silenced and never pause.", no_args_is_help=True
)
_ActorOpt = Annotated[str | None, typer.Option("--actor", envvar="CRISISWATCH_USER", help="You (user name).")]


async def _ensure_topics(settings: object) -> None:
    from crisiswatch.kafka import ensure_topics

    await ensure_topics(settings.kafka.bootstrap_servers or "", settings)  # type: ignore[attr-defined]


def _when(silence: Silence) -> str:
    """``start to end`` in UTC, to the minute."""
    return f"{silence.start.isoformat(timespec='minutes')} to {silence.end.isoformat(timespec='minutes')}"


def add_silence(
    brand: str, start_text: str, until_text: str, reason: str, actor: str | None, silence_id: str | None
) -> Silence:
    """Validate, sign and store a silence; print one line."""
    from pydantic import ValidationError

    from crisiswatch.contracts.vocabulary import utcnow
    from crisiswatch.control.commands import checked_settings, fail, person, run_async
    from crisiswatch.control.silences import SilenceStore, new_silence, parse_when

    who = person(actor)
    now = utcnow()
    try:
        start = parse_when(start_text, base=now)
        end = parse_when(until_text, base=start)
        silence = new_silence(
            brand, start=start, end=end, reason=reason, created_by=who, silence_id=silence_id, now=now
        )
    except ValidationError as exc:
        raise fail("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from exc
    except ValueError as exc:
        raise fail(str(exc)) from exc
    settings, keyring = checked_settings(signing=True)

    async def main() -> Silence:
        await _ensure_topics(settings)
        async with SilenceStore(settings, keyring=keyring) as store:
            return await store.add(silence)

    try:
        stored: Silence = run_async(main)  # type: ignore[assignment]
    except ValueError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"silenced {stored.brand} as {stored.id} ({_when(stored)}): {stored.reason}")
    return stored


def list_silences(include_past: bool, as_json: bool) -> list[Silence]:
    """Print the silences (not over yet, unless ``include_past``)."""
    from crisiswatch.contracts.vocabulary import utcnow
    from crisiswatch.control.commands import checked_settings, run_async
    from crisiswatch.control.silences import SilenceStore, silence_json
    from crisiswatch.tables import ID, TEXT, new_table, print_table

    settings, keyring = checked_settings(signing=False)

    async def main() -> list[Silence]:
        await _ensure_topics(settings)
        async with SilenceStore(settings, keyring=keyring) as store:
            return store.silences(include_past=include_past)

    silences: list[Silence] = run_async(main)  # type: ignore[assignment]
    now = utcnow()
    if as_json:
        typer.echo(json.dumps([silence_json(s, now) for s in silences], indent=2))
        return silences
    table = new_table(  # ids never cut (`crisiswatch.tables`)
        ("id", ID), ("brand", ID), ("when (UTC)", ID), ("now", ID), ("reason", TEXT), ("by", ID), title="silences"
    )
    for s in silences:
        state = "active" if s.start <= now < s.end else "over" if s.end <= now else "planned"
        table.add_row(s.id, s.brand, _when(s), state, s.reason, s.created_by)
    print_table(table)
    return silences


def remove_silence(silence_id: str, actor: str | None) -> None:
    """Remove a silence (a signed record); print one line."""
    from crisiswatch.control.commands import checked_settings, fail, person, run_async
    from crisiswatch.control.silences import SilenceStore

    who = person(actor)
    settings, keyring = checked_settings(signing=True)

    async def main() -> Silence | None:
        await _ensure_topics(settings)
        async with SilenceStore(settings, keyring=keyring) as store:
            return await store.remove(silence_id, actor=who)

    if run_async(main) is None:
        raise fail(f"no silence {silence_id!r}")
    typer.echo(f"removed silence {silence_id}")


@silence_app.command("add")
def add_command(
    brand: Annotated[str, typer.Option(help="Brand id (as in the brands file).")],
    reason: Annotated[str, typer.Option(help="The planned event, e.g. 'product launch'.")],
    until: Annotated[str, typer.Option("--until", help="End: ISO time with zone, or a duration after --from (2h).")],
    start: Annotated[
        str, typer.Option("--from", help="Start: now, ISO time with zone, or a duration from now (30m).")
    ] = "now",
    silence_id: Annotated[str | None, typer.Option("--id", help="Id (default: <brand>-<start>).")] = None,
    actor: _ActorOpt = None,
) -> None:
    """Silence a brand for a planned event: its alerts are marked silenced and never pause publishing."""
    add_silence(brand, start, until, reason, actor, silence_id)


@silence_app.command("list")
def list_command(
    include_past: Annotated[bool, typer.Option("--all", help="Also silences that are over.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List the silences (planned and active; --all adds the past ones)."""
    list_silences(include_past, as_json)


@silence_app.command("remove")
def remove_command(
    silence_id: Annotated[str, typer.Argument(help="Id of the silence (see `silence list`).")],
    actor: _ActorOpt = None,
) -> None:
    """Remove a silence (an active one ends at once)."""
    remove_silence(silence_id, actor)

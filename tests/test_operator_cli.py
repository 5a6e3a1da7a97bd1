"""Operator polish (issue 12, part 6): one-line errors, `tail`, tables that keep ids whole, durations with
units, schedules in the past refused — against the real (embedded) broker, or a closed port."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from crisiswatch.broker import free_port
from crisiswatch.cli import app
from crisiswatch.contracts.control import ControlMessage
from crisiswatch.contracts.records import Alert
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control import ControlPlane
from crisiswatch.control.messages import Keyring
from crisiswatch.control.testing import TEST_KEYS, TEST_PUBLIC_KEYS, produce, wait_for, with_test_keys
from crisiswatch.durations import DurationError, format_duration, parse_duration
from crisiswatch.kafka import ensure_topics
from crisiswatch.preflight import EXIT_KAFKA_UNREACHABLE, EXIT_TOPICS_MISSING
from crisiswatch.settings import Settings
from crisiswatch.tables import ID, TEXT, new_table, print_table
from crisiswatch.tail import tail

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``crisiswatch ARGS`` in its own process, as an operator runs it (the console script's `main`)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("CRISISWATCH_", "KAFKA_"))}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "crisiswatch.cli", *args],
        env=full_env, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "",
        "CRISISWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "CRISISWATCH_CONTROL_KEYS": TEST_KEYS,
        "CRISISWATCH_USER": "alice",
    }


# --- durations ---------------------------------------------------------------------------------------
def test_durations_need_a_unit_and_accept_iso_8601() -> None:
    cases = {"90s": 90, "10m": 600, "2h": 7200, "1d": 86400, "1h30m": 5400, "1h 30m": 5400, "1.5h": 5400,
             "2w": 1209600, "PT10M": 600, "PT1H30M": 5400, "P1DT2H": 93600, "P2W": 1209600, "pt0.5s": 0.5}  # fmt: skip
    assert {text: parse_duration(text) for text in cases} == cases
    with pytest.raises(DurationError, match=r"'10' has no unit: write 10s, 10m, 10h or 10d"):
        parse_duration("10")
    for bad in ("", "ten", "10x", "1h1h", "P1M", "P1Y", "PT", "P1DT", "0s", "-5m", "5m10"):
        with pytest.raises(DurationError):
            parse_duration(bad)
    assert parse_duration("10", allow_bare_seconds=True) == 10
    assert [format_duration(s) for s in (36000, 5400, 90, 0.2)] == ["10h", "1h30m", "1m30s", "0.2s"]


def test_cli_durations_without_unit_are_usage_errors_with_a_hint(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schedule", "add", "w", "--reason", "x", "--cron", "0 22 * * SAT", "--duration", "10"])
    assert result.exit_code == 2 and "has no unit" in result.output and "10h" in result.output
    csv = tmp_path / "s.csv"
    csv.write_text("timestamp,value\n2026-01-01T00:00:00Z,1\n")
    result = runner.invoke(app, ["detect-series", str(csv), "--bucket", "300"])
    assert result.exit_code == 2 and "--bucket" in result.output and "300s" in result.output
    result = runner.invoke(app, ["connect", "rss", "http://127.0.0.1:9/feed", "--interval", "60"])
    assert result.exit_code == 2 and "--interval" in result.output and "60s" in result.output


def test_schedule_durations_and_a_window_in_the_past(env: dict[str, str]) -> None:
    add = ["schedule", "add", "weekend", "--reason", "quiet", "--cron", "0 22 * * SAT", "--timezone", "Europe/Paris"]
    result = runner.invoke(app, [*add, "--duration", "PT10H"], env=env)
    assert result.exit_code == 0, result.output
    listed = json.loads(runner.invoke(app, ["schedule", "list", "--json"], env=env).output)
    assert listed[0]["duration_seconds"] == 36000
    result = runner.invoke(
        app, ["schedule", "add", "old", "--reason", "x", "--start", "2020-01-01T00:00:00Z", "--end",
              "2020-01-02T00:00:00Z"], env=env,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "in the past" in result.output and "2020-01-02T00:00:00+00:00" in result.output
    now = utcnow()
    ongoing = ["--start", (now - timedelta(hours=1)).isoformat(), "--end", (now + timedelta(hours=1)).isoformat()]
    result = runner.invoke(app, ["schedule", "add", "ongoing", "--reason", "x", *ongoing], env=env)
    assert result.exit_code == 0, result.output  # started already, ends later: accepted
    ids = [s["id"] for s in json.loads(runner.invoke(app, ["schedule", "list", "--json"], env=env).output)]
    assert ids == ["ongoing", "weekend"]


# --- one-line errors -----------------------------------------------------------------------------------
KAFKA_COMMANDS = [
    ["status"], ["pause", "--reason", "x"], ["resume", "--reason", "x"], ["schedule", "list"],
    ["schedule", "add", "s", "--reason", "x", "--cron", "0 1 * * *", "--duration", "1h"], ["schedule", "remove", "s"],
    ["schedule", "run"], ["relay"], ["alerts"], ["alerts", "--recent", "5"], ["ack", "acme:1"], ["serve"],
    ["topics", "--create"], ["worker"], ["run", "--until-idle"], ["tail", "alerts"], ["audit"],
    ["connect", "rss", "http://127.0.0.1:9/feed"], ["connect", "webhook"],
    ["connect", "sse", "http://127.0.0.1:9/s", "--mapping", "m.yaml"],
    ["connect", "websocket", "ws://127.0.0.1:9/ws", "--mapping", "m.yaml"],
    ["connect", "poll", "http://127.0.0.1:9/api", "--mapping", "m.yaml"],
    ["silence", "list"], ["silence", "add", "--brand", "acme", "--until", "2h", "--reason", "x"],
    ["silence", "remove", "x"], ["bench", "control"], ["bench", "pipeline"], ["connect", "--sources", "sources.yaml"],
]  # fmt: skip


def test_every_kafka_command_says_in_one_line_that_kafka_cannot_be_reached() -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = {"KAFKA_BOOTSTRAP_SERVERS": closed, "CRISISWATCH_CONTROL_KEYS": TEST_KEYS, "CRISISWATCH_USER": "alice",
           "CRISISWATCH_API_TOKEN": "t0ken-for-the-test", "CRISISWATCH_PAGE_PORT": str(free_port())}  # fmt: skip
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda args: (args, cli(args, env)), KAFKA_COMMANDS))
    for args, result in results:
        lines = (result.stdout + result.stderr).strip().splitlines()
        assert result.returncode == EXIT_KAFKA_UNREACHABLE, (args, result.stdout, result.stderr)
        assert lines == [
            f"error: cannot reach Kafka at {closed} (KAFKA_BOOTSTRAP_SERVERS): connection refused or timed out; "
            "is the broker running and the address right?"
        ], (args, lines)


async def test_reading_commands_say_topics_not_created_and_create_none(settings: Settings) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "", "CRISISWATCH_USER": "alice",
           "CRISISWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix, "CRISISWATCH_CONTROL_KEYS": TEST_KEYS}  # fmt: skip
    p = settings.kafka.topic_prefix
    expected = {
        ("alerts", "--recent", "5"): f"{p}alerts, {p}alerts.ack",
        ("ack", "acme:1"): f"{p}alerts, {p}alerts.ack",
        ("tail", "publishing.control"): f"{p}publishing.control",
    }
    for args, missing in expected.items():
        result = await asyncio.to_thread(cli, list(args), env)
        assert result.returncode == EXIT_TOPICS_MISSING, (args, result.stderr)
        assert (result.stdout + result.stderr).strip().splitlines() == [
            f"error: topics not created: run `crisiswatch topics --create` (missing: {missing})"
        ]
    from crisiswatch.preflight import existing_topics

    assert not {t for t in await existing_topics(settings, settings.kafka.bootstrap_servers or "") if t.startswith(p)}
    result = await asyncio.to_thread(cli, ["topics", "--create"], env)
    assert result.returncode == 0 and f"{p}alerts" in result.stdout
    result = await asyncio.to_thread(cli, ["alerts", "--recent", "5"], env)
    assert result.returncode == 0 and "no alerts on" in result.stdout


# --- tables never cut ids ------------------------------------------------------------------------------
def test_a_table_fits_the_terminal_and_grows_past_it_only_for_ids() -> None:
    summary = "globex: 16 stories (22 mentions) vs 1 expected (8.6x), 45% negative vs 15% usual, 8 languages"
    for alert_id, fits in (
        ("globex:1772449320", True),
        ("a-very-long-brand-id-of-a-holding-company:1772449320", False),
    ):
        table = new_table(("alert id", ID), ("status", ID), ("severity", ID), ("risk", ID), ("summary", TEXT))
        table.add_row(alert_id, "firing", "critical", "91", summary)
        out = io.StringIO()
        print_table(table, Console(width=72, file=out))
        lines = out.getvalue().splitlines()
        assert any(alert_id in line for line in lines), out.getvalue()
        assert (max(map(len, lines)) <= 72) == fits, out.getvalue()
        assert "languages" in out.getvalue()  # text wraps, never cut


def an_alert(alert_id: str, brand: str) -> Alert:
    now = utcnow()
    return Alert(
        alert_id=alert_id, brand=brand, severity="critical", risk=91, event_time=now,  # type: ignore[arg-type]
        window_start=now - timedelta(minutes=1), created_at=now, explanation=["volume 9x expected"],
        summary=f"{brand}: 16 stories (22 mentions) vs 1 expected (8.6x), 45% negative vs 15% usual, 8 languages",
    )  # fmt: skip


async def test_tables_never_cut_ids_at_80_columns(settings: Settings, env: dict[str, str]) -> None:
    await ensure_topics(settings.kafka.bootstrap_servers or "", settings)
    ids = {"globex:1772449320": "globex", "acme-international-holdings-eu:1772449999": "acme-international-holdings-eu"}
    for alert_id, brand in ids.items():
        alert = an_alert(alert_id, brand)
        await produce(
            settings.kafka.bootstrap_servers or "",
            settings.topic("alerts"),
            brand.encode(),
            alert.model_dump_json().encode(),
        )
    narrow = {**env, "COLUMNS": "80"}
    result = await asyncio.to_thread(runner.invoke, app, ["alerts", "--recent", "5"], env=narrow)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for alert_id in ids:
        assert any(alert_id in line for line in lines), (alert_id, result.output)

    scope = "brand:acme-international-holdings-eu"
    schedule_id = "mourning-for-the-whole-group-2026"
    steps = [
        ["pause", "--scope", scope, "--reason", "a long reason " * 8],
        ["schedule", "add", schedule_id, "--reason", "mourning", "--scope", scope, "--cron", "0 0 1 1 *",
         "--duration", "1d"],
    ]  # fmt: skip
    for args in steps:
        result = await asyncio.to_thread(runner.invoke, app, args, env=narrow)
        assert result.exit_code == 0, (args, result.output)
    shown = {
        "status": [scope],
        "schedule list": [schedule_id, scope],
        "topics": [settings.topic("publishing.schedules"), settings.topic("connectors.checkpoints")],
    }
    for command, whole in shown.items():
        result = await asyncio.to_thread(runner.invoke, app, command.split(), env=narrow)
        assert result.exit_code == 0, (command, result.output)
        for text in whole:
            assert any(text in line for line in result.output.splitlines()), (command, text, result.output)


# --- tail ----------------------------------------------------------------------------------------------
async def test_tail_prints_whole_records_and_verifies_control_records(settings: Settings, env: dict[str, str]) -> None:
    s = with_test_keys(settings)
    plane = ControlPlane.from_settings(s, heartbeat="off")
    await plane.start()
    try:
        await plane.pause("brand:globex", reason="data breach", actor="detector", alert_id="globex:1772449320")
    finally:
        await plane.stop()
    forged = Keyring.generate("test1").sign(
        ControlMessage.model_validate({
            "scope": "global", "state": "paused", "reason": "forged", "actor": "mallory", "episode": "person:x",
            "seq": 1, "issued_at": utcnow(), "signed_at": utcnow(), "on_resume": "review",
        })
    )  # fmt: skip
    await produce(s.kafka.bootstrap_servers or "", s.topic("publishing.control"), b"global", forged.to_bytes())

    public = {**env, "CRISISWATCH_CONTROL_KEYS": "", "CRISISWATCH_CONTROL_PUBLIC_KEYS": TEST_PUBLIC_KEYS}
    result = await asyncio.to_thread(runner.invoke, app, ["tail", "publishing.control", "--key"], env=public)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2
    assert "key=brand:globex  verified (test1)" in lines[0] and '"alert_id": "globex:1772449320"' in lines[0]
    assert "key=global  UNVERIFIABLE: bad_signature" in lines[1] and "forged" in lines[1]

    result = await asyncio.to_thread(runner.invoke, app, ["tail", s.topic("publishing.control"), "--json"], env=public)
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r.get("verified") for r in records] == ["test1", None]
    assert records[1]["unverifiable"].startswith("bad_signature") and records[0]["key"] == "brand:globex"
    assert records[0]["value"]["reason"] == "data breach" and records[0]["topic"] == s.topic("publishing.control")
    no_keys = {**public, "CRISISWATCH_CONTROL_PUBLIC_KEYS": ""}
    result = await asyncio.to_thread(runner.invoke, app, ["tail", "publishing.control", "--last", "1"], env=no_keys)
    assert "UNVERIFIABLE: no public key configured" in result.output and len(result.output.splitlines()) == 1

    # --last N and --from-beginning on a data topic; --follow prints what comes later
    for i in range(12):
        await produce(
            s.kafka.bootstrap_servers or "", s.topic("mentions.dlq"), f"k{i}".encode(), json.dumps({"n": i}).encode()
        )
    result = await asyncio.to_thread(runner.invoke, app, ["tail", "mentions.dlq", "--json"], env=public)
    assert [json.loads(line)["value"]["n"] for line in result.output.splitlines()] == list(range(2, 12))
    result = await asyncio.to_thread(runner.invoke, app, ["tail", "mentions.dlq", "--last", "3", "--key"], env=public)
    assert [line.split("  ")[2] for line in result.output.splitlines()] == ["key=k9", "key=k10", "key=k11"]
    result = await asyncio.to_thread(runner.invoke, app, ["tail", "mentions.dlq", "--from-beginning"], env=public)
    assert len(result.output.splitlines()) == 12
    assert runner.invoke(app, ["tail", "mentions.dlq", "--from-beginning", "--last", "2"], env=public).exit_code == 2

    out, stop, caught_up = io.StringIO(), asyncio.Event(), asyncio.Event()
    follow = asyncio.create_task(
        tail(s, s.kafka.bootstrap_servers or "", "mentions.dlq", last=0, follow=True, as_json=True, out=out, stop=stop,
             on_caught_up=caught_up.set)
    )  # fmt: skip
    await asyncio.wait_for(caught_up.wait(), 30)
    await produce(s.kafka.bootstrap_servers or "", s.topic("mentions.dlq"), b"later", b'{"n": 99}')
    assert await wait_for(lambda: '"n": 99' in out.getvalue(), timeout=30)
    stop.set()
    assert await asyncio.wait_for(follow, 30) == 1


async def test_tail_of_an_empty_topic_says_so_on_stderr(settings: Settings, env: dict[str, str]) -> None:
    await ensure_topics(settings.kafka.bootstrap_servers or "", settings)
    result = await asyncio.to_thread(cli, ["tail", "mentions.dlq"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr.strip().splitlines()[-1] == "(no records)"

    out, err, stop, caught_up = io.StringIO(), io.StringIO(), asyncio.Event(), asyncio.Event()
    follow = asyncio.create_task(
        tail(settings, settings.kafka.bootstrap_servers or "", "mentions.dlq", follow=True, out=out, err=err, stop=stop,
             on_caught_up=caught_up.set)
    )  # fmt: skip
    await asyncio.wait_for(caught_up.wait(), 30)
    assert err.getvalue() == "(no records yet; following)\n" and out.getvalue() == ""
    await produce(settings.kafka.bootstrap_servers or "", settings.topic("mentions.dlq"), b"k", b'{"n": 1}')
    assert await wait_for(lambda: '"n": 1' in out.getvalue(), timeout=30)
    stop.set()
    assert await asyncio.wait_for(follow, 30) == 1

    quiet = io.StringIO()  # --last 0 of a topic with records: nothing printed, and nothing to say
    assert await tail(settings, settings.kafka.bootstrap_servers or "", "mentions.dlq", last=0, out=out, err=quiet) == 0
    assert quiet.getvalue() == ""


# --- serve without a brands file -----------------------------------------------------------------------
async def serve_scopes(env: dict[str, str]) -> tuple[list[str], str]:
    """Start `crisiswatch serve`, read the scopes of /api/state, stop it (SIGTERM); (scopes, stderr)."""
    import httpx

    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith(("CRISISWATCH_", "KAFKA_"))}
    full.update({**env, "CRISISWATCH_PAGE_PORT": str(port), "CRISISWATCH_API_TOKEN": "t0ken-for-the-test-only"})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crisiswatch.cli", "serve", env=full, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.startswith(b"crisiswatch page:"), (line, await proc.stderr.read())
        async with httpx.AsyncClient() as http:
            r = await http.get(
                f"http://127.0.0.1:{port}/api/state", headers={"Authorization": "Bearer t0ken-for-the-test-only"}
            )
        assert r.status_code == 200, r.text
        scopes = [s["scope"] for s in r.json()["scopes"]]
    finally:
        proc.terminate()
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    return scopes, stderr.decode()


async def test_serve_without_a_brands_file_lists_no_demo_brands(env: dict[str, str], tmp_path: Path) -> None:
    scopes, stderr = await serve_scopes(env)
    assert not [s for s in scopes if s.startswith("brand:")], scopes
    assert "no brands file" in stderr and "CRISISWATCH_BRANDS_FILE" in stderr
    brands = tmp_path / "brands.yaml"
    brands.write_text("brands:\n  - id: umbrella\n    name: Umbrella Corp\n    aliases: [umbrella]\n")
    scopes, stderr = await serve_scopes({**env, "CRISISWATCH_BRANDS_FILE": str(brands)})
    assert [s for s in scopes if s.startswith("brand:")] == ["brand:umbrella"] and "no brands file" not in stderr

"""`crisiswatch run` as an operator meets it (issue 12, part 6): SIGTERM stops its worker and removes its
temporary folder; a replay is a rehearsal on its own topic prefix unless --live."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from crisiswatch import demo
from crisiswatch.broker import free_port
from crisiswatch.contracts.topics import ALL_TOPICS
from crisiswatch.control.testing import TEST_KEYS, read_records
from crisiswatch.preflight import EXIT_TERMINATED, existing_topics
from crisiswatch.runner import rehearsal_env
from crisiswatch.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def base_env(settings: Settings, tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRISISWATCH_", "KAFKA_"))}
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "",
        "CRISISWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix, "CRISISWATCH_APP_ID": settings.kafka.app_id,
        "CRISISWATCH_PARTITIONS": "2", "CRISISWATCH_IDLE_FLUSH_SECONDS": "2",
        "CRISISWATCH_CONTROL_KEYS": TEST_KEYS, "TMPDIR": str(tmp), **extra,
    })  # fmt: skip
    return env


def children(pid: int) -> dict[int, str]:
    """Live child processes of ``pid`` and their command lines (from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(entry.name)] = cmdline
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_sigterm_stops_the_worker_and_leaves_no_temp_folder(settings: Settings, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    worker_port = free_port()
    env = base_env(settings, tmp, CRISISWATCH_WEB_PORT=str(worker_port))
    run = subprocess.Popen(
        [sys.executable, "-m", "crisiswatch.cli", "run", "--no-page", "--json"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        workers: dict[int, str] = {}

        def worker_started() -> bool:
            workers.update({p: c for p, c in children(run.pid).items() if "crisiswatch.cli worker" in c})
            return bool(workers)

        wait_until(worker_started, 60, "the worker process")
        assert list(tmp.glob("crisiswatch-run-*")), "the run's temporary folder"

        def worker_ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{worker_port}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(worker_ready, 120, "the worker's stages to run")
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=90) == EXIT_TERMINATED
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    stderr = run.stderr.read() if run.stderr else ""
    assert "Traceback" not in stderr, stderr
    for pid in workers:
        assert not alive(pid), f"worker {pid} outlived `crisiswatch run`"
    assert sorted(p.name for p in tmp.iterdir()) == [], "temporary folders left behind"


def rehearse(settings: Settings, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """`crisiswatch run --replay` of the demo's first 150 records, with the test's topics as "production"."""
    data, brands = demo.write_demo(tmp_path)
    small = tmp_path / "small.jsonl"
    small.write_bytes(b"".join(data.read_bytes().splitlines(keepends=True)[:150]))
    env = base_env(settings, tmp_path, CRISISWATCH_WEB_PORT=str(free_port()), **extra)
    result = subprocess.run(
        [sys.executable, "-m", "crisiswatch.cli", "run", "--replay", str(small), "--brands", str(brands),
         "--until-idle", "--json"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "done: 150 records replayed" in result.stderr, result.stderr
    assert not list(tmp_path.glob("crisiswatch-*")), "a finished run leaves no temporary folder"
    return result


def test_a_replay_is_a_rehearsal_on_throwaway_topics_unless_live(settings: Settings, tmp_path: Path) -> None:
    result = rehearse(settings, tmp_path)
    first = result.stderr.splitlines()[0]
    match = re.match(r"REHEARSAL on topics (rehearsal-[0-9a-f]{8}\.)\* \(consumer groups (\S+)-\*\)", first)
    assert match, first
    assert "cannot pause real publishing" in first and "--live" in first and "deleted at the end" in first
    prefix = match.group(1)
    assert f"deleted the rehearsal's {len(ALL_TOPICS)} topics ({prefix}*)" in result.stderr, result.stderr
    topics = asyncio.run(existing_topics(settings, settings.kafka.bootstrap_servers or ""))
    assert not {t for t in topics if t.startswith(settings.kafka.topic_prefix)}, "the configured topics were touched"
    assert not {t for t in topics if t.startswith(prefix)}, "the rehearsal's topics were left behind"


def test_a_rehearsal_prefix_can_be_configured_and_its_topics_are_kept(settings: Settings, tmp_path: Path) -> None:
    prefix = f"{settings.kafka.topic_prefix}rehearsal."
    result = rehearse(settings, tmp_path, CRISISWATCH_REHEARSAL_PREFIX=prefix)
    assert result.stderr.splitlines()[0].startswith(f"REHEARSAL on topics {prefix}*")
    assert "deleted" not in result.stderr
    topics = asyncio.run(existing_topics(settings, settings.kafka.bootstrap_servers or ""))
    assert f"{prefix}publishing.control" in topics
    assert not {t for t in topics if t.startswith(settings.kafka.topic_prefix) and not t.startswith(prefix)}
    replayed = asyncio.run(read_records(settings.kafka.bootstrap_servers or "", f"{prefix}mentions.raw"))
    assert len(replayed) == 150


def test_rehearsal_prefix_can_be_configured_and_live_keeps_the_configured_topics(settings: Settings) -> None:
    env, banner = rehearsal_env(settings.model_copy(update={"rehearsal_prefix": "staging-rehearsal."}), live=False)
    assert env == {"CRISISWATCH_TOPIC_PREFIX": "staging-rehearsal.",
                   "CRISISWATCH_APP_ID": f"{settings.kafka.app_id}-staging-rehearsal"}  # fmt: skip
    assert banner.startswith("REHEARSAL on topics staging-rehearsal.*")
    env, banner = rehearsal_env(settings, live=True)
    assert env == {} and banner.startswith(
        f"LIVE run on the configured topics (prefix '{settings.kafka.topic_prefix}')"
    )
    first, _ = rehearsal_env(settings, live=False)
    second, _ = rehearsal_env(settings, live=False)
    assert first["CRISISWATCH_TOPIC_PREFIX"] != second["CRISISWATCH_TOPIC_PREFIX"]  # each rehearsal its own

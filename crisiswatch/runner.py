"""`crisiswatch run`: broker (unless a cluster is configured), worker, replay, and a live printout.

The worker runs as its own process (``crisiswatch worker``), exactly as in production; this process
replays the input, follows ``alerts`` and ``publishing.control``, prints every alert and every control
change as it happens and, with ``until_idle``, returns once the replay is done and the pipeline has
drained (every stage caught up and no output for a while).

A run is a **rehearsal** unless ``live``: its topics get their own prefix (``rehearsal_prefix``, else
``rehearsal-<random id>.``) and its consumer groups their own application id, so a replay started with
production settings in the environment can never pause real publishing (on a cluster, the topics of a
random prefix are deleted at the end: `delete_rehearsal_topics`). SIGINT/SIGTERM cancel the run:
the signal is passed on to the worker, which is waited for, then the page and the embedded broker stop
and the run's temporary folder is removed (`Stopped` tells the CLI which signal it was).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from crisiswatch.broker import broker_for
from crisiswatch.connectors.replay import replay
from crisiswatch.connectors.sink import MentionSink
from crisiswatch.contracts.control import HEARTBEAT_KEY, ControlMessage
from crisiswatch.contracts.records import Alert, Signal
from crisiswatch.contracts.topics import (
    ALERTS,
    MENTIONS_DLQ,
    MENTIONS_ENRICHED,
    MENTIONS_RAW,
    PUBLISHING_CONTROL,
    SIGNALS,
)
from crisiswatch.control.keys import generate_key_pair
from crisiswatch.control.messages import Keyring
from crisiswatch.control.metrics import ThrottledWarnings
from crisiswatch.control.view import ControlView
from crisiswatch.kafka import ensure_topics, new_admin, new_consumer
from crisiswatch.settings import Settings
from crisiswatch.stream.health import EXIT_LINE
from crisiswatch.stream.lag import committed_lag


class Stopped(Exception):
    """The run was stopped by SIGINT or SIGTERM, after it stopped its worker and cleaned up."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


@dataclass
class RunReport:
    """What a run saw, for the closing summary and for tests."""

    replayed: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)
    controls: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: int = 0
    signals: int = 0


def alert_line(alert: Alert) -> dict[str, Any]:
    """The ``--json`` object of an alert."""
    return {
        "type": "alert",
        "alert_id": alert.alert_id,
        "brand": alert.brand,
        "status": alert.status,
        "severity": alert.severity,
        "risk": alert.risk,
        "event_time": alert.model_dump(mode="json")["event_time"],
        "summary": alert.summary,
    }


def control_line(message: ControlMessage, event_time: str | None) -> dict[str, Any]:
    """The ``--json`` object of a control change."""
    dumped = message.model_dump(mode="json")
    return {
        "type": "control",
        "scope": message.scope,
        "state": message.state,
        "reason": message.reason,
        "actor": message.actor,
        "alert_id": message.alert_id,
        "event_time": event_time or dumped["issued_at"],
    }


def spike_line(signal_: Signal) -> dict[str, Any]:
    """The printout of the first window of a volume spike (risk and severity are the alerts' business)."""
    mentions = max(signal_.mentions, 1)
    return {
        "type": "spike",
        "brand": signal_.brand,
        "event_time": signal_.model_dump(mode="json")["window_start"],
        "summary": (
            f"volume spike: {signal_.mentions} mentions ({signal_.stories} stories) in the window, "
            f"{signal_.positive / mentions:.0%} positive, {signal_.negative / mentions:.0%} negative"
        ),
    }


def human_line(item: dict[str, Any]) -> str:
    when = item["event_time"].replace("T", " ").replace("Z", "")[:16]
    if item["type"] == "alert":
        status = "RESOLVED" if item["status"] == "resolved" else item["severity"].upper()
        return f"{when}  ALERT   {status:<8} {item['brand']:<10} risk {item['risk']:5.1f}  {item['summary']}"
    if item["type"] == "spike":
        return f"{when}  SPIKE            {item['brand']:<10}             {item['summary']}"
    state = "PAUSED" if item["state"] == "paused" else "ACTIVE"
    return f"{when}  CONTROL {state:<8} {item['scope']:<10} by {item['actor']}: {item['reason']}"


class Watcher:
    """Follows the output topics, prints what happens, and tells when the pipeline has gone quiet.

    Control records go through a `ControlView`, as in a gate. Its one consumer is driven by hand, not by a
    `crisiswatch.follow.TopicFollower`: it reads four topics in one poll loop, so that within a batch the
    alerts come before the control changes that name them, and it may start at the end of the topics.
    """

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        emit: Callable[[dict[str, Any]], None],
        note: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.settings = settings
        self.bootstrap = bootstrap
        self.emit = emit
        self.note = note
        """Where the start of each spike goes (the human printout only: ``--json`` prints decisions alone)."""
        self.spiking: set[str] = set()
        self.held: list[tuple[ControlMessage, float]] = []
        """Control changes that name an alert not seen yet (another topic may be read later), with arrival."""
        self.keyring = Keyring.from_settings(settings.control)
        self.verifier = self.keyring.verifying_only(hmac_allowed=settings.control.control_hmac_migration)
        """Public keys only: what verifies the control records printed."""
        self.view = ControlView(self.verifier, settings.control.control_max_age_seconds)
        """The control records read, verified and ordered exactly as a gate's view does it."""
        self.rejections = ThrottledWarnings(logging.getLogger("crisiswatch.runner"))
        self.report = RunReport()
        self.last_output = time.monotonic()
        self.alert_times: dict[str, tuple[str, bool]] = {}
        """Alert id -> (event time of its first decision that asked to pause, else of its first, asked?)."""
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self, from_beginning: bool) -> None:
        names = [ALERTS.name, PUBLISHING_CONTROL.name, SIGNALS.name, MENTIONS_DLQ.name]
        self._consumer = new_consumer(
            *[self.settings.topic(n) for n in names],
            bootstrap_servers=self.bootstrap,
            settings=self.settings,
            auto_offset_reset="earliest" if from_beginning else "latest",
        )
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def run(self) -> None:
        assert self._consumer is not None
        t = self.settings.topic
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            # Alerts before control changes: a pause names the alert that decided it.
            order = {t(ALERTS.name): 0, t(PUBLISHING_CONTROL.name): 1}
            for tp, records in sorted(batches.items(), key=lambda item: order.get(item[0].topic, 2)):
                if records:
                    self.last_output = time.monotonic()
                for record in records:
                    if tp.topic == t(ALERTS.name):
                        self._on_alert(record.value)
                    elif tp.topic == t(PUBLISHING_CONTROL.name):
                        self._on_control(record.value, record.key)
                    elif tp.topic == t(SIGNALS.name):
                        self.report.signals += 1
                        if self.note is not None:
                            self._on_signal(record.value)
                    else:
                        self.report.dead_letters += 1
            self.release_held()

    def _on_alert(self, value: bytes | None) -> None:
        alert = Alert.model_validate_json(value or b"")
        line = alert_line(alert)
        known = self.alert_times.get(alert.alert_id)
        if known is None or (alert.pause and not known[1]):  # a pause refers to the first decision asking it
            self.alert_times[alert.alert_id] = (line["event_time"], alert.pause)
        self.report.alerts.append(line)
        self.emit(line)

    def _on_signal(self, value: bytes | None) -> None:
        """Note the first window of each volume spike of a brand, whether it alerts or not."""
        signal_ = Signal.model_validate_json(value or b"")
        if not signal_.volume.spike:
            self.spiking.discard(signal_.brand)
        elif signal_.brand not in self.spiking:
            self.spiking.add(signal_.brand)
            assert self.note is not None
            self.note(spike_line(signal_))

    def _on_control(self, value: bytes | None, key: bytes | None = None) -> None:
        if value is None or key == HEARTBEAT_KEY.encode():
            return  # heartbeats re-sign the state: not changes
        # Read as history (live=False): the printout judges no record by its age, only by the log.
        result = self.view.ingest(key, value, live=False)
        if result.rejected is not None:  # counted; logged at most once a minute per reason
            exc = result.rejected
            self.rejections.rejected("run", exc.reason, f"ignored a control record that failed verification: {exc}")
            return
        if not result.changed or result.message is None:
            return  # a duplicate or re-signed copy of a state already printed
        self.held.append((result.message, time.monotonic()))
        self.release_held()

    def release_held(self, wait_seconds: float = 5.0, force: bool = False) -> None:
        """Print held control changes, in order, once their alert is known (or after ``wait_seconds``)."""
        now = time.monotonic()
        while self.held:
            message, arrived = self.held[0]
            decided = self.alert_times.get(message.alert_id or "")
            if message.alert_id and decided is None and not force and now - arrived < wait_seconds:
                return
            self.held.pop(0)
            if self.report.controls and self.report.controls[-1]["seq"] == message.seq:
                continue  # a re-assertion of the same state, not a change
            line = control_line(message, decided[0] if decided else None)
            self.report.controls.append({**line, "seq": message.seq})
            self.emit(line)


async def drained(settings: Settings, bootstrap: str) -> bool:
    """True when every stage's consumer group has committed up to the end of its input topic."""
    groups = {
        f"{settings.kafka.app_id}-enrich": MENTIONS_RAW.name,
        f"{settings.kafka.app_id}-window": MENTIONS_ENRICHED.name,
        settings.kafka.app_id: SIGNALS.name,
    }
    admin = new_admin(bootstrap, settings=settings)
    consumer = new_consumer(bootstrap_servers=bootstrap, settings=settings)
    await admin.start()
    await consumer.start()
    try:
        for group, topic in groups.items():
            if await committed_lag(admin, consumer, group, settings.topic(topic), settings.kafka.partitions):
                return False
        return True
    finally:
        await consumer.stop()
        await admin.close()


async def drained_within(settings: Settings, bootstrap: str, timeout: float = 30.0) -> bool:
    """`drained`, where a broker that does not answer in ``timeout`` counts as not drained (never a hang)."""
    try:
        return await asyncio.wait_for(drained(settings, bootstrap), timeout)
    except (TimeoutError, KafkaError):
        return False


def exit_reason(log_path: Path) -> str:
    """``": <why>"`` from the worker's log line that explains a non-zero exit (stream.app), else ``""``."""
    try:
        with log_path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 65536))
            tail = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line for line in tail.splitlines() if EXIT_LINE in line]
    return ": " + lines[-1].split(EXIT_LINE, 1)[1].strip() if lines else ""


def start_worker(
    settings: Settings, bootstrap: str, env_extra: dict[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Launch ``crisiswatch worker`` as a child process bound to ``bootstrap``."""
    env = {**os.environ, **env_extra, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    with log_path.open("ab") as log:
        # Its own process group: a Ctrl-C in the terminal reaches the worker once, passed on by this process.
        return subprocess.Popen(
            [sys.executable, "-m", "crisiswatch.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0, signum: int = signal.SIGTERM) -> None:
    """Send ``signum`` (SIGTERM: a graceful stop) and wait for the exit; kill after ``timeout`` s."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signum)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[list[int]]:
    """Within, SIGINT and SIGTERM cancel the current task (so that its ``finally`` blocks clean up).

    Yields the list the signals received are appended to.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}

    def on_signal(signum: int) -> None:
        if not received:
            task.cancel()
        received.append(signum)

    for signum in previous:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            loop.remove_signal_handler(signum)
            signal.signal(signum, handler)


async def delete_rehearsal_topics(settings: Settings, bootstrap: str, prefix: str) -> list[str]:
    """Delete the crisiswatch topics named ``prefix`` + a registry name (nothing else); returns their names."""
    from crisiswatch.contracts.topics import ALL_TOPICS

    names = {prefix + spec.name for spec in ALL_TOPICS}
    admin = new_admin(bootstrap, settings=settings)
    await admin.start()
    try:
        doomed = sorted(names & set(await admin.list_topics()))
        if doomed:
            await admin.delete_topics(doomed)
        return doomed
    finally:
        await admin.close()


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped(signum)


def rehearsal_env(settings: Settings, live: bool) -> tuple[dict[str, str], str]:
    """The environment that isolates a rehearsal (empty when ``live``), and the line that says so."""
    if live:
        prefix = settings.kafka.topic_prefix
        return {}, f"LIVE run on the configured topics (prefix {prefix!r}): its pauses are real pauses"
    prefix = settings.kafka.rehearsal_prefix or f"rehearsal-{secrets.token_hex(4)}."
    app_id = f"{settings.kafka.app_id}-{re.sub(r'[^A-Za-z0-9_-]+', '-', prefix).strip('-')}"
    env = {"CRISISWATCH_TOPIC_PREFIX": prefix, "CRISISWATCH_APP_ID": app_id}
    return env, (
        f"REHEARSAL on topics {prefix}* (consumer groups {app_id}-*): isolated from the configured topics, "
        "so it cannot pause real publishing (--live uses them)"
    )


@contextlib.asynccontextmanager
async def open_page(settings: Settings, bootstrap: str) -> AsyncIterator[Any]:
    """The one-button page (`crisiswatch serve`) in this process, on ``page_port`` or, if taken, a free port."""
    from crisiswatch.web.server import WebServer

    on_cluster = settings.model_copy(update={"bootstrap_servers": bootstrap})
    server = WebServer(on_cluster)
    try:
        await server.start()
    except OSError:  # the port is in use
        server = WebServer(on_cluster, port=0)
        await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def run_pipeline(
    settings: Settings,
    bootstrap: str,
    replay_path: Path,
    speed: float,
    until_idle: bool,
    emit: Callable[[dict[str, Any]], None],
    env_extra: dict[str, str],
    log_path: Path,
    idle_timeout: float = 600.0,
    note: Callable[[dict[str, Any]], None] | None = None,
    page: Callable[[str], None] | None = None,
) -> RunReport:
    """Start the worker, replay, print; return when drained (``until_idle``) or cancelled.

    With ``page``, the one-button page is served too and ``page`` is told its address. SIGINT/SIGTERM
    stop the worker with the same signal, wait for it, and raise `Stopped`.
    """
    with stop_on_signals() as received:
        try:
            return await _run_pipeline(
                settings, bootstrap, replay_path, speed, until_idle, emit, env_extra, log_path, idle_timeout, note,
                page, received,
            )  # fmt: skip
        except asyncio.CancelledError:
            if received:
                raise Stopped(received[0]) from None
            raise


async def _run_pipeline(
    settings: Settings,
    bootstrap: str,
    replay_path: Path,
    speed: float,
    until_idle: bool,
    emit: Callable[[dict[str, Any]], None],
    env_extra: dict[str, str],
    log_path: Path,
    idle_timeout: float,
    note: Callable[[dict[str, Any]], None] | None,
    page: Callable[[str], None] | None,
    received: list[int],
) -> RunReport:
    fresh = await ensure_topics(bootstrap, settings)
    async with contextlib.AsyncExitStack() as stack:
        if page is not None:
            page((await stack.enter_async_context(open_page(settings, bootstrap))).url)
        watcher = Watcher(settings, bootstrap, emit, note)
        await watcher.start(from_beginning=bool(fresh))
        worker = start_worker(settings, bootstrap, env_extra, log_path)
        watch_task = asyncio.create_task(watcher.run())
        try:
            async with MentionSink(settings, bootstrap) as sink:
                watcher.report.replayed = await replay(replay_path, sink, speed)
            if not until_idle:
                print(f"replay done ({watcher.report.replayed} records); still running: Ctrl-C stops", file=sys.stderr)
            quiet_for = settings.worker.idle_flush_seconds + 4.0
            deadline = time.monotonic() + idle_timeout
            while True:
                await asyncio.sleep(1.0)
                if worker.poll() is not None:  # a stage that stops makes the worker exit (stream.app)
                    why = exit_reason(log_path)
                    raise RuntimeError(f"the worker exited with {worker.returncode}{why}; see {log_path}")
                if not until_idle:
                    continue
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the pipeline did not drain within {idle_timeout:.0f} s; see {log_path}")
                if time.monotonic() - watcher.last_output >= quiet_for and await drained_within(settings, bootstrap):
                    watcher.release_held(force=True)
                    return watcher.report
        finally:
            watch_task.cancel()
            await asyncio.gather(watch_task, return_exceptions=True)
            await watcher.stop()
            stop_process(worker, signum=received[0] if received else signal.SIGTERM)


def run_command(
    replay_path: Path | None,
    speed: float,
    brands: Path | None,
    until_idle: bool,
    as_json: bool,
    page: bool | None = None,
    *,
    live: bool = False,
) -> RunReport:
    """The body of `crisiswatch run`; ``page`` (default: unless ``until_idle``) serves the one-button page.

    Without ``live``, a rehearsal on its own topic prefix (`rehearsal_env`). Always removes its temporary
    folder, except after a worker failure (its log is there, and the error names it).
    """
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_stopped)  # until the event loop takes over
    workdir = Path(tempfile.mkdtemp(prefix="crisiswatch-run-"))
    keep = False
    try:
        return _run_command(replay_path, speed, brands, until_idle, as_json, page, live, workdir)
    except (RuntimeError, TimeoutError) as exc:
        keep = str(workdir) in str(exc)  # the worker's log is named in the error
        raise
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous_sigterm)


def _run_command(
    replay_path: Path | None,
    speed: float,
    brands: Path | None,
    until_idle: bool,
    as_json: bool,
    page: bool | None,
    live: bool,
    workdir: Path,
) -> RunReport:
    settings = Settings()
    env_extra, banner = rehearsal_env(settings, live)
    # A rehearsal with a random prefix on a real cluster deletes its topics at the end (a configured
    # prefix is meant to be reused; the embedded broker forgets everything anyway).
    throwaway = (
        env_extra.get("CRISISWATCH_TOPIC_PREFIX")
        if settings.kafka.bootstrap_servers and not settings.kafka.rehearsal_prefix
        else None
    )
    print(banner + ("; its topics are deleted at the end" if throwaway else ""), file=sys.stderr, flush=True)
    show_page = (not until_idle) if page is None else page
    sign_in = "with CRISISWATCH_WEB_USERS / CRISISWATCH_API_TOKEN"
    if show_page and settings.web.web_users is None and settings.web.api_token is None:
        # A demo user for this run only; a real deployment sets CRISISWATCH_WEB_USERS.
        password = secrets.token_urlsafe(12)
        from crisiswatch.web.auth import hash_password

        env_extra["CRISISWATCH_WEB_USERS"] = f"demo:{hash_password(password)}"
        env_extra["CRISISWATCH_WEB_ROLES"] = "demo:admin"  # the one person of a rehearsal does everything
        sign_in = f"as demo / {password} (this run only)"
    if replay_path is None:
        from crisiswatch.demo import write_demo

        replay_path, demo_brands = write_demo(workdir)
        brands = brands or demo_brands
    if brands is not None:
        env_extra["CRISISWATCH_BRANDS_FILE"] = str(brands)
    if settings.control.control_keys is None:
        # The demo needs a key pair; a real deployment sets CRISISWATCH_CONTROL_KEYS (writers) and
        # CRISISWATCH_CONTROL_PUBLIC_KEYS (readers) from `crisiswatch keys generate`.
        demo_pair = generate_key_pair("demo")
        env_extra["CRISISWATCH_CONTROL_KEYS"] = demo_pair.private
        env_extra["CRISISWATCH_CONTROL_PUBLIC_KEYS"] = demo_pair.public
        print("CRISISWATCH_CONTROL_KEYS not set: signing with an ephemeral demo Ed25519 key pair", file=sys.stderr)
    os.environ.update(env_extra)
    settings = Settings()

    def emit(item: dict[str, Any]) -> None:
        print(json.dumps(item, ensure_ascii=False) if as_json else human_line(item), flush=True)

    log_path = workdir / "worker.log"
    with broker_for(settings) as bootstrap:
        if not as_json:
            print(f"broker {bootstrap} · replaying {replay_path} · worker log {log_path}", file=sys.stderr)

        def announce(url: str) -> None:
            print(f"pause/resume page: {url}  sign in {sign_in}", file=sys.stderr)

        try:
            report = asyncio.run(
                run_pipeline(
                    settings, bootstrap, replay_path, speed, until_idle, emit, env_extra, log_path,
                    note=None if as_json else emit, page=announce if show_page else None,
                )
            )  # fmt: skip
        finally:
            if throwaway:
                try:
                    deleted = asyncio.run(delete_rehearsal_topics(settings, bootstrap, throwaway))
                    print(f"deleted the rehearsal's {len(deleted)} topics ({throwaway}*)", file=sys.stderr)
                except (KafkaError, OSError) as exc:
                    print(f"could not delete the rehearsal's topics ({throwaway}*): {exc}", file=sys.stderr)
    paused = [c for c in report.controls if c["state"] == "paused"]
    print(
        f"done: {report.replayed} records replayed, {report.signals} window signals, {len(report.alerts)} alert "
        f"updates, {len(paused)} pause(s), {report.dead_letters} dead letters",
        file=sys.stderr,
    )
    return report

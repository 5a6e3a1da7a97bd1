"""`crisiswatch bench ingest`: mentions per second into ``mentions.raw``, from replay and through the
webhook, with peak memory.

Targets on a 2-core machine: 30,000 mentions/s from replay and 5,000 mentions/s through the webhook.

Both parts go through the real `connectors.sink.MentionSink` (``acks=all``, every batch's delivery
awaited) to the broker (embedded unless ``KAFKA_BOOTSTRAP_SERVERS`` names a cluster), and a mention
counts only once the broker acknowledged it. Each part runs in its own process so that its peak
memory (RSS) is its own:

* **replay**: a JSONL file of realistic mentions (~400 bytes each, generated first, sorted) through
  `connectors.replay.replay` (parse, reorder window, hand-over) until the sink has settled;
* **webhook**: the `connectors.webhook.WebhookReceiver` (bearer token, the default mention-shaped
  mapping) and its sink in one process; a separate load process with ``clients`` concurrent aiohttp
  clients posts JSON arrays of ``batch`` mentions (built before the clock starts). A 202 means every
  item of the request was acknowledged by the broker; the rate is accepted mentions over the time
  from the first request to the last answer. The receiver process's CPU time is reported too.

The report goes to ``reports/bench-ingest.md`` and ``.json``.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import platform
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crisiswatch.settings import Settings

REPLAY_TARGET = 30_000.0
WEBHOOK_TARGET = 5_000.0
TOKEN = "bench-ingest"
WORDS = "acme blender broke again support never answered refund please terrible great service love it".split()


def mention_row(i: int, start: datetime) -> dict[str, Any]:
    """One realistic mention (~400 bytes as JSON)."""
    text = " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(18))
    return {
        "id": f"bench:{i}",
        "source": "bench",
        "text": f"@acme {text} #{i % 97}",
        "created_at": (start + timedelta(milliseconds=i)).isoformat().replace("+00:00", "Z"),
        "url": f"https://social.example/p/{i}",
        "lang": "en",
        "author": {"id": f"u{i % 5000}", "handle": f"user{i % 5000}", "followers": i % 10_000},
        "metrics": {"likes": i % 50, "shares": i % 7, "replies": i % 11},
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process, MB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- part 1: replay -----------------------------------------------------------------------------------
async def _replay_part(bootstrap: str, prefix: str, mentions: int, folder: str) -> dict[str, Any]:
    from crisiswatch.connectors.replay import ReplayReport, replay
    from crisiswatch.connectors.sink import MentionSink, SinkOptions
    from crisiswatch.kafka import ensure_topics

    settings = Settings(bootstrap_servers=bootstrap, topic_prefix=prefix)
    await ensure_topics(bootstrap, settings)
    path = Path(folder) / "mentions.jsonl"
    start = datetime(2026, 3, 1, tzinfo=UTC)
    with path.open("w") as handle:
        for i in range(mentions):
            handle.write(json.dumps(mention_row(i, start), separators=(",", ":")) + "\n")
    size = path.stat().st_size
    rss_before = peak_rss_mb()
    report = ReplayReport()
    async with MentionSink(settings, bootstrap, SinkOptions()) as sink:
        cpu = cpu_seconds()
        started = time.perf_counter()
        sent = await replay(path, sink, report=report)
        await sink.settled()
        seconds = time.perf_counter() - started
        cpu = cpu_seconds() - cpu
        acked = sink.acked
    return {
        "mentions": sent,
        "acknowledged": acked,
        "file_mb": round(size / 2**20, 1),
        "seconds": round(seconds, 2),
        "rate": round(acked / seconds),
        "cpu_seconds": round(cpu, 2),
        "us_per_mention_cpu": round(1e6 * cpu / max(acked, 1), 1),
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": rss_before,
        "out_of_order": report.out_of_order,
    }


# --- part 2: the webhook -------------------------------------------------------------------------------
async def _webhook_part(bootstrap: str, prefix: str, mentions: int, clients: int, batch: int) -> dict[str, Any]:
    from crisiswatch.broker import free_port
    from crisiswatch.connectors.sink import MentionSink, SinkOptions
    from crisiswatch.connectors.webhook import WebhookReceiver
    from crisiswatch.kafka import ensure_topics

    settings = Settings(bootstrap_servers=bootstrap, topic_prefix=prefix)
    await ensure_topics(bootstrap, settings)
    port = free_port()
    receiver = WebhookReceiver(token=TOKEN, port=port, max_bytes=8 << 20)
    stop = asyncio.Event()
    async with MentionSink(settings, bootstrap, SinkOptions()) as sink:
        server = asyncio.create_task(receiver.run(sink, stop))
        while receiver.bound_port is None:
            await asyncio.sleep(0.01)
        cpu = cpu_seconds()
        load = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from crisiswatch.bench.ingest import client_main; client_main()",
            f"http://127.0.0.1:{port}/webhooks/bench",
            str(mentions),
            str(clients),
            str(batch),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await load.communicate()
        cpu = cpu_seconds() - cpu
        stop.set()
        await server
        acked = sink.acked
    result = json.loads(out.decode().strip().splitlines()[-1])
    result.update(
        acknowledged=acked,
        rate=round(result["accepted"] / result["seconds"]),
        receiver_cpu_seconds=round(cpu, 2),
        receiver_cpu_share=round(cpu / result["seconds"], 2),
        peak_rss_mb=peak_rss_mb(),
        clients=clients,
        batch=batch,
    )
    return result


async def _client(url: str, mentions: int, clients: int, batch: int) -> dict[str, Any]:
    import aiohttp

    start = datetime(2026, 3, 1, tzinfo=UTC)
    bodies = [
        json.dumps([mention_row(i, start) for i in range(n, min(n + batch, mentions))]).encode()
        for n in range(0, mentions, batch)
    ]
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    statuses: dict[int, int] = {}
    accepted = 0
    queue = list(reversed(bodies))
    latencies: list[float] = []

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        while queue:
            body = queue.pop()
            sent = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                answer = await response.json()
                latencies.append(time.perf_counter() - sent)
                statuses[response.status] = statuses.get(response.status, 0) + 1
                if response.status == 202:
                    accepted += int(answer["accepted"])

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(clients)))
        seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(bodies),
        "accepted": accepted,
        "statuses": {str(k): v for k, v in statuses.items()},
        "seconds": round(seconds, 2),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1),
        "client_cpu_share": round(cpu_seconds() / max(seconds, 1e-9), 2),
    }


def client_main() -> None:
    """Entry point of the load process: ``URL MENTIONS CLIENTS BATCH``; prints its result as JSON."""
    url, mentions, clients, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    print(json.dumps(asyncio.run(_client(url, mentions, clients, batch))), flush=True)


# --- running the parts in their own processes -----------------------------------------------------------
def _part(name: str, args: tuple[Any, ...], results: Any) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    try:
        if name == "replay":
            results.put(asyncio.run(_replay_part(*args)))
        else:
            results.put(asyncio.run(_webhook_part(*args)))
    except BaseException as exc:  # reported in the parent
        results.put({"error": f"{type(exc).__name__}: {exc}"})


def run_part(name: str, *args: Any) -> dict[str, Any]:
    """Run one part in a fresh process (its own peak memory); return its result."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_part, args=(name, args, results))
    process.start()
    result = results.get()
    process.join()
    return result


def run(
    *, mentions: int = 300_000, webhook_mentions: int = 100_000, clients: int = 64, batch: int = 20, runs: int = 1
) -> dict[str, Any]:
    """Measure both parts (``runs`` times each; the best run is the result); return the report as data."""
    from crisiswatch.broker import broker_for

    settings = Settings()
    result: dict[str, Any] = {}
    with broker_for(settings) as bootstrap, tempfile.TemporaryDirectory() as folder:
        replays = [
            run_part("replay", bootstrap, f"bench-{secrets.token_hex(4)}.", mentions, folder) for _ in range(runs)
        ]
        hooks = [
            run_part("webhook", bootstrap, f"bench-{secrets.token_hex(4)}.", webhook_mentions, clients, batch)
            for _ in range(runs)
        ]
        single = run_part("webhook", bootstrap, f"bench-{secrets.token_hex(4)}.", webhook_mentions // 5, clients, 1)
    result["replay"] = max(replays, key=lambda r: r.get("rate", 0))
    result["replay_runs"] = [r.get("rate") for r in replays]
    result["webhook"] = max(hooks, key=lambda r: r.get("rate", 0))
    result["webhook_runs"] = [r.get("rate") for r in hooks]
    result["webhook_one_per_request"] = single
    result["targets"] = {"replay": REPLAY_TARGET, "webhook": WEBHOOK_TARGET}
    result["broker"] = "configured cluster" if settings.kafka.bootstrap_servers else "embedded Tansu (memory)"
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    result["when"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    result["git"] = _git_head()
    return result


def _git_head() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _met(value: float | None, target: float) -> str:
    return "met" if value is not None and value >= target else "**NOT met**"


def markdown(result: dict[str, Any]) -> str:
    """The Markdown report."""
    replay, hook, single = result["replay"], result["webhook"], result["webhook_one_per_request"]
    lines = [
        "# bench ingest",
        "",
        f"{result['machine']}; broker: {result['broker']}; {result['when']}; commit {result['git']}.",
        "Every mention counted was acknowledged by the broker (`acks=all`) through `MentionSink`.",
        "",
        "| path | target | measured | peak RSS | |",
        "| --- | --- | --- | --- | --- |",
    ]
    if "error" in replay:
        lines.append(f"| replay | ≥ {REPLAY_TARGET:,.0f}/s | failed: {replay['error']} | | **NOT met** |")
    else:
        lines.append(
            f"| replay ({replay['mentions']:,} mentions, {replay['file_mb']} MB JSONL) | ≥ {REPLAY_TARGET:,.0f}/s "
            f"| {replay['rate']:,}/s ({replay['us_per_mention_cpu']} µs CPU a mention; runs: "
            f"{', '.join(f'{r:,}' for r in result['replay_runs'] if r)}) | {replay['peak_rss_mb']} MB "
            f"| {_met(replay['rate'], REPLAY_TARGET)} |"
        )
    for label, part, target in (
        (f"webhook, {hook.get('clients')} clients, {hook.get('batch')} mentions a request", hook, WEBHOOK_TARGET),
        (f"webhook, {single.get('clients')} clients, 1 mention a request", single, WEBHOOK_TARGET),
    ):
        if "error" in part:
            lines.append(f"| {label} | | failed: {part['error']} | | |")
            continue
        target_text = f"≥ {target:,.0f}/s" if target else ""
        verdict = _met(part["rate"], target) if target else ""
        lines.append(
            f"| {label} | {target_text} | {part['rate']:,}/s ({part['accepted']:,} accepted, statuses "
            f"{part['statuses']}; request p50 {part['p50_ms']} ms, p99 {part['p99_ms']} ms; receiver "
            f"{int(100 * part['receiver_cpu_share'])} %, load generator {int(100 * part['client_cpu_share'])} % "
            f"of a core) | {part['peak_rss_mb']} MB | {verdict} |"
        )
    lines += [
        "",
        "The load generator runs in its own process on the same machine (it competes for the two cores with "
        "the receiver and the broker).",
        "",
    ]
    return "\n".join(lines)


def write_report(out: Path, **kwargs: Any) -> str:
    """Run the benchmark and write ``bench-ingest.md`` and ``.json`` into ``out``; return the Markdown."""
    result = run(**kwargs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench-ingest.json").write_text(json.dumps(result, indent=2))
    text = markdown(result)
    (out / "bench-ingest.md").write_text(text)
    return text

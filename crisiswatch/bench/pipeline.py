"""`crisiswatch bench pipeline`: end-to-end throughput, latency and memory against a real broker.

Phase 1 (throughput): a generated stream (``rate`` mentions per second of event time: what the target
live rate would put in each window) is loaded into ``mentions.raw``, then the workers start and
the clock runs from the first enriched record to the moment every stage has committed the end of its
input (raw → enriched → window aggregates → risk). Sustained rate = mentions / that time.

Phase 2 (latency at a fixed rate): mentions stamped with the current time are produced at the target
rate while the workers run; the workers' ``crisiswatch_processing_latency_seconds`` histogram (from
the raw record's timestamp to the mention being counted in its window) gives the percentiles, and the
``signals`` records give the decision delay (from the moment a window may close, its end plus the
allowed lateness, to its signal being published).

Both phases use 5-second windows with 1 second of lateness so that windows close during the run.
The report goes to ``reports/bench-pipeline.md`` and ``.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import secrets
import subprocess
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crisiswatch.broker import broker_for, free_port
from crisiswatch.contracts.records import Signal
from crisiswatch.contracts.topics import MENTIONS_ENRICHED, MENTIONS_RAW, SIGNALS
from crisiswatch.control.keys import generate_key_pair
from crisiswatch.demo import CALM, CHATTER, CRISIS_TEXTS
from crisiswatch.kafka import ensure_topics, new_consumer, new_producer
from crisiswatch.runner import drained, start_worker, stop_process
from crisiswatch.settings import Settings

BRANDS = [f"Brand{i:02d}" for i in range(20)]
SOURCES = ("twitter", "news", "reddit", "forum")


def brands_yaml(path: Path) -> Path:
    lines = ["brands:"] + [f'  - id: {b.lower()}\n    terms: ["{b}", "#{b}"]' for b in BRANDS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def mention_bytes(i: int, created: datetime, rng: random.Random) -> bytes:
    """One realistic generated mention (eight languages, mostly about one of twenty brands)."""
    if rng.random() < 0.1:
        text = rng.choice(CHATTER)
    else:
        lang = rng.choice(list(CALM))
        brand = rng.choice(BRANDS)
        if rng.random() < 0.05:
            text = rng.choice(CRISIS_TEXTS[lang]).format(b=brand)
        else:
            mood = rng.choice(("positive", "neutral", "negative"))
            text = rng.choice(CALM[lang][mood]).format(b=brand) + f" #{rng.randrange(1000)}"
    item = {
        "id": f"bench:{i}",
        "source": rng.choice(SOURCES),
        "text": text,
        "created_at": created.isoformat(),
        "author": {"id": f"u{rng.randrange(50_000)}", "followers": rng.randrange(10_000)},
    }
    return json.dumps(item, ensure_ascii=False).encode()


def peak_rss_bytes(pid: int) -> int:
    """Peak resident memory of a live process (VmHWM), 0 when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time a live process has used so far (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid(bootstrap: str) -> int | None:
    """Pid of the embedded broker serving ``bootstrap`` (None for an external cluster)."""
    needle = f"tcp://{bootstrap}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    return None


def histogram_buckets(text: str, name: str) -> dict[float, float]:
    """Cumulative bucket counts of a Prometheus histogram, summed over every scrape in ``text``."""
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    return buckets


def histogram_quantiles(buckets: dict[float, float], quantiles: tuple[float, ...]) -> dict[str, float]:
    """Quantiles from cumulative buckets, linearly interpolated inside a bucket (like histogram_quantile)."""
    ordered = sorted(buckets.items())
    total = ordered[-1][1] if ordered else 0.0
    out: dict[str, float] = {"count": total}
    for q in quantiles:
        rank, prev_bound, prev_count = q * total, 0.0, 0.0
        value = float("nan")
        for bound, count in ordered:
            if count >= rank and total > 0:
                if bound == float("inf"):
                    value = prev_bound
                else:
                    span = count - prev_count
                    value = prev_bound + (bound - prev_bound) * ((rank - prev_count) / span if span else 1.0)
                break
            prev_bound, prev_count = bound, count
        out[f"p{round(q * 100)}"] = value
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Bench:
    """One benchmark run: a broker, a topic prefix, N workers."""

    def __init__(self, bootstrap: str, workers: int, workdir: Path):
        self.bootstrap = bootstrap
        self.workers_wanted = workers
        self.workdir = workdir
        tag = secrets.token_hex(3)
        self.ports = [free_port() for _ in range(workers)]
        self.env = {
            "CRISISWATCH_TOPIC_PREFIX": f"bench{tag}.",
            "CRISISWATCH_APP_ID": f"bench-{tag}",
            "CRISISWATCH_BRANDS_FILE": str(brands_yaml(workdir / "brands.yaml")),
            "CRISISWATCH_WINDOW_SECONDS": "5",
            "CRISISWATCH_ALLOWED_LATENESS_SECONDS": "1",
            # Every generated source gets the bench's 1 s of lateness: reddit's built-in 5 min would keep
            # its brands' windows open past the end of the run (and nothing would be decided).
            "CRISISWATCH_SOURCE_LATENESS": json.dumps(dict.fromkeys(SOURCES, 1)),
            "CRISISWATCH_IDLE_FLUSH_SECONDS": "2",
            "CRISISWATCH_CONTROL_KEYS": generate_key_pair("bench").private,
        }
        os.environ.update(self.env)
        self.settings = Settings(bootstrap_servers=bootstrap)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start_workers(self) -> None:
        for port in self.ports:
            env = {**self.env, "CRISISWATCH_WEB_PORT": str(port)}
            self.procs.append(start_worker(self.settings, self.bootstrap, env, self.workdir / f"worker-{port}.log"))

    def stop_workers(self) -> None:
        for proc in self.procs:
            stop_process(proc)

    def scrape(self) -> str:
        texts = []
        for port in self.ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                    texts.append(resp.read().decode())
            except OSError:
                continue
        return "\n".join(texts)

    async def produce(
        self, count: int, start_index: int, rate: float | None, live: bool, event_rate: float = 10_000
    ) -> float:
        """Produce ``count`` mentions; at ``rate`` per second when given. Returns the achieved rate.

        Live mentions carry the current time; the others are ``event_rate`` mentions per second of event
        time, starting two hours ago (the stream a live rate of ``event_rate`` would have produced).
        """
        rng = random.Random(start_index)
        producer = new_producer(self.bootstrap, settings=self.settings, acks=1, linger_ms=10)
        await producer.start()
        topic = self.settings.topic(MENTIONS_RAW.name)
        base = datetime.now(UTC) - timedelta(hours=2)
        started = time.perf_counter()
        try:
            for n in range(count):
                i = start_index + n
                created = datetime.now(UTC) if live else base + timedelta(seconds=n / event_rate)
                await producer.send(topic, mention_bytes(i, created, rng), key=f"bench:{i}".encode())
                if rate and n % 200 == 0:
                    due = started + n / rate
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
            await producer.flush()
        finally:
            await producer.stop()
        return count / (time.perf_counter() - started)

    async def first_output(self, timeout: float = 120.0) -> float:
        consumer = new_consumer(
            self.settings.topic(MENTIONS_ENRICHED.name),
            bootstrap_servers=self.bootstrap,
            settings=self.settings,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if await consumer.getmany(timeout_ms=100, max_records=1):
                    return time.perf_counter()
            raise TimeoutError("no enriched output: see the worker logs in " + str(self.workdir))
        finally:
            await consumer.stop()

    async def wait_drained(self, timeout: float = 900.0) -> float:
        deadline = time.monotonic() + timeout
        while not await drained(self.settings, self.bootstrap):
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a worker exited: see {self.workdir}")
            if time.monotonic() > deadline:
                raise TimeoutError("the pipeline did not drain in time")
            await asyncio.sleep(0.2)
        return time.perf_counter()

    async def signal_delays(self, since: float) -> list[float]:
        """Seconds from each window's closing point (end + lateness) to its signal's publication."""
        consumer = new_consumer(
            self.settings.topic(SIGNALS.name),
            bootstrap_servers=self.bootstrap,
            settings=self.settings,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        delays = []
        try:
            while batches := await consumer.getmany(timeout_ms=2000, max_records=10_000):
                for records in batches.values():
                    for record in records:
                        signal = Signal.model_validate_json(record.value)
                        closing = signal.window_end.timestamp() + self.settings.worker.allowed_lateness_seconds
                        if closing >= since and signal.mentions:
                            delays.append(record.timestamp / 1000 - closing)
        finally:
            await consumer.stop()
        return delays


async def run_bench(bootstrap: str, mentions: int, rate: float, seconds: float, workers: int, workdir: Path) -> dict:
    bench = Bench(bootstrap, workers, workdir)
    await ensure_topics(bootstrap, bench.settings)
    produce_rate = await bench.produce(mentions, 0, None, live=False, event_rate=rate)
    t0 = time.perf_counter()
    bench.start_workers()
    broker = broker_pid(bootstrap)
    try:
        first = await bench.first_output()
        worker_cpu, broker_cpu = sum(cpu_seconds(p.pid) for p in bench.procs), cpu_seconds(broker)
        done = await bench.wait_drained()
        worker_cpu = sum(cpu_seconds(p.pid) for p in bench.procs) - worker_cpu
        broker_cpu = cpu_seconds(broker) - broker_cpu
        startup = first - t0
        sustained = mentions / (done - first)
        rss_after_phase1 = [peak_rss_bytes(p.pid) for p in bench.procs]
        metric = "crisiswatch_processing_latency_seconds"
        before = histogram_buckets(bench.scrape(), metric)
        live_count = int(rate * seconds)
        live_started = time.time()
        achieved = await bench.produce(live_count, mentions, rate, live=True)
        await bench.wait_drained()
        await asyncio.sleep(bench.settings.worker.idle_flush_seconds + 2)
        after = histogram_buckets(bench.scrape(), metric)
        live = {bound: count - before.get(bound, 0.0) for bound, count in after.items()}
        latency = histogram_quantiles(live, (0.5, 0.9, 0.99))
        delays = await bench.signal_delays(live_started)
        rss = [peak_rss_bytes(p.pid) for p in bench.procs]
    finally:
        bench.stop_workers()
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "workers": workers,
        "phase1": {
            "mentions": mentions,
            "preload_produce_per_second": round(produce_rate),
            "worker_startup_seconds": round(startup, 2),
            "sustained_mentions_per_second": round(sustained),
            # CPU time per mention while draining: what the rate would be with a dedicated core per process
            "worker_cpu_us_per_mention": round(worker_cpu / mentions * 1e6, 1),
            "broker_cpu_us_per_mention": round(broker_cpu / mentions * 1e6, 1) if broker else None,
            "peak_rss_mb_per_worker": [round(r / 2**20) for r in rss_after_phase1],
        },
        "phase2": {
            "target_rate": rate,
            "achieved_produce_rate": round(achieved),
            "seconds": seconds,
            "processing_latency_seconds": latency,
            "window_decision_delay_seconds": {
                "count": len(delays),
                "p50": percentile(delays, 0.5),
                "p99": percentile(delays, 0.99),
                "max": max(delays) if delays else float("nan"),
            },
        },
        "peak_rss_mb_per_worker": [round(r / 2**20) for r in rss],
    }


def markdown(result: dict) -> str:
    p1, p2 = result["phase1"], result["phase2"]
    d = p2["window_decision_delay_seconds"]
    lat = p2["processing_latency_seconds"]
    target = "met" if p1["sustained_mentions_per_second"] >= 10_000 else "NOT met"
    return "\n".join(
        [
            "# Pipeline benchmark",
            "",
            f"Machine: {result['machine']['cpus']} CPUs, Python {result['machine']['python']}; "
            f"{result['workers']} worker process(es) + the embedded broker on the same machine.",
            "",
            "| measure | value |",
            "| --- | --- |",
            f"| mentions (phase 1) | {p1['mentions']:,} |",
            f"| sustained end to end (raw → enriched → windows → risk) | **{p1['sustained_mentions_per_second']:,}/s** "
            f"(target 10,000/s: {target}) |",
            f"| CPU per mention while draining: workers / broker | {p1['worker_cpu_us_per_mention']} µs / "
            f"{p1['broker_cpu_us_per_mention'] if p1['broker_cpu_us_per_mention'] is not None else 'n/a'} µs |",
            f"| preload producer rate | {p1['preload_produce_per_second']:,}/s |",
            f"| worker start-up to first output | {p1['worker_startup_seconds']} s |",
            f"| phase 2 rate (target / achieved) | {p2['target_rate']:,.0f} / {p2['achieved_produce_rate']:,}/s "
            f"for {p2['seconds']} s |",
            f"| window decision delay p50 / p99 / max | {d['p50']:.3f} / {d['p99']:.3f} / {d['max']:.3f} s "
            f"({d['count']} windows) |",
            f"| peak RSS per worker | {', '.join(str(r) for r in result['peak_rss_mb_per_worker'])} MB |",
            f"| phase 2 processing latency p50 / p90 / p99 (raw record → counted in its window) | "
            f"{lat['p50']:.3f} / {lat['p90']:.3f} / **{lat['p99']:.3f} s** (target p99 < 2 s: "
            f"{'met' if lat['p99'] < 2 else 'NOT met'}) |",
            "",
        ]
    )


def run_pipeline_bench(
    mentions: int = 200_000, rate: float = 10_000, seconds: float = 20, workers: int = 1, out: Path = Path("reports")
) -> dict:
    """Run the benchmark (embedded broker unless KAFKA_BOOTSTRAP_SERVERS is set) and write the report."""
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="crisiswatch-bench-"))
    with broker_for(Settings()) as bootstrap:
        result = asyncio.run(run_bench(bootstrap, mentions, rate, seconds, workers, workdir))
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench-pipeline.json").write_text(json.dumps(result, indent=2))
    (out / "bench-pipeline.md").write_text(markdown(result))
    print(markdown(result))
    return result

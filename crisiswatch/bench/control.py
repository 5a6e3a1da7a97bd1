"""`crisiswatch bench control`: how fast a pause reaches the broker and every publishing gate.

Targets: a critical alert becomes a signed control message acknowledged by the broker (``acks=all``)
in at most 1 s at p99, and every running gate reflects a control message in at most 1 s at p99 with
50 gates following the topic.

Set-up: one `ControlPlane` and N `PublishingGate`s (each with its own Kafka consumer, as N publishing
services would have) in this process, on the embedded broker unless ``KAFKA_BOOTSTRAP_SERVERS`` names
a cluster. Each round is one change of the ``global`` scope, alternately a detector pause for a new
alert and a person's resume, at a random phase (50-150 ms apart) so that rounds do not line up with
the gates' fetch cycles. Measured per round:

* alert -> ack: from calling `ControlPlane.pause`/`resume` to the broker's acknowledgement of the
  signed control message (the call itself also appends the audit record; reported separately);
* ack -> gate: from that acknowledgement to the moment each gate has verified and applied the message
  (every gate, every round), and to the moment the *last* of the N gates has (the "every gate" figure).

The report goes to ``reports/bench-control.md`` and ``.json``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import platform
import random
import resource
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from crisiswatch.broker import broker_for
from crisiswatch.control import ControlPlane, PublishingGate
from crisiswatch.control.keys import generate_key_pair
from crisiswatch.control.view import Ingested
from crisiswatch.settings import Settings

TARGET_SECONDS = 1.0


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p95/p99/max (nearest rank) in seconds, rounded to 0.1 ms."""
    if not values:
        return {"count": 0, "p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered), max(1, math.ceil(q * len(ordered)))) - 1]

    return {
        "count": len(ordered),
        "p50": round(rank(0.50), 4),
        "p95": round(rank(0.95), 4),
        "p99": round(rank(0.99), 4),
        "max": round(ordered[-1], 4),
    }


async def measure(settings: Settings, gates: int, rounds: int, warmup: int = 4) -> dict:
    plane = ControlPlane.from_settings(settings)
    await plane.start()
    applied: list[dict[int, float]] = [{} for _ in range(gates)]

    def recorder(index: int):
        def record(result: Ingested) -> None:
            if result.changed and result.message is not None:
                applied[index][result.message.seq] = time.perf_counter()

        return record

    followers = [PublishingGate.from_settings(settings, name=f"bench-gate-{i:02d}") for i in range(gates)]
    for index, gate in enumerate(followers):
        gate.add_listener(recorder(index))
    started = time.perf_counter()
    await asyncio.gather(*(gate.start() for gate in followers))
    ready = await asyncio.gather(*(gate.wait_ready(60) for gate in followers))
    if not all(ready):
        raise RuntimeError(f"only {sum(ready)} of {gates} gates caught up")
    startup = time.perf_counter() - started

    alert_to_ack, call_seconds, per_gate, every_gate, end_to_end = [], [], [], [], []
    missed = 0
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    wall_before = time.perf_counter()
    rng = random.Random(7)
    try:
        for round_no in range(warmup + rounds):
            await asyncio.sleep(rng.uniform(0.05, 0.15))
            t0 = time.perf_counter()
            if round_no % 2 == 0:
                result = await plane.pause(
                    "global", reason="benchmark crisis", actor="detector", alert_id=f"bench-alert-{round_no}"
                )
            else:
                result = await plane.resume("global", reason="benchmark all clear", actor="bench-operator")
            t_return = time.perf_counter()
            assert result.changed and result.message is not None and plane.last_acked_at is not None
            t_ack, seq = plane.last_acked_at, result.message.seq
            deadline = time.perf_counter() + 5.0
            while any(seq not in seen for seen in applied) and time.perf_counter() < deadline:
                await asyncio.sleep(0.002)
            if round_no < warmup:
                continue
            times = [seen.get(seq) for seen in applied]
            missed += sum(t is None for t in times)
            reached = [t for t in times if t is not None]
            alert_to_ack.append(t_ack - t0)
            call_seconds.append(t_return - t0)
            per_gate.extend(t - t_ack for t in reached)
            if len(reached) == gates:
                every_gate.append(max(reached) - t_ack)
                end_to_end.append(max(reached) - t0)
        usage_after = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.perf_counter() - wall_before

        gate = followers[0]
        calls = 100_000
        t = time.perf_counter()
        for _ in range(calls):
            gate.allowed(channel="twitter", account="acme_us", brand="acme")
        allowed_us = (time.perf_counter() - t) / calls * 1e6
    finally:
        await asyncio.gather(*(gate.stop() for gate in followers))
        await plane.stop()

    cpu = (usage_after.ru_utime + usage_after.ru_stime) - (usage_before.ru_utime + usage_before.ru_stime)
    result = {
        "gates": gates,
        "rounds": rounds,
        "alert_to_ack_seconds": percentiles(alert_to_ack),
        "pause_call_seconds": percentiles(call_seconds),
        "ack_to_each_gate_seconds": percentiles(per_gate),
        "ack_to_every_gate_seconds": percentiles(every_gate),
        "alert_to_every_gate_seconds": percentiles(end_to_end),
        "gate_updates_missed": missed,
        "gates_startup_seconds": round(startup, 3),
        "allowed_call_microseconds": round(allowed_us, 2),
        "process_cpu_percent_of_one_core": round(100 * cpu / wall, 1),
    }
    result["targets"] = {
        "alert_to_ack_p99_le_1s": result["alert_to_ack_seconds"]["p99"] <= TARGET_SECONDS,
        "every_gate_p99_le_1s": result["ack_to_every_gate_seconds"]["p99"] <= TARGET_SECONDS and missed == 0,
    }
    return result


def markdown(result: dict) -> str:
    def row(label: str, key: str) -> str:
        p = result[key]
        return f"| {label} | {p['p50'] * 1000:.1f} | {p['p95'] * 1000:.1f} | **{p['p99'] * 1000:.1f}** | " \
               f"{p['max'] * 1000:.1f} | {p['count']} |"  # fmt: skip

    met = {True: "met", False: "NOT met"}
    t = result["targets"]
    return "\n".join(
        [
            "# Control plane benchmark",
            "",
            f"{result['when']} on {result['machine']}; broker: {result['broker']}; "
            f"{result['gates']} gates (one Kafka consumer each) in one process; {result['rounds']} changes.",
            "",
            "| latency (ms) | p50 | p95 | p99 | max | samples |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            row("alert → signed control message acked by the broker", "alert_to_ack_seconds"),
            row("whole `pause()`/`resume()` call (incl. audit append)", "pause_call_seconds"),
            row("ack → one gate reflects it", "ack_to_each_gate_seconds"),
            row(f"ack → **every** one of {result['gates']} gates reflects it", "ack_to_every_gate_seconds"),
            row("alert → every gate reflects it", "alert_to_every_gate_seconds"),
            "",
            f"- Target alert → ack p99 ≤ 1 s: **{met[t['alert_to_ack_p99_le_1s']]}**.",
            f"- Target control message → every gate p99 ≤ 1 s with {result['gates']} gates: "
            f"**{met[t['every_gate_p99_le_1s']]}** ({result['gate_updates_missed']} gate updates missed).",
            f"- `PublishingGate.allowed()` costs {result['allowed_call_microseconds']} µs per call (in memory).",
            f"- {result['gates']} gates caught up from start in {result['gates_startup_seconds']} s; the process "
            f"(plane + gates) used {result['process_cpu_percent_of_one_core']} % of one core while changes ran.",
            "",
        ]
    )


def run_control_bench(settings: Settings, *, gates: int = 50, rounds: int = 200, out: Path = Path("reports")) -> dict:
    """Run the benchmark (embedded broker unless a cluster is configured) and write the report."""
    logging.getLogger("crisiswatch.control").setLevel(logging.ERROR)  # one line per change is noise here
    tag = secrets.token_hex(4)
    keys = settings.control.control_keys or SecretStr(generate_key_pair("bench").private)
    with broker_for(settings) as bootstrap:
        bench_settings = settings.model_copy(
            update={"bootstrap_servers": bootstrap, "topic_prefix": f"bench-{tag}.", "control_keys": keys}
        )
        result = asyncio.run(measure(bench_settings, gates, rounds))
    result["broker"] = "configured cluster" if settings.kafka.bootstrap_servers else "embedded Tansu (memory)"
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    result["when"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench-control.json").write_text(json.dumps(result, indent=2))
    (out / "bench-control.md").write_text(markdown(result))
    print(markdown(result))
    return result

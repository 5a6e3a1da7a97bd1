"""End to end on the real broker: the demo crisis, poison records, and a worker killed mid-stream.

The worker runs as a separate process (``crisiswatch worker``), as in production.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from conftest import read_all

from crisiswatch import demo
from crisiswatch.connectors.sink import MentionSink
from crisiswatch.contracts.records import DeadLetter, EnrichedMention, Signal
from crisiswatch.contracts.topics import ALERTS, MENTIONS_DLQ, MENTIONS_ENRICHED, SIGNALS
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control import PublishingGate
from crisiswatch.kafka import ensure_topics
from crisiswatch.runner import drained, run_pipeline, start_worker, stop_process
from crisiswatch.settings import Settings


async def window_counts(bootstrap: str, settings: Settings) -> dict[tuple[str, datetime], int]:
    """Mentions per (brand, window) by the latest signal of each window (a re-emitted window replaces)."""
    per_window: dict[tuple[str, datetime], int] = {}
    for record in await read_all(bootstrap, settings.topic(SIGNALS.name)):
        s = Signal.model_validate_json(record.value)
        per_window[(s.brand, s.window_start)] = s.mentions
    return per_window


async def test_demo_crisis_pauses_and_viral_spike_does_not(
    kafka_bootstrap: str,
    pipeline_settings: tuple[Settings, dict[str, str], Path],
    tmp_path: Path,
    example_publisher: ModuleType,
) -> None:
    """The demo end to end, with the example publisher embedding a gate: the crisis pauses it within 1 s."""
    settings, env, data = pipeline_settings
    await ensure_topics(kafka_bootstrap, settings)
    gate_settings = Settings(bootstrap_servers=kafka_bootstrap)  # the worker's topic prefix and key (env)
    gate = PublishingGate.from_settings(gate_settings, name="example-publisher")
    paused_at: list[float] = []
    gate.add_listener(lambda r: paused_at.append(time.time()) if r.changed and r.message.state == "paused" else None)
    await gate.start()
    assert await gate.wait_ready(10)
    posts = example_publisher.demo_posts(2000, 0.1, start=utcnow() + timedelta(seconds=1))
    publisher = example_publisher.ExamplePublisher(gate, posts)
    publishing = asyncio.create_task(publisher.run())
    lines: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    try:
        report = await run_pipeline(
            settings,
            kafka_bootstrap,
            data,
            speed=0,
            until_idle=True,
            emit=lines.append,
            env_extra=env,
            log_path=tmp_path / "worker.log",
            idle_timeout=240,
            note=notes.append,
        )
    finally:
        publishing.cancel()
        await asyncio.gather(publishing, return_exceptions=True)
        await gate.stop()
    crisis_brand, crisis_start, _ = demo.CRISIS
    viral_brand, _, _ = demo.VIRAL
    critical = [a for a in report.alerts if a["brand"] == crisis_brand and a["severity"] == "critical"]
    assert critical, f"no critical alert for the crisis: {report.alerts}"
    first = datetime.fromisoformat(critical[0]["event_time"].replace("Z", "+00:00"))
    assert first - crisis_start <= timedelta(minutes=15), f"crisis detected late: {first}"
    pauses = [c for c in report.controls if c["state"] == "paused"]
    assert len(pauses) == 1 and pauses[0]["scope"] == f"brand:{crisis_brand}"  # brand scope first (the default)
    assert pauses[0]["alert_id"] == critical[0]["alert_id"]
    # the decision (the alert asking for the pause, as the broker stamped it) reached the publisher's gate fast
    records = await read_all(kafka_bootstrap, settings.topic(ALERTS.name), 1.0)
    asked = [r for r in records if json.loads(r.value)["pause"]]
    assert len(asked) == 1 and len(paused_at) == 1
    assert paused_at[0] - asked[0].timestamp / 1000 <= 1.0, "the gate saw the pause more than 1 s after the decision"
    brand_of = {post.post_id: post.brand for post in posts}
    during = [(brand_of[p], how) for p, at, how in publisher.published if at.timestamp() > paused_at[0]]
    assert ("on-time" not in {how for b, how in during if b == crisis_brand}), "published during its pause"
    assert any(b != crisis_brand for b, _ in during), "the other brands kept publishing"
    assert publisher.deferred, "posts fell due during the pause and were deferred"
    waited = {brand_of[p] for p, at, _ in publisher.deferred if at.timestamp() > paused_at[0]}
    assert waited == {crisis_brand}, "only the paused brand's posts waited"
    assert all(a["severity"] != "critical" for a in report.alerts if a["brand"] == viral_brand)
    viral_start = demo.VIRAL[1].isoformat().replace("+00:00", "Z")
    seen = [n for n in notes if n["brand"] == viral_brand and n["event_time"] >= viral_start]
    assert seen, f"the viral volume spike went unnoticed: {notes}"
    assert report.dead_letters == len(demo.POISON)
    assert len(lines) == len(report.alerts) + len(report.controls)


async def test_poison_records_go_to_the_dlq_while_good_ones_flow(
    kafka_bootstrap: str, pipeline_settings: tuple[Settings, dict[str, str], Path], tmp_path: Path
) -> None:
    settings, env, _ = pipeline_settings
    await ensure_topics(kafka_bootstrap, settings)
    now = datetime.now(UTC) - timedelta(minutes=30)
    poison = {
        b'{"id": "p1", "text": "no closing brace"': "invalid_json",
        b'{"id": "p2", "source": "x", "created_at": "2026-03-02T07:00:00Z"}': "invalid_record",
        b'{"id": "p3", "source": "x", "text": "hi acme", "created_at": "tuesday"}': "bad_timestamp",
        b"\xc3\x28 invalid utf-8": "invalid_utf8",
        b'{"id": "p5", "source": "x", "text": "' + b"a" * 300_000 + b'", "created_at": "2026-03-02T07:00:00Z"}': (
            "oversized"
        ),
    }
    worker = start_worker(settings, kafka_bootstrap, env, tmp_path / "worker.log")
    try:
        async with MentionSink(settings, kafka_bootstrap) as sink:
            for i in range(300):
                created = (now + timedelta(seconds=i)).isoformat()
                good = {"id": f"good:{i}", "source": "forum", "text": f"Acme review number {i}", "created_at": created}
                await sink.send_raw(json.dumps(good).encode(), f"good:{i}".encode())
                if i % 60 == 0:
                    value = list(poison)[i // 60]
                    await sink.send_raw(value, None)
        deadline = time.monotonic() + 90
        while not await drained(settings, kafka_bootstrap):
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "pipeline did not drain"
            await asyncio.sleep(0.5)
        assert worker.poll() is None, "the worker must survive poison records"
    finally:
        stop_process(worker)
    dlq = [
        DeadLetter.model_validate_json(r.value)
        for r in await read_all(kafka_bootstrap, settings.topic(MENTIONS_DLQ.name))
    ]
    import base64

    assert sorted(d.reason for d in dlq) == sorted(poison.values())
    for d in dlq:
        assert poison[base64.b64decode(d.original_b64)] == d.reason
    enriched = {
        EnrichedMention.model_validate_json(r.value).id
        for r in await read_all(kafka_bootstrap, settings.topic(MENTIONS_ENRICHED.name))
    }
    assert enriched == {f"good:{i}" for i in range(300)}


async def test_worker_killed_mid_stream_resumes_without_losing_mentions(
    kafka_bootstrap: str, pipeline_settings: tuple[Settings, dict[str, str], Path], tmp_path: Path
) -> None:
    settings, env, _ = pipeline_settings
    await ensure_topics(kafka_bootstrap, settings)
    start = datetime.now(UTC) - timedelta(hours=2)
    total = 20_000
    async with MentionSink(settings, kafka_bootstrap) as sink:
        for i in range(total):
            created = (start + timedelta(seconds=i * 0.3)).isoformat()
            brand = ("Acme", "Globex", "Initech")[i % 3]
            item = {"id": f"r:{i}", "source": "forum", "text": f"{brand} mention {i}", "created_at": created}
            await sink.send_raw(json.dumps(item).encode(), f"r:{i}".encode())
    log = tmp_path / "worker.log"
    first = start_worker(settings, kafka_bootstrap, env, log)
    enriched_topic = settings.topic(MENTIONS_ENRICHED.name)
    deadline = time.monotonic() + 120
    while len(await read_all(kafka_bootstrap, enriched_topic, timeout=0.5)) < total // 4:
        assert time.monotonic() < deadline and first.poll() is None, log.read_text()[-3000:]
        await asyncio.sleep(0.5)
    first.send_signal(signal.SIGKILL)  # no chance to flush or commit
    first.wait()
    second = start_worker(settings, kafka_bootstrap, env, log)
    try:
        deadline = time.monotonic() + 180
        while not await drained(settings, kafka_bootstrap):
            assert time.monotonic() < deadline and second.poll() is None, log.read_text()[-3000:]
            await asyncio.sleep(1.0)
        # Drained can be true before the new worker's stages have even joined (the first one may have
        # processed and checkpointed everything): the last windows close once the new one idles for a while.
        deadline = time.monotonic() + 60
        while sum((await window_counts(kafka_bootstrap, settings)).values()) < total:
            assert time.monotonic() < deadline and second.poll() is None, log.read_text()[-3000:]
            await asyncio.sleep(1.0)
    finally:
        stop_process(second)
    enriched = [EnrichedMention.model_validate_json(r.value) for r in await read_all(kafka_bootstrap, enriched_topic)]
    ids = {m.id for m in enriched}
    assert ids == {f"r:{i}" for i in range(total)}, "mentions were lost"
    per_window = await window_counts(kafka_bootstrap, settings)
    assert sum(per_window.values()) == total, "window counts must count every mention exactly once"

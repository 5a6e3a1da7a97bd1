"""`crisiswatch backtest`: the worker's decision code in process, its scores, and its agreement with the worker."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import read_all

from crisiswatch import demo
from crisiswatch.backtest.engine import BacktestResult, PauseEvent
from crisiswatch.backtest.report import run_backtest
from crisiswatch.backtest.scoring import score
from crisiswatch.contracts.records import Alert
from crisiswatch.contracts.topics import ALERTS
from crisiswatch.kafka import ensure_topics
from crisiswatch.runner import run_pipeline
from crisiswatch.settings import Settings

T0 = datetime(2026, 9, 1, tzinfo=UTC)


async def read_alerts(bootstrap: str, topic: str) -> list[Alert]:
    return [Alert.model_validate_json(r.value) for r in await read_all(bootstrap, topic, 2.0)]


def decisions(alerts: list[Alert]) -> list[dict[str, Any]]:
    """What must agree: everything an alert says, but the wall-clock time it was written."""
    return [a.model_dump(mode="json", exclude={"created_at"}) for a in sorted(alerts, key=lambda a: a.event_time)]


async def test_backtest_and_worker_make_the_same_decisions_on_the_same_stream(
    kafka_bootstrap: str, pipeline_settings: tuple[Settings, dict[str, str], Path], tmp_path: Path
) -> None:
    """The demo through the worker on the broker, and through `run_backtest` in process: the same alerts."""
    settings, env, data = pipeline_settings
    await ensure_topics(kafka_bootstrap, settings)
    await run_pipeline(
        settings, kafka_bootstrap, data, speed=0, until_idle=True, emit=lambda _: None, env_extra=env,
        log_path=tmp_path / "worker.log", idle_timeout=240,
    )  # fmt: skip
    from_worker = await read_alerts(kafka_bootstrap, settings.topic(ALERTS.name))
    run = run_backtest(data, settings, settings.risk.policy(), tmp_path / "backtest", pictures=False)
    assert from_worker, "the worker raised no alert on the demo"
    in_process, on_kafka = decisions(run.result.alerts), decisions(from_worker)
    assert len(in_process) == len(on_kafka), (len(in_process), len(on_kafka))
    for mine, theirs in zip(in_process, on_kafka, strict=True):
        differ = {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs.get(k) and k != "evidence"}
        differ.update({
            f"evidence.{k}": (v, theirs["evidence"].get(k)) for k, v in mine["evidence"].items()
            if v != theirs["evidence"].get(k)
        })  # fmt: skip
        assert not differ, json.dumps(differ)[:3000]
        assert not differ, differ
    assert run.enriched.dead_letters.total() == len(demo.POISON)


def test_backtest_writes_its_report_pictures_and_a_reusable_cache(tmp_path: Path) -> None:
    data, brands = demo.write_demo(tmp_path)
    settings = Settings(brands_file=brands)
    first = run_backtest(data, settings, settings.risk.policy(), tmp_path / "out")
    assert not first.enriched.cached
    assert (tmp_path / "out" / "report.md").read_text().startswith("# Backtest report")
    assert (tmp_path / "out" / "timeline-globex.png").read_bytes()[:4] == b"\x89PNG"
    timelines = json.loads((tmp_path / "out" / "timelines.json").read_text())
    assert set(timelines) == {"acme", "globex", "initech"}
    assert len(timelines["globex"]["start"]) == len(timelines["globex"]["risk"]) > 300
    second = run_backtest(data, settings, settings.risk.policy(), tmp_path / "out", pictures=False)
    assert second.enriched.cached
    assert decisions(second.result.alerts) == decisions(first.result.alerts)


class Event:
    def __init__(self, brand: str, name: str, start: datetime, minutes: int, expect_pause: bool):
        self.brand, self.name, self.kind = brand, name, "crisis" if expect_pause else "decoy"
        self.start, self.end, self.expect_pause = start, start + timedelta(minutes=minutes), expect_pause


def alert(brand: str, alert_id: str, at: datetime, severity: str, pause: bool = False) -> Alert:
    return Alert(
        alert_id=alert_id, brand=brand, severity=severity, risk=80.0 if severity == "critical" else 50.0,
        event_time=at, window_start=at - timedelta(minutes=1), summary="s", pause=pause, created_at=at,
    )  # fmt: skip


def test_scores_count_caught_crises_delays_and_false_alarms_per_brand_day() -> None:
    day = timedelta(days=1)
    crisis_start = T0 + 2 * day
    alerts = [
        alert("a", "a:1", T0 + 3 * timedelta(hours=1), "critical", pause=True),  # first day: apart
        alert("a", "a:2", crisis_start + timedelta(minutes=2), "warning"),
        alert("a", "a:2", crisis_start + timedelta(minutes=4), "critical", pause=True),  # caught after 4 min
        alert("a", "a:3", T0 + 3 * day, "critical"),  # steady state false critical
        alert("b", "b:1", T0 + 4 * day, "warning"),  # a warning
    ]
    result = BacktestResult(
        alerts=alerts,
        pauses=[PauseEvent(a.event_time.timestamp(), "brand:a", a) for a in alerts if a.pause],
        first_mention={"a": T0.timestamp(), "b": T0.timestamp()},
        last_mention={"a": (T0 + 5 * day).timestamp(), "b": (T0 + 5 * day).timestamp()},
    )
    events = [Event("a", "explosion", crisis_start, 60, True), Event("b", "viral", T0 + 4 * day, 30, False)]
    s = score(result, events).summary()
    assert s["crises_caught"] == 1 and s["median_delay_minutes"] == 4.0 and s["crises_paused"] == 1
    assert s["brand_days"] == 10.0 and s["first_brand_days"] == 2.0
    assert s["false_criticals_steady"] == 1 and s["false_criticals_first_day"] == 1
    assert s["false_pauses_steady"] == 0 and s["false_pauses_first_day"] == 1
    assert s["warnings"] == 1 and s["decoys"] == 1


def corpus_slice(shared: Path, tmp_path: Path) -> tuple[Path, Path, list[Any]]:
    """Two days of the check corpus's two quieter brands (about 43,000 mentions): the mentions, brands and events."""
    from crisiswatch.scenarios.generate import generate_corpus
    from crisiswatch.scenarios.labels import load_labels

    out = tmp_path / "corpus"
    generate_corpus(out, split="check", days=2, brands=3, data=shared)
    labels = load_labels(out / "labels.json")
    keep = sorted(labels.brands, key=lambda b: labels.brands[b].rate_per_minute)[:2]
    names = [labels.brands[b].name.lower() for b in keep]
    dropped = [labels.brands[b].name.lower() for b in labels.brands if b not in keep]
    mentions = tmp_path / "slice.jsonl"
    with gzip.open(out / "mentions.jsonl.gz", "rt", encoding="utf-8") as source, mentions.open("w") as sink:
        for line in source:
            low = line.lower()
            if any(n in low for n in names) and not any(n in low for n in dropped):
                sink.write(line)
    return mentions, out / "brands.yaml", [e for e in labels.events if e.brand in keep]


@pytest.mark.data
async def test_two_days_of_realistic_traffic_pause_for_the_crisis_only_and_worker_agrees(
    kafka_bootstrap: str, settings: Settings, shared_data: Path, tmp_path: Path
) -> None:
    """Real volume shapes and tweets, decoys included: only crises pause; the worker and the backtest agree."""
    from conftest import worker_env

    mentions, brands, events = corpus_slice(shared_data, tmp_path)
    saved = dict(os.environ)
    try:
        env = worker_env(settings, brands)
        worker_settings = Settings(bootstrap_servers=kafka_bootstrap)
        await ensure_topics(kafka_bootstrap, worker_settings)
        await run_pipeline(
            worker_settings, kafka_bootstrap, mentions, speed=0, until_idle=True, emit=lambda _: None,
            env_extra=env, log_path=tmp_path / "worker.log", idle_timeout=400,
        )  # fmt: skip
        from_worker = await read_alerts(kafka_bootstrap, worker_settings.topic(ALERTS.name))
        policy = worker_settings.risk.policy()
        run = run_backtest(mentions, worker_settings, policy, tmp_path / "bt", events, pictures=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert decisions(run.result.alerts) == decisions(from_worker)
    s = run.scores.summary() if run.scores else {}
    assert s["false_pauses_steady"] == 0 and s["false_pauses_first_day"] == 0, s
    assert s["false_criticals_steady"] == 0, s
    assert s["crises_paused"] >= 1, s
    first_day = min(run.result.first_mention.values()) + 86400
    assert not [p for p in run.result.pauses if p.time < first_day], "a brand paused on its first day"
    assert any(a.pause for a in from_worker), "the worker asked for the crisis pause"


async def test_an_immature_brand_warns_but_never_pauses_on_the_broker(
    kafka_bootstrap: str, pipeline_settings: tuple[Settings, dict[str, str], Path], tmp_path: Path
) -> None:
    """The demo crisis without its day of history: critical, 'would pause', and no pause on the control topic."""
    settings, env, data = pipeline_settings
    history_end = (demo.START + demo.HISTORY).isoformat().replace("+00:00", "Z")
    young = tmp_path / "young.jsonl"
    with data.open("rb") as source, young.open("wb") as sink:
        for line in source:
            try:
                keep = json.loads(line).get("created_at", "") >= history_end
            except (ValueError, AttributeError):  # the demo's poison records stay in
                keep = True
            if keep:
                sink.write(line)
    await ensure_topics(kafka_bootstrap, settings)
    report = await run_pipeline(
        settings, kafka_bootstrap, young, speed=0, until_idle=True, emit=lambda _: None, env_extra=env,
        log_path=tmp_path / "worker.log", idle_timeout=240,
    )  # fmt: skip
    critical = [a for a in report.alerts if a["severity"] == "critical"]
    assert critical, report.alerts
    assert not [c for c in report.controls if c["state"] == "paused"], report.controls
    alerts = await read_alerts(kafka_bootstrap, settings.topic(ALERTS.name))
    worst = next(a for a in alerts if a.severity == "critical")
    assert worst.evidence.would_pause is True and not worst.pause
    assert any("would pause, but the brand has only" in line for line in worst.explanation)

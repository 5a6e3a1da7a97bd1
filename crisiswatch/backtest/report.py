"""`run_backtest`: enrich (or reuse the cache), decide, score, draw, and write the report.

Writes into the output folder:

* ``report.md``: scores, every pause and every critical with the evidence a PR person checks, then every
  alert as one line;
* ``report.json``: the same as data (alerts with their whole evidence);
* ``timeline-<brand>.png`` and ``timelines.json``: the pictures and the data behind them (also what the
  page draws).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crisiswatch.detectors.risk import RiskPolicy
from crisiswatch.settings import Settings

from .engine import Backtest, BacktestResult, iso, read_enriched
from .enriched import EnrichedFile, enrich_file
from .scoring import Scores, episodes_of, score


@dataclass
class BacktestRun:
    """A finished backtest: its inputs' counts, result, scores (with labels) and timings."""

    enriched: EnrichedFile
    result: BacktestResult
    scores: Scores | None
    policy: RiskPolicy
    enrich_seconds: float
    decide_seconds: float
    out: Path

    @property
    def decide_rate(self) -> float:
        return self.result.mentions / self.decide_seconds if self.decide_seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        result = self.result
        out: dict[str, Any] = {
            "raw_records": self.enriched.raw,
            "dead_letters": dict(self.enriched.dead_letters),
            "duplicates": self.enriched.duplicates,
            "unmatched": self.enriched.unmatched,
            "brand_mentions": result.mentions,
            "windows": result.windows,
            "alerts": len(result.alerts),
            "criticals": sum(1 for e in episodes_of(result.alerts) if e.critical_at is not None),
            "pauses": len(result.pauses),
            "enrich_seconds": round(self.enrich_seconds, 2),
            "enrichment_cached": self.enriched.cached,
            "decide_seconds": round(self.decide_seconds, 2),
            "decide_mentions_per_second": round(self.decide_rate),
        }
        if self.scores is not None:
            out["scores"] = self.scores.summary()
        return out


def run_backtest(
    mentions: Path,
    settings: Settings,
    policy: RiskPolicy,
    out: Path,
    events: Sequence[Any] = (),
    pictures: bool = True,
    progress: Callable[[int], None] | None = None,
) -> BacktestRun:
    """Backtest ``mentions`` under ``policy``; score against ``events`` when given; write the report to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    enriched = enrich_file(mentions, settings, out / "cache", progress)
    enrich_seconds = time.perf_counter() - started
    started = time.perf_counter()
    result = Backtest(settings, policy).run(lambda: read_enriched(enriched.path))
    decide_seconds = time.perf_counter() - started
    scores = score(result, events, maturity_seconds=policy.maturity_seconds) if events else None
    run = BacktestRun(enriched, result, scores, policy, enrich_seconds, decide_seconds, out)
    write_report(run, events, pictures)
    return run


def write_report(run: BacktestRun, events: Sequence[Any], pictures: bool) -> None:
    """Write ``report.md``, ``report.json``, ``timelines.json`` and the pictures."""
    out, result = run.out, run.result
    episodes = episodes_of(result.alerts)
    images: dict[str, str] = {}
    if pictures:
        from .plot import draw_brand  # matplotlib only when drawing

        for brand, timeline in sorted(result.timelines.items()):
            path = draw_brand(
                brand,
                timeline,
                run.policy,
                [e for e in episodes if e.brand == brand],
                [p for p in result.pauses if p.alert.brand == brand],
                [e for e in events if e.brand == brand],
                out / f"timeline-{brand}.png",
            )
            images[brand] = path.name
    (out / "timelines.json").write_text(
        json.dumps({brand: t.to_dict() for brand, t in result.timelines.items()}, separators=(",", ":"))
    )
    data = {
        "summary": run.summary(),
        "policy": run.policy.to_dict(),
        "alerts": [a.model_dump(mode="json") for a in result.alerts],
        "pauses": [{"time": iso(p.time), "scope": p.scope, "alert_id": p.alert.alert_id} for p in result.pauses],
        "pictures": images,
    }
    if run.scores is not None:
        s = run.scores
        data["crises"] = [
            {"brand": c.brand, "name": c.name, "start": iso(c.start), "critical_at": iso(c.critical_at or float("nan")),
             "delay_minutes": None if c.delay_seconds is None else round(c.delay_seconds / 60, 1),
             "paused_at": iso(c.paused_at or float("nan"))}
            for c in s.crises
        ]
        data["decoys"] = [
            {"brand": d.brand, "name": d.name, "start": iso(d.start), "worst": d.worst, "paused": d.paused}
            for d in s.decoys
        ]
    (out / "report.json").write_text(json.dumps(data, indent=1, ensure_ascii=False))
    (out / "report.md").write_text(markdown(run, images))


def markdown(run: BacktestRun, images: dict[str, str]) -> str:
    """The human report."""
    result, summary = run.result, run.summary()
    lines = [
        "# Backtest report",
        "",
        f"{summary['raw_records']:,} raw records → {summary['brand_mentions']:,} brand mentions "
        f"({sum(summary['dead_letters'].values()):,} dead letters, {summary['duplicates']:,} duplicates, "
        f"{summary['unmatched']:,} matched no brand), {summary['windows']:,} windows.",
        f"Enrichment {summary['enrich_seconds']} s{' (cached)' if run.enriched.cached else ''}; decisions "
        f"{summary['decide_seconds']} s = {summary['decide_mentions_per_second']:,} mentions/s.",
        f"Alerts {summary['alerts']}, episodes reaching critical {summary['criticals']}, pauses {summary['pauses']}.",
        "",
    ]
    if run.scores is not None:
        s = run.scores.summary()
        lines += [
            "## Scores against the labels",
            "",
            "| measure | value |",
            "|---|---|",
            f"| crises caught (critical) | {s['crises_caught']} / {s['crises']} |",
            f"| … within 10 event-minutes | {s['crises_caught_within_10_min']} / {s['crises']} |",
            f"| … paused | {s['crises_paused']} / {s['crises']} |",
            f"| median / max delay to critical | {_minutes(s['median_delay_minutes'])} / "
            f"{_minutes(s['max_delay_minutes'])} |",
            f"| brand-days (steady / first day) | {s['steady_brand_days']} / {s['first_brand_days']} |",
            f"| false criticals, steady state | {s['false_criticals_steady']} "
            f"({s['false_criticals_steady_per_30_brand_days']} per 30 brand-days) |",
            f"| false criticals, first day | {s['false_criticals_first_day']} |",
            f"| false pauses, steady / first day | {s['false_pauses_steady']} / {s['false_pauses_first_day']} |",
            f"| warnings outside crises | {s['warnings']} ({s['warnings_per_brand_day']} per brand-day) |",
            f"| decoys reaching critical / paused | {s['decoys_critical']} / {s['decoys_paused']} of {s['decoys']} |",
            f"| NAB-style score (crises as windows) | {s['nab']} |",
            "",
            "| brand | crisis | start | critical after | paused after |",
            "|---|---|---|---|---|",
        ]
        for c in run.scores.crises:
            paused = "-" if c.paused_at is None else f"{(c.paused_at - c.start) / 60:.0f} min"
            lines.append(
                f"| {c.brand} | {c.name} | {iso(c.start)} | {_minutes(_delay(c.delay_seconds))} | {paused} |"
            )
        lines += ["", "| brand | decoy | start | worst | paused |", "|---|---|---|---|---|"]
        for d in run.scores.decoys:
            lines.append(f"| {d.brand} | {d.name} | {iso(d.start)} | {d.worst} | {'yes' if d.paused else 'no'} |")
        lines.append("")
    lines += ["## Pauses and criticals, with their evidence", ""]
    critical_ids = {e.alert_id for e in episodes_of(result.alerts) if e.critical_at is not None}
    shown: Counter[str] = Counter()
    for alert in result.alerts:
        if alert.alert_id not in critical_ids or alert.severity != "critical" or alert.status != "firing":
            continue
        if shown[alert.alert_id] and not alert.pause:
            continue
        shown[alert.alert_id] += 1
        head = "PAUSE" if alert.pause else "CRITICAL"
        lines.append(f"### {head} {iso(alert.event_time.timestamp())} {alert.brand} (risk {alert.risk:.0f})")
        lines.append("")
        lines.append(alert.summary)
        lines.append("")
        lines += [f"- {line}" for line in alert.explanation]
        lines.append("")
    lines += ["## Every alert", "", "| event time | brand | status | severity | risk | pause | summary |",
              "|---|---|---|---|---|---|---|"]
    for alert in result.alerts:
        lines.append(
            f"| {iso(alert.event_time.timestamp())} | {alert.brand} | {alert.status} | {alert.severity} | "
            f"{alert.risk:.0f} | {'yes' if alert.pause else ''} | {alert.summary.replace('|', '/')} |"
        )
    if images:
        lines += ["", "## Timelines", ""]
        lines += [f"![{brand}]({name})" for brand, name in sorted(images.items())]
    return "\n".join(lines) + "\n"


def _delay(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


def _minutes(value: float | None) -> str:
    return "missed" if value is None else f"{value:.0f} min"

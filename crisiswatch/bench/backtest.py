"""Backtest benchmark: how fast `crisiswatch backtest` replays a scenario corpus, and what it scores.

Runs `crisiswatch.backtest.report.run_backtest` twice on a corpus folder (``mentions.jsonl.gz``,
``brands.yaml``, ``labels.json``, as `crisiswatch corpus generate` writes them): once enriching, once from
the enrichment cache (what trying another policy costs), then the busiest brand alone (the "month of a
busy brand" target: 50,000 mentions/s). Writes ``bench-backtest.md`` and ``bench-backtest.json``.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any

from crisiswatch.settings import Settings

TARGET_RATE = 50_000.0


def run(corpus: Path, out: Path) -> dict[str, Any]:
    """Measure; return the report as data."""
    from crisiswatch.backtest.engine import Backtest, read_enriched
    from crisiswatch.backtest.report import run_backtest
    from crisiswatch.scenarios.labels import load_labels

    mentions = corpus / "mentions.jsonl.gz"
    if not mentions.is_file():
        raise FileNotFoundError(f"no corpus at {corpus}: run `crisiswatch corpus generate --out {corpus}` first")
    settings = Settings(brands_file=corpus / "brands.yaml")
    policy = settings.risk.policy()
    events = list(load_labels(corpus / "labels.json").events)
    work = out / "bench-backtest"
    first = run_backtest(mentions, settings, policy, work, events, pictures=False)
    second = run_backtest(mentions, settings, policy, work, events, pictures=False)
    counts: dict[str, int] = {}
    for m in read_enriched(second.enriched.path):
        counts[m.brand or ""] = counts.get(m.brand or "", 0) + 1
    busiest = max(counts, key=lambda b: counts[b])
    needle = f'"brand":"{busiest}"'.encode()
    with gzip.open(second.enriched.path, "rb") as handle:
        lines = [line for line in handle if needle in line]
    from crisiswatch.contracts.records import WindowedMention

    started = time.perf_counter()
    busy = Backtest(settings, policy).run(lambda: (WindowedMention.model_validate_json(x) for x in lines))
    busy_seconds = time.perf_counter() - started
    span_days = (busy.last_mention[busiest] - busy.first_mention[busiest]) / 86400.0
    busy_rate = busy.mentions / busy_seconds if busy_seconds else 0.0
    return {
        "corpus": str(corpus),
        "mentions": first.result.mentions,
        "windows": first.result.windows,
        "enrich_seconds": round(first.enrich_seconds, 1),
        "enrich_cached": first.enriched.cached,
        "enrich_rate": None if first.enriched.cached or not first.enrich_seconds else round(
            first.enriched.raw / first.enrich_seconds
        ),
        "decide_seconds": round(second.decide_seconds, 1),
        "decide_rate": round(second.decide_rate),
        "busiest_brand": busiest,
        "busiest_mentions": busy.mentions,
        "busiest_days": round(span_days, 1),
        "busiest_rate": round(busy_rate),
        "busy_month_seconds": round(busy_seconds * 30.0 / span_days, 1) if span_days else None,
        "target_rate": TARGET_RATE,
        "target_met": busy_rate >= TARGET_RATE,
        "scores": second.scores.summary() if second.scores else None,
    }


def markdown(r: dict[str, Any]) -> str:
    s = r.get("scores") or {}
    return "\n".join([
        "# Backtest benchmark",
        "",
        f"Corpus `{r['corpus']}`: {r['mentions']:,} brand mentions, {r['windows']:,} windows.",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        "| enrichment (first run) | " + _enrichment(r) + " | – |",
        f"| decisions, whole corpus (cached enrichment) | {r['decide_seconds']} s, "
        f"{r['decide_rate']:,} mentions/s | – |",
        f"| decisions, busiest brand alone ({r['busiest_brand']}, {r['busiest_mentions']:,} mentions over "
        f"{r['busiest_days']} days) | {r['busiest_rate']:,} mentions/s; a month in {r['busy_month_seconds']} s | "
        f"{TARGET_RATE:,.0f}/s: {'met' if r['target_met'] else 'NOT met'} |",
        "",
        "Scores: " + json.dumps(s),
        "",
    ])  # fmt: skip


def _enrichment(r: dict[str, Any]) -> str:
    if r["enrich_rate"] is None:
        return "cached by an earlier run"
    return f"{r['enrich_seconds']} s, {r['enrich_rate']:,} mentions/s"


def write_report(corpus: Path, out: Path) -> str:
    """Run and write ``bench-backtest.{md,json}`` into ``out``; return the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    result = run(corpus, out)
    text = markdown(result)
    (out / "bench-backtest.json").write_text(json.dumps(result, indent=1))
    (out / "bench-backtest.md").write_text(text)
    return text

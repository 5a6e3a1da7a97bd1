"""`crisiswatch backtest`: try a risk policy on a history of mentions before turning auto-pause on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from crisiswatch.detectors.risk import RiskPolicy
from crisiswatch.settings import Settings

from .report import BacktestRun, run_backtest


def load_policy(settings: Settings, path: Path | None) -> RiskPolicy:
    """The worker's policy (settings), with the fields of a YAML/JSON file on top."""
    overrides: dict[str, Any] = {}
    if path is not None:
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a policy file is a mapping of risk policy fields")
        overrides = data.get("risk_policy", data)
    return settings.risk.policy(overrides)


def load_events(path: Path | None) -> list[Any]:
    """The labelled events of a labels file (see `crisiswatch.scenarios.labels`)."""
    if path is None:
        return []
    from crisiswatch.scenarios.labels import load_labels

    return list(load_labels(path).events)


def backtest_command(
    mentions: Path,
    labels: Path | None,
    brands: Path | None,
    policy_file: Path | None,
    out: Path,
    pictures: bool,
    as_json: bool,
) -> BacktestRun:
    """Run a backtest and print its summary (human or JSON)."""
    if not mentions.is_file():
        raise FileNotFoundError(f"mention file not found: {mentions}")
    settings = Settings(**({"brands_file": brands} if brands is not None else {}))
    policy = load_policy(settings, policy_file)
    events = load_events(labels)
    with tqdm(desc="enrich", unit=" mentions", disable=as_json, leave=False) as bar:
        run = run_backtest(mentions, settings, policy, out, events, pictures, progress=bar.update)
    summary = run.summary()
    if as_json:
        print(json.dumps(summary))
    else:
        print(human_summary(run))
    return run


def human_summary(run: BacktestRun) -> str:
    """A few lines for the terminal; the report has the rest."""
    s = run.summary()
    lines = [
        f"{s['brand_mentions']:,} brand mentions, {s['windows']:,} windows; decisions at "
        f"{s['decide_mentions_per_second']:,} mentions/s (enrichment {s['enrich_seconds']} s"
        f"{', cached' if s['enrichment_cached'] else ''})",
        f"alerts {s['alerts']}, criticals {s['criticals']}, pauses {s['pauses']}",
    ]
    for pause in run.result.pauses:
        from .engine import iso

        lines.append(f"  PAUSE {iso(pause.time)} {pause.scope}: {pause.alert.summary}")
    if "scores" in s:
        c = s["scores"]
        lines.append(
            f"crises caught {c['crises_caught']}/{c['crises']} (within 10 min {c['crises_caught_within_10_min']}, "
            f"median delay {c['median_delay_minutes']} min), paused {c['crises_paused']}/{c['crises']}"
        )
        lines.append(
            f"false criticals {c['false_criticals_steady']} steady "
            f"({c['false_criticals_steady_per_30_brand_days']} per 30 brand-days) + "
            f"{c['false_criticals_first_day']} on first days; false pauses {c['false_pauses_steady']} steady + "
            f"{c['false_pauses_first_day']} first day; warnings {c['warnings_per_brand_day']} per brand-day"
        )
    lines.append(f"report: {run.out / 'report.md'}")
    return "\n".join(lines)

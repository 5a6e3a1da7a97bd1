"""A timeline picture per brand: what a person judging a detector looks at first.

Three stacked panels over event time: stories per window against the expected band, the negative
share against the brand's usual share, and risk with the warning and critical thresholds. Alerts
(opened episodes) and pauses are marked; labelled crises are shaded red, decoys grey.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np

from crisiswatch.detectors.risk import RiskPolicy

from .engine import PauseEvent, Timeline
from .scoring import Episode


def _dates(ts: Sequence[float]) -> Any:
    return np.array([datetime.fromtimestamp(t, UTC) for t in ts])


def draw_brand(
    brand: str,
    timeline: Timeline,
    policy: RiskPolicy,
    episodes: Sequence[Episode],
    pauses: Sequence[PauseEvent],
    events: Sequence[Any],
    out: Path,
) -> Path:
    """Draw one brand's timeline to ``out`` (PNG)."""
    x = _dates(timeline.start)
    stories = np.asarray(timeline.stories, dtype=float)
    expected = np.asarray(timeline.expected, dtype=float)
    band = expected + 3.0 * np.sqrt(np.maximum(expected, 1.0))
    share = np.asarray(timeline.negative_share, dtype=float)
    usual = np.asarray(timeline.usual_share, dtype=float)
    mentions = np.maximum(np.asarray(timeline.mentions, dtype=float), 1.0)
    usual_band = usual + 2.0 * np.sqrt(usual * (1 - usual) / mentions)
    risk = np.asarray(timeline.risk, dtype=float)

    fig, axes = plt.subplots(3, 1, figsize=(16, 8.5), sharex=True, gridspec_kw={"height_ratios": [3, 2, 2]})
    volume_ax, share_ax, risk_ax = axes
    volume_ax.plot(x, stories, lw=0.6, color="#1f4e79", label="stories per window")
    volume_ax.fill_between(x, 0, band, color="#9dc3e6", alpha=0.5, lw=0, label="expected + 3 sd")
    volume_ax.plot(x, expected, lw=0.6, color="#2e75b6", alpha=0.8, label="expected")
    volume_ax.set_ylabel("stories / window")
    volume_ax.set_title(f"{brand}: backtest timeline")

    share_ax.plot(x, share, lw=0.4, color="#7f6000", alpha=0.7, label="negative share")
    share_ax.fill_between(x, 0, np.clip(usual_band, 0, 1), color="#ffe699", alpha=0.6, lw=0, label="usual (+2 se)")
    share_ax.plot(x, usual, lw=0.8, color="#bf9000", label="usual share")
    share_ax.set_ylim(0, 1)
    share_ax.set_ylabel("negative share")

    risk_ax.plot(x, risk, lw=0.6, color="#404040", label="risk")
    risk_ax.axhline(policy.warning_at, color="#ed7d31", lw=0.8, ls="--", label=f"warning {policy.warning_at:g}")
    risk_ax.axhline(policy.critical_at, color="#c00000", lw=0.8, ls="--", label=f"critical {policy.critical_at:g}")
    risk_ax.set_ylim(0, 100)
    risk_ax.set_ylabel("risk")

    for event in events:
        color = "#ff0000" if event.expect_pause else "#808080"
        for ax in axes:
            ax.axvspan(
                event.start, event.end,
                color=color, alpha=0.15, lw=0,
            )
        volume_ax.annotate(
            event.name, (event.start, 1.0), xycoords=("data", "axes fraction"),
            fontsize=7, rotation=90, va="top", ha="right", color=color,
        )
    for episode in episodes:
        t = datetime.fromtimestamp(episode.opened, UTC)
        risk_ax.axvline(t, color="#ed7d31", lw=0.6, alpha=0.8)
        if episode.critical_at is not None:
            risk_ax.plot([datetime.fromtimestamp(episode.critical_at, UTC)], [policy.critical_at], "v", color="#c00000",
                         ms=6)
    for pause in pauses:
        t = datetime.fromtimestamp(pause.time, UTC)
        for ax in axes:
            ax.axvline(t, color="#c00000", lw=1.2)
        volume_ax.annotate(f"PAUSE {pause.scope}", (t, 0.92), xycoords=("data", "axes fraction"), fontsize=7,
                           color="#c00000", ha="left")
    for ax in axes:
        ax.legend(loc="upper left", fontsize=7, ncol=4, framealpha=0.7)
        ax.grid(alpha=0.25)
    locator = mdates.AutoDateLocator()
    risk_ax.xaxis.set_major_locator(locator)
    risk_ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out

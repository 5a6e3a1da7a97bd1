"""Volume from the real NAB tweet-count series: a segment per brand, scaled, spread over minutes.

A NAB series has one count per 5 minutes. A brand's volume is a segment of it, scaled so that the
segment's median per-minute rate equals the brand's rate, each 5-minute count spread over its five
minutes as Poisson draws. Nothing is smoothed: bursts stay bursts, and a collection gap (a missing
timestamp, or a run of zero counts) stays a gap.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROW_SECONDS = 300
ROW_MINUTES = 5


@dataclass(frozen=True)
class Series:
    """A NAB series on a full 5-minute grid: ``values[i]`` is the count of row ``i`` (NaN where the
    timestamp is missing); ``windows`` are NAB's labelled anomaly windows as row ranges."""

    name: str
    t0: float
    values: np.ndarray
    windows: tuple[tuple[int, int], ...] = field(default_factory=tuple)

    def row_time(self, row: int) -> datetime:
        return datetime.fromtimestamp(self.t0 + row * ROW_SECONDS, UTC)


def _epoch(text: str) -> float:
    stamp = datetime.fromisoformat(text.strip())
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def load_series(data: Path, name: str) -> Series:
    """``nab-tweets/<name>.csv`` and its windows from ``windows.json``."""
    folder = data / "nab-tweets"
    with (folder / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
        rows = [(_epoch(r["timestamp"]), float(r["value"])) for r in csv.DictReader(handle)]
    if not rows:
        raise ValueError(f"{name}: empty series")
    t0 = rows[0][0]
    index = np.array([round((t - t0) / ROW_SECONDS) for t, _ in rows])
    values = np.full(int(index.max()) + 1, np.nan)
    values[index] = [v for _, v in rows]
    windows: list[tuple[int, int]] = []
    windows_file = folder / "windows.json"
    if windows_file.is_file():
        for start, end in json.loads(windows_file.read_text()).get(f"{name}.csv", []):
            windows.append((round((_epoch(start) - t0) / ROW_SECONDS), round((_epoch(end) - t0) / ROW_SECONDS) + 1))
    return Series(name, t0, values, tuple(windows))


def segment_scale(series: Series, start_row: int, rows: int, rate: float) -> float:
    """Factor that makes the segment's median per-minute rate equal ``rate``."""
    seg = series.values[start_row : start_row + rows]
    present = seg[~np.isnan(seg)]
    median = float(np.median(present)) if present.size else 0.0
    if median <= 0:
        median = float(present.mean()) if present.size and present.mean() > 0 else 1.0
    return rate * ROW_MINUTES / median


def minute_rates(series: Series, start_row: int, minutes: int, rate: float) -> np.ndarray:
    """Expected mentions per minute for ``minutes`` minutes from ``start_row``: each 5-minute count,
    scaled, shared equally by its five minutes; 0 in a gap (missing row or zero count)."""
    rows = -(-minutes // ROW_MINUTES)
    if start_row < 0 or start_row + rows > series.values.size:
        raise ValueError(f"{series.name}: segment {start_row}+{rows} rows is outside the series")
    seg = np.nan_to_num(series.values[start_row : start_row + rows], nan=0.0)
    per_minute = seg * segment_scale(series, start_row, rows, rate) / ROW_MINUTES
    return np.repeat(per_minute, ROW_MINUTES)[:minutes]


def gap_minutes(series: Series, start_row: int, minutes: int) -> np.ndarray:
    """True for the minutes of the segment that fall in a gap (missing row or zero count)."""
    rows = -(-minutes // ROW_MINUTES)
    seg = series.values[start_row : start_row + rows]
    return np.repeat(np.isnan(seg) | (seg == 0), ROW_MINUTES)[:minutes]


def local_level(rates: np.ndarray, floor: float, half_width: int = 60) -> np.ndarray:
    """A robust local level of a per-minute rate: the median over ±``half_width`` minutes (by 5-minute
    rows), at least ``floor``. Events scale with it, so a crisis at night is relative to the night."""
    rows = rates[::ROW_MINUTES]
    k = max(1, half_width // ROW_MINUTES)
    padded = np.pad(rows, k, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * k + 1)
    level = np.median(windows, axis=1)
    return np.maximum(np.repeat(level, ROW_MINUTES)[: rates.size], floor)


def choose_segments(
    lengths: list[int],
    series_rows: dict[str, int],
    assignment: list[str],
    rng: np.random.Generator,
    min_apart: int = 576,
) -> list[int]:
    """Start rows for segments of the given lengths (rows) on their assigned series, at least
    ``min_apart`` rows (2 days) apart on the same series where that fits."""
    starts: list[int] = []
    for i, (length, name) in enumerate(zip(lengths, assignment, strict=True)):
        hi = series_rows[name] - length
        if hi < 0:
            raise ValueError(f"{name} has {series_rows[name]} rows, a segment needs {length}")
        taken = [starts[j] for j in range(i) if assignment[j] == name]
        choice = int(rng.integers(0, hi + 1))
        for attempt in range(400):
            gap = min_apart if attempt < 300 else min_apart // 4
            if all(abs(choice - s) >= gap for s in taken):
                break
            choice = int(rng.integers(0, hi + 1))
        starts.append(choice)
    return starts

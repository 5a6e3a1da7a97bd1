"""CSV in and out for ``crisiswatch detect-series``: ``timestamp,value`` rows (NAB format) to alerts.

Timestamps are UTC, like ``2015-02-26 21:42:53`` (fractional seconds, a ``T`` separator and an explicit
offset are accepted too). Every row is one bucket, fed to a `detectors.spikes.SpikeAlerter` in file
order, so each decision uses only the rows above it.
"""

from __future__ import annotations

import csv
import itertools
import math
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from crisiswatch.detectors.spikes import SpikeAlerter, SpikeResult


class SeriesFormatError(ValueError):
    """The CSV is not a usable ``timestamp,value`` series; the message names the line."""


@dataclass(frozen=True)
class SeriesRow:
    """One input row: the timestamp text as written, its epoch seconds, and the value."""

    line: int
    timestamp: str
    t: float
    value: float
    value_text: str


def parse_duration(text: str) -> float:
    """Seconds in ``"5m"``, ``"300s"``, ``"1h"``, ``"1d"`` or a bare number of seconds (`crisiswatch.durations`)."""
    from crisiswatch.durations import parse_duration as parse

    return parse(text, allow_bare_seconds=True)


def parse_timestamp(text: str) -> float:
    """Epoch seconds of a UTC timestamp (naive times are taken as UTC)."""
    stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def read_series(source: TextIO | Path) -> list[SeriesRow]:
    """Read and validate a ``timestamp,value`` CSV (header required, columns in any order)."""
    if isinstance(source, Path):
        with source.open(newline="", encoding="utf-8") as handle:
            return read_series(handle)
    reader = csv.reader(source)
    header = next(reader, None)
    if header is None:
        raise SeriesFormatError("empty file: expected a header line 'timestamp,value'")
    names = [name.strip().lower() for name in header]
    if "timestamp" not in names or "value" not in names:
        raise SeriesFormatError(f"line 1: expected a header with columns timestamp,value, got {header!r}")
    ts_col, value_col = names.index("timestamp"), names.index("value")
    rows: list[SeriesRow] = []
    for line, fields in enumerate(reader, start=2):
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) <= max(ts_col, value_col):
            raise SeriesFormatError(f"line {line}: expected {len(header)} columns, got {len(fields)}")
        stamp, value_text = fields[ts_col].strip(), fields[value_col].strip()
        try:
            t = parse_timestamp(stamp)
        except ValueError:
            raise SeriesFormatError(
                f"line {line}: bad timestamp {stamp!r} (expected e.g. 2015-02-26 21:42:53)"
            ) from None
        try:
            value = float(value_text)
        except ValueError:
            raise SeriesFormatError(f"line {line}: bad value {value_text!r} (expected a number)") from None
        if not math.isfinite(value) or value < 0:
            raise SeriesFormatError(f"line {line}: value must be a finite count >= 0, got {value_text!r}")
        rows.append(SeriesRow(line, stamp, t, value, value_text))
    if not rows:
        raise SeriesFormatError("no data rows after the header")
    return rows


def infer_bucket(rows: list[SeriesRow]) -> float:
    """The median positive spacing of the first rows' timestamps (seconds), or 300 for a single row."""
    gaps = [b.t - a.t for a, b in itertools.pairwise(rows[:1001]) if b.t > a.t]
    return statistics.median(gaps) if gaps else 300.0


def detect(
    rows: Iterable[SeriesRow], bucket_seconds: float, **tuning: Any
) -> Iterator[tuple[SeriesRow, SpikeResult, bool]]:
    """Run the online alerter over the rows; ``True`` on the row where an alert episode opens."""
    alerter = SpikeAlerter(bucket_seconds, **tuning)
    for row in rows:
        result, episode = alerter.update(row.t, row.value)
        yield row, result, episode.kind == "opened"


def write_alerts(out: TextIO, decisions: Iterable[tuple[SeriesRow, SpikeResult, bool]]) -> int:
    """Write ``timestamp,value,score,alert`` CSV; returns the number of alerts."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "value", "score", "alert"])
    alerts = 0
    for row, result, alert in decisions:
        writer.writerow([row.timestamp, row.value_text, f"{result.score:.3f}", int(alert)])
        alerts += alert
    return alerts

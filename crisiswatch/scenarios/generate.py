"""Assemble a scenario corpus: brands, volume, events, texts; write it in time order, ten minutes at a time.

Output folder: ``mentions.jsonl.gz`` (replay format, sorted by ``created_at``), ``brands.yaml``,
``labels.json`` (`crisiswatch.scenarios.labels.Labels`) and ``manifest.json``. The same seed gives the
same bytes. Memory stays at about ten minutes of mentions, whatever the bursts.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from crisiswatch.scenarios.events import Component, Context, Event, Planner
from crisiswatch.scenarios.labels import BrandLabel, EventLabel, Labels
from crisiswatch.scenarios.profiles import NAMES, BrandSpec, brands_yaml, make_brands
from crisiswatch.scenarios.render import Renderer, Row, line
from crisiswatch.scenarios.seeds import DEFAULT_BRANDS, DEFAULT_DAYS, DEFAULT_START, SPLITS
from crisiswatch.scenarios.texts import load_pools
from crisiswatch.scenarios.volume import ROW_MINUTES, Series, choose_segments, load_series, local_level, minute_rates

GENERATOR_VERSION = "1.0"
MENTIONS_FILE = "mentions.jsonl.gz"
CHUNK_MINUTES = 10
"""Mentions are drawn, sorted and written this many event-minutes at a time (1440 must be a multiple)."""


def parse_start(text: str) -> datetime:
    """A UTC start time from ``2026-09-01`` or an ISO timestamp (naive = UTC), floored to the minute."""
    stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    return stamp.replace(second=0, microsecond=0)


def _median(series: Series) -> float:
    present = series.values[~np.isnan(series.values)]
    return float(np.median(present)) if present.size else 0.0


def assign_series(brands: list[BrandSpec], series: list[Series]) -> list[str]:
    """Series per brand: the sparser brands on the sparser series (a small scale factor keeps a series'
    own texture), in nearly equal groups."""
    ordered_series = sorted(series, key=_median)
    ordered_brands = sorted(brands, key=lambda b: (b.rate, b.index))
    out = [""] * len(brands)
    for rank, brand in enumerate(ordered_brands):
        group = min(len(ordered_series) - 1, rank * len(ordered_series) // len(brands))
        out[brand.index] = ordered_series[group].name
    return out


@dataclass
class Plan:
    """Everything decided before a single mention is written."""

    brands: list[BrandSpec]
    series: dict[str, Series]
    rates: list[np.ndarray]
    events: list[Event]
    nab: list[list[tuple[int, int, int, int]]]
    skipped: list[str]


def plan_corpus(split: str, days: int, n_brands: int, seed: int, data: Path) -> Plan:
    """Brands, their series segments and rates, and the events, for a seed."""
    spec = SPLITS[split]
    rng = np.random.default_rng([seed, 1])
    total = days * 1440
    brands = make_brands(n_brands, NAMES[spec.brand_names], total, rng)
    series = {name: load_series(data, name) for name in spec.series}
    assignment = assign_series(brands, list(series.values()))
    lengths = [-(-(total - b.first_minute) // ROW_MINUTES) for b in brands]
    starts = choose_segments(lengths, {k: s.values.size for k, s in series.items()}, assignment, rng)
    rates, levels, nab_minutes, nab = [], [], [], []
    for b, name, row in zip(brands, assignment, starts, strict=True):
        b.series, b.start_row = name, row
        r = np.zeros(total)
        r[b.first_minute :] = minute_rates(series[name], row, total - b.first_minute, b.rate)
        level = np.full(total, 0.5 * b.rate)
        level[b.first_minute :] = local_level(r[b.first_minute :], 0.5 * b.rate)
        rates.append(r)
        levels.append(level)
        windows, minutes = [], []
        for ws, we in series[name].windows:
            m0 = b.first_minute + (ws - row) * ROW_MINUTES
            m1 = b.first_minute + (we - row) * ROW_MINUTES
            lo, hi = max(m0, b.first_minute), min(m1, total)
            if hi - lo >= 30:
                windows.append((lo, hi, ws, we))
                minutes.append((lo, hi))
        nab.append(windows)
        nab_minutes.append(minutes)
    planner = Planner(Context(brands, rates, levels, total, nab_minutes, rng))
    events = planner.plan()
    return Plan(brands, series, rates, events, nab, planner.skipped)


def _chunk_counts(
    rng: np.random.Generator, comp: Component, lo: int, hi: int, base: np.ndarray, base_lo: int
) -> tuple[np.ndarray, np.ndarray]:
    """Minutes and counts of a component inside [lo, hi); converted baseline mentions move out of ``base``."""
    a, b = max(lo, comp.m0), min(hi, comp.m1)
    if a >= b:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    extra = comp.extra[a - comp.m0 : b - comp.m0]
    counts = np.round(extra).astype(np.int64) if comp.exact else rng.poisson(extra)
    if comp.conv is not None:
        own = base[a - base_lo : b - base_lo]
        moved = rng.binomial(own, comp.conv[a - comp.m0 : b - comp.m0])
        base[a - base_lo : b - base_lo] = own - moved
        counts = counts + moved
    return np.arange(a, b, dtype=np.int64), counts


def generate_corpus(
    out: Path,
    split: str = "tune",
    days: int = DEFAULT_DAYS,
    brands: int = DEFAULT_BRANDS,
    seed: int | None = None,
    start: str = DEFAULT_START,
    data: Path = Path("../shared/data"),
    progress: bool = False,
) -> dict[str, Any]:
    """Write a corpus to ``out`` and return its manifest."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use {' or '.join(SPLITS)}")
    if days < 2 or brands < 1:
        raise ValueError("a corpus needs at least 2 days (a brand's first day is its maturity period) and 1 brand")
    if not (data / "nab-tweets").is_dir() or not (data / "sentiment-umsab").is_dir():
        raise FileNotFoundError(f"shared data not found at {data} (needs nab-tweets/ and sentiment-umsab/)")
    seed = SPLITS[split].seed if seed is None else seed
    begin = parse_start(start)
    total = days * 1440
    plan = plan_corpus(split, days, brands, seed, data)
    pools = load_pools(data, SPLITS[split].texts)
    renderer = Renderer(plan.brands, pools, begin, seed)
    out.mkdir(parents=True, exist_ok=True)
    start_ms = int(begin.timestamp() * 1000)

    by_brand: dict[int, list[Component]] = {b.index: [] for b in plan.brands}
    for event in sorted(plan.events, key=lambda e: e.uid):
        for comp in event.components:
            by_brand[comp.brand].append(comp)
    brand_counts = [0] * len(plan.brands)
    first_ms: list[int | None] = [None] * len(plan.brands)
    event_counts: dict[int, int] = {e.uid: 0 for e in plan.events}
    related_counts: dict[int, list[int]] = {}

    bar = _progress(total // CHUNK_MINUTES, progress)
    seq = 0
    with (
        (out / MENTIONS_FILE).open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=5) as gz,
    ):
        for chunk in range(total // CHUNK_MINUTES):
            lo, hi = chunk * CHUNK_MINUTES, (chunk + 1) * CHUNK_MINUTES
            rows: list[Row] = []
            for b in plan.brands:
                b_lo = max(lo, b.first_minute)
                if b_lo >= hi:
                    continue
                rng = np.random.default_rng([seed, 2, b.index, chunk])
                base = rng.poisson(plan.rates[b.index][b_lo:hi])
                parts = []
                for comp in by_brand[b.index]:
                    minutes, counts = _chunk_counts(rng, comp, b_lo, hi, base, b_lo)
                    if counts.size:
                        parts.append((comp, minutes, counts))
                before = len(rows)
                rows += renderer.render(rng, b, None, np.arange(b_lo, hi, dtype=np.int64), base)
                for comp, minutes, counts in parts:
                    on_related = (
                        related_counts.setdefault(comp.related_event, [0]) if comp.related_event is not None else None
                    )
                    made = renderer.render(rng, b, comp, minutes, counts, on_related)
                    event_counts[comp.event] += len(made)
                    rows += made
                brand_counts[b.index] += len(rows) - before
                if len(rows) > before:
                    earliest = min(r.t_ms for r in rows[before:])
                    if first_ms[b.index] is None or earliest < first_ms[b.index]:  # type: ignore[operator]
                        first_ms[b.index] = earliest
            rows.sort(key=_t_ms)
            gz.write("".join(line(r, seq + i, start_ms) for i, r in enumerate(rows)).encode("utf-8"))
            seq += len(rows)
            if bar is not None:
                bar.update(1)
                if (chunk + 1) % (1440 // CHUNK_MINUTES) == 0:
                    bar.set_postfix(mentions=f"{seq:,}")
    if bar is not None:
        bar.close()

    for uid, (count,) in related_counts.items():
        event_counts[uid] = count
    labels = _labels(plan, split, seed, begin, total, first_ms)
    (out / "labels.json").write_text(labels.model_dump_json(indent=1) + "\n", encoding="utf-8")
    (out / "brands.yaml").write_text(brands_yaml(plan.brands), encoding="utf-8")
    manifest = _manifest(plan, split, seed, begin, days, pools.files, seq, brand_counts, event_counts, out)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def _t_ms(row: Row) -> int:
    return row.t_ms


def _progress(chunks: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=chunks, desc="corpus", unit="day", unit_scale=CHUNK_MINUTES / 1440)


def _iso(begin: datetime, minute: float) -> datetime:
    return begin + timedelta(minutes=minute)


def _labels(plan: Plan, split: str, seed: int, begin: datetime, total: int, first_ms: list[int | None]) -> Labels:
    brands = {}
    for b in plan.brands:
        series = plan.series[b.series]
        ms = first_ms[b.index]
        first = begin + timedelta(milliseconds=ms if ms is not None else b.first_minute * 60_000)
        brands[b.id] = BrandLabel(
            name=b.name,
            rate_per_minute=b.rate,
            series=b.series,
            segment_start=series.row_time(b.start_row),
            first_mention=first,
            profile=b.profile,
            sector=b.sector,
            languages=b.languages,
            sources=b.sources,
            handle=b.handle,
        )
    events = [
        EventLabel(
            brand=plan.brands[e.brand].id,
            kind=e.kind,
            name=e.name,  # type: ignore[arg-type]
            start=_iso(begin, e.start),
            end=_iso(begin, e.end),
            expect_pause=e.expect_pause,
            description=e.description,
            story=e.story,
            languages=e.languages,
            related=plan.brands[e.related].id if e.related is not None else None,
            peak_multiplier=round(e.peak, 2) if e.peak is not None else None,
        )
        for e in plan.events
    ]
    for b, windows in zip(plan.brands, plan.nab, strict=True):
        series = plan.series[b.series]
        seg = series.values[b.start_row : b.start_row + -(-(total - b.first_minute) // ROW_MINUTES)]
        median = float(np.nanmedian(seg)) or 1.0
        for lo, hi, ws, we in windows:
            peak = float(np.nanmax(series.values[max(ws, 0) : we])) / median
            events.append(
                EventLabel(
                    brand=b.id,
                    kind="decoy",
                    name="nab_burst",
                    start=_iso(begin, lo),
                    end=_iso(begin, hi),
                    expect_pause=False,
                    peak_multiplier=round(peak, 2),
                    languages=sorted(b.languages),
                    description=f"NAB labelled anomaly window of {b.series} ({series.row_time(ws):%Y-%m-%d %H:%M} to "
                    f"{series.row_time(we):%Y-%m-%d %H:%M}), kept as it is: a real burst (peak x{peak:.1f} of the "
                    "segment median) with ordinary sentiment",
                )
            )
    events.sort(key=lambda e: (e.start, e.brand, e.name))
    return Labels(
        split=split,
        seed=seed,
        start=begin,
        end=begin + timedelta(minutes=total),
        brands=brands,  # type: ignore[arg-type]
        events=events,
    )


def _manifest(
    plan: Plan,
    split: str,
    seed: int,
    begin: datetime,
    days: int,
    text_files: tuple[str, ...],
    total: int,
    brand_counts: list[int],
    event_counts: dict[int, int],
    out: Path,
) -> dict[str, Any]:
    return {
        "generator": "crisiswatch.scenarios",
        "version": GENERATOR_VERSION,
        "split": split,
        "seed": seed,
        "start": begin.isoformat().replace("+00:00", "Z"),
        "days": days,
        "series_files": sorted(f"nab-tweets/{name}.csv" for name in plan.series),
        "text_files": list(text_files),
        "files": {"mentions": MENTIONS_FILE, "labels": "labels.json", "brands": "brands.yaml"},
        "mentions": total,
        "mentions_bytes_gz": (out / MENTIONS_FILE).stat().st_size,
        "brands": {
            b.id: {
                "mentions": brand_counts[b.index],
                "rate_per_minute": b.rate,
                "series": b.series,
                "segment_start_row": b.start_row,
                "first_minute": b.first_minute,
            }
            for b in plan.brands
        },
        "events": [
            {
                "brand": plan.brands[e.brand].id,
                "kind": e.kind,
                "name": e.name,
                "start": _iso(begin, e.start).isoformat().replace("+00:00", "Z"),
                "mentions": event_counts[e.uid],
            }
            for e in plan.events
        ],
        "event_counts": _event_summary(plan.events),
        "skipped": plan.skipped,
    }


def _event_summary(events: list[Event]) -> dict[str, int]:
    summary: dict[str, int] = {}
    for e in events:
        key = f"{e.kind}:{e.name}"
        summary[key] = summary.get(key, 0) + 1
    return dict(sorted(summary.items()))

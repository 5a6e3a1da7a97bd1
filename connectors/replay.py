"""Replay connector: publish mentions from a JSONL or CSV file, preserving event time.

JSONL: one mention object per line (fields of `crisiswatch.contracts.records.Mention`; ``author``, ``url`` and
``metrics`` optional). CSV: a header row with at least ``id,source,text,created_at``; optional columns
``url``, ``lang``, ``author_id``, ``author_handle``, ``followers``, ``likes``, ``shares``, ``replies``,
``reach``.

``speed`` maps event time to wall time: 60 replays one hour of event time per minute, 0 replays as
fast as possible. Lines that cannot be parsed are still handed over as they are, so the pipeline
dead-letters them with the reason; nothing is dropped here. A file ending in ``.gz``
(``mentions.jsonl.gz``, ``mentions.csv.gz``) is read gunzipped.

Order: records go out oldest first through a bounded reorder buffer (``reorder_window`` records, a
heap on event time, file order among equals; None sorts the whole file in memory). A file in any
order within that many records is sent sorted; a record further out of place is sent as soon as it is
read (late: the pipeline's lateness rules apply) and counted. At the end a `ReplayReport` says how out
of order the file was, and a warning names the numbers when it was not sorted
(`crisiswatch_connector_replay_out_of_order_total`).

Resume: with a ``checkpoint`` (`connectors.base.StateStore`), the number of records handed over is
saved every ``save_every`` records (written once the broker acknowledged them) together with the
file's name, size, a hash of its first and last MiB, and the reorder window. A replay restarted with the same file and
window re-reads it, skips that many records of the same (deterministic) order and goes on: no gap,
and no repeat beyond what was sent after the last checkpoint (a graceful stop saves at the end, so
none). A changed file starts from the beginning, with a warning.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import hashlib
import heapq
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from crisiswatch.connectors import metrics
from crisiswatch.connectors.base import Connector, StateStore, until_stopped
from crisiswatch.connectors.sink import MentionSink

log = logging.getLogger(__name__)
DEFAULT_REORDER_WINDOW = 50_000

_AUTHOR_COLUMNS = {"author_id": "id", "author_handle": "handle", "followers": "followers"}
_METRIC_COLUMNS = ("likes", "shares", "replies", "reach")


@dataclass(frozen=True)
class ReplayItem:
    """One record to hand over: its bytes, key and event time (None when unparseable)."""

    value: bytes
    key: bytes | None
    event_time: float | None


def _event_time(obj: Any) -> float | None:
    if not isinstance(obj, dict) or not isinstance(obj.get("created_at"), str):
        return None
    try:
        return datetime.fromisoformat(obj["created_at"].replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _key(obj: Any) -> bytes | None:
    return obj["id"].encode() if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None


def _csv_row_to_mention(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k in ("id", "source", "text", "created_at", "url", "lang") if (v := row.get(k))}
    author = {field: row[col] for col, field in _AUTHOR_COLUMNS.items() if row.get(col)}
    if "followers" in author:
        author["followers"] = int(author["followers"]) if author["followers"].isdigit() else author["followers"]
    if author:
        out["author"] = author
    metrics = {m: int(row[m]) if row[m].isdigit() else row[m] for m in _METRIC_COLUMNS if row.get(m)}
    if metrics:
        out["metrics"] = metrics
    return out


def _open_binary(path: Path) -> Any:
    """The file's bytes, gunzipped when it ends in ``.gz`` (``mentions.jsonl.gz``, ``mentions.csv.gz``)."""
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb")


def read_items(path: Path) -> Iterator[ReplayItem]:
    """The records of a replay file, in file order (``.gz`` files are read gunzipped)."""
    kind = path.with_suffix("").suffix if path.suffix.lower() == ".gz" else path.suffix
    if kind.lower() == ".csv":
        opener = gzip.open if path.suffix.lower() == ".gz" else open
        with opener(path, "rt", newline="", encoding="utf-8", errors="surrogateescape") as handle:
            for row in csv.DictReader(handle):
                obj = _csv_row_to_mention(row)
                value = json.dumps(obj, ensure_ascii=False).encode("utf-8", errors="surrogateescape")
                yield ReplayItem(value, _key(obj), _event_time(obj))
        return
    with _open_binary(path) as handle:
        for line in handle:
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:  # invalid JSON or UTF-8: hand over as is
                yield ReplayItem(line, None, None)
                continue
            yield ReplayItem(line, _key(obj), _event_time(obj))


@dataclass
class ReplayReport:
    """How a replay went: records sent, skipped on resume, and how out of order the file was."""

    records: int = 0
    """Records read from the file."""
    sent: int = 0
    skipped: int = 0
    """Records not sent again because the checkpoint said they were (resume)."""
    out_of_order: int = 0
    """Records older than a record before them in the file."""
    max_disorder_seconds: float = 0.0
    """The most a record was older than the newest record read before it."""
    late: int = 0
    """Records further out of place than the reorder window: sent after newer ones."""
    max_late_seconds: float = 0.0
    window: int | None = 0

    def message(self, path: Path) -> str:
        """A one-line account for the log (empty when the file was in order)."""
        if not self.out_of_order:
            return ""
        share = 100.0 * self.out_of_order / max(self.records, 1)
        text = (
            f"replay {path.name}: {self.out_of_order} of {self.records} records ({share:.1f} %) were out of "
            f"order, by up to {self.max_disorder_seconds:.0f} s of event time"
        )
        window = "the whole file" if self.window is None else f"{self.window} records"
        if not self.late:
            return text + f"; all were sent in order (reorder window: {window})"
        return text + (
            f"; {self.late} were more than {self.window} records out of place and were sent late (up to "
            f"{self.max_late_seconds:.0f} s behind newer ones): sort the file by created_at, or raise the "
            "reorder window"
        )


def reordered(items: Iterable[ReplayItem], window: int | None, report: ReplayReport) -> Iterator[ReplayItem]:
    """``items`` oldest first through a heap of ``window`` records (None: the whole file, sorted in memory;
    file order among equal times; an unparseable record keeps its place after the newest time before it)."""
    heap: list[tuple[float, int, ReplayItem]] = []
    newest = float("-inf")
    emitted = float("-inf")
    report.window = window
    for index, item in enumerate(items):
        report.records += 1
        t = item.event_time
        if t is None:
            t = newest if newest != float("-inf") else 0.0
        elif t < newest:
            report.out_of_order += 1
            report.max_disorder_seconds = max(report.max_disorder_seconds, newest - t)
        else:
            newest = t
        heapq.heappush(heap, (t, index, item))
        if window is not None and len(heap) > window:
            t0, _, first = heapq.heappop(heap)
            if t0 < emitted:
                report.late += 1
                report.max_late_seconds = max(report.max_late_seconds, emitted - t0)
            else:
                emitted = t0
            yield first
    while heap:
        t0, _, first = heapq.heappop(heap)
        if t0 < emitted:
            report.late += 1
            report.max_late_seconds = max(report.max_late_seconds, emitted - t0)
        else:
            emitted = t0
        yield first


async def paced(items: Iterable[ReplayItem], speed: float) -> AsyncIterator[ReplayItem]:
    """Yield items no faster than ``speed`` times their event-time pace (0 = unpaced)."""
    first_event: float | None = None
    started = time.monotonic()
    for item in items:
        if speed > 0 and item.event_time is not None:
            if first_event is None:
                first_event = item.event_time
            due = started + (item.event_time - first_event) / speed
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        yield item


def file_identity(path: Path) -> dict[str, Any]:
    """What a replay checkpoint must match to resume: the file's name, size and a hash of its first and
    last MiB (the same file copied to another machine matches; an edited one does not)."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        if size > 2 << 20:
            handle.seek(size - (1 << 20))
        digest.update(handle.read(1 << 20))
    return {"file": path.name, "size": size, "sha256": digest.hexdigest()[:32]}


async def replay(
    path: Path,
    sink: MentionSink,
    speed: float = 0.0,
    *,
    checkpoint: StateStore | None = None,
    reorder_window: int | None = DEFAULT_REORDER_WINDOW,
    save_every: int = 5000,
    report: ReplayReport | None = None,
) -> int:
    """Publish every record of ``path`` through ``sink``, oldest first; return how many were handed over
    in this run. ``checkpoint`` makes it resumable (see the module docstring)."""
    if not path.is_file():
        raise FileNotFoundError(f"replay file not found: {path}")
    report = report if report is not None else ReplayReport()
    identity = {**file_identity(path), "window": reorder_window}
    skip = 0
    if checkpoint is not None:
        saved = checkpoint.data
        if saved.get("done") is not None and all(saved.get(k) == v for k, v in identity.items()):
            skip = int(saved["done"])
            log.info("replay %s: resuming after %d records (checkpoint)", path.name, skip)
        elif saved.get("done"):
            log.warning("replay %s: the file or reorder window changed since the checkpoint; from the start", path)
    count = 0
    position = 0

    async def save() -> None:
        assert checkpoint is not None
        checkpoint.data.clear()
        checkpoint.data.update(identity, done=position)
        if checkpoint.backend is None:  # a plain file store writes at once: only after the acknowledgement
            await sink.settled()
        checkpoint.save()

    items = _skipping(reordered(read_items(path), reorder_window, report), skip, report)
    finished = False
    try:
        async for item in paced(items, speed):
            await sink.send_raw(item.value, item.key)
            count += 1
            position = skip + count
            if count % 5000 == 0:
                await asyncio.sleep(0)
            if checkpoint is not None and count % save_every == 0:
                await save()
        finished = True
    finally:
        report.sent = count
        if not finished and checkpoint is not None and checkpoint.backend is not None:
            checkpoint.data.clear()  # stopped: the position so far, written once acknowledged
            checkpoint.data.update(identity, done=position)
            checkpoint.save()
    if checkpoint is not None:
        await save()
    await sink.flush()
    message = report.message(path)
    if message:
        log.warning("%s", message)
        metrics.REPLAY_OUT_OF_ORDER.labels("reordered").inc(report.out_of_order - report.late)
        metrics.REPLAY_OUT_OF_ORDER.labels("late").inc(report.late)
    return count


def _skipping(items: Iterator[ReplayItem], skip: int, report: ReplayReport) -> Iterator[ReplayItem]:
    for index, item in enumerate(items):
        if index < skip:
            report.skipped += 1
            continue
        yield item


class ReplayConnector(Connector):
    """`replay` as a connector (``run(sink, stop)``): one file, resumable through its checkpoint."""

    kind = "replay"

    def __init__(
        self,
        path: Path,
        *,
        speed: float = 0.0,
        state: StateStore | None = None,
        reorder_window: int | None = DEFAULT_REORDER_WINDOW,
        save_every: int = 5000,
    ):
        self.path = Path(path)
        self.save_every = save_every
        self.speed = speed
        self.state = state
        self.reorder_window = reorder_window
        self.report = ReplayReport()

    async def run(self, sink: MentionSink, stop: asyncio.Event) -> None:
        await until_stopped(
            replay(
                self.path,
                sink,
                self.speed,
                checkpoint=self.state,
                reorder_window=self.reorder_window,
                save_every=self.save_every,
                report=self.report,
            ),
            stop,
        )
        self.mark_success()

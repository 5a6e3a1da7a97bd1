"""How many posts the publishing services hold back, per scope: what a person sees before resuming.

Each `PublishingGate` reports its backlog's counts (`Backlog.counts`) to ``publishing.held`` (compacted,
key = the reporting gate) every ``gate_held_report_seconds`` while they change, and at least once a minute;
it writes a tombstone when it stops. `HeldBoard` follows the topic (the page and ``crisiswatch status``)
and adds the reports up per scope. Reports older than ``held_report_max_age_seconds`` are left out and
counted as stale: a publisher that died took its in-memory backlog with it.

The counts are advisory: they are unsigned (gates hold public keys only), and they never change the
control state. A missing scope means no reporting gate holds anything for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from pydantic import BaseModel, Field, ValidationError

from crisiswatch.contracts.control import HeldCounts, HeldReport
from crisiswatch.contracts.topics import PUBLISHING_HELD
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control.backlog import Backlog
from crisiswatch.follow import TopicFollower, cancel_and_wait, stop_quietly
from crisiswatch.kafka import new_producer
from crisiswatch.settings import ControlSettings, KafkaSettings, Settings

log = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0
"""An unchanged backlog is reported again this often, so readers can tell a live gate from a dead one."""


class ScopeHeld(BaseModel):
    """The sum over the reporting gates for one scope."""

    held: int = Field(description="Posts waiting for this scope's resume (their fate is chosen then).")
    awaiting_review: int
    ready: int
    publishers: int = Field(description="Gates that reported posts for this scope.")


def reporter_id(name: str) -> str:
    return f"{socket.gethostname()}/{os.getpid()}/{name}"


class HeldReporter:
    """Writes a gate's backlog counts to ``publishing.held`` (started and stopped by the gate)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        control: ControlSettings,
        backlog: Backlog,
        name: str,
        bootstrap_servers: str | None = None,
    ):
        self.kafka = kafka
        self.backlog = backlog
        self.key = reporter_id(name)
        self.topic = kafka.topic(PUBLISHING_HELD.name)
        self.bootstrap_servers = bootstrap_servers or kafka.bootstrap_servers
        self.interval = control.gate_held_report_seconds
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._last: tuple[dict[str, dict[str, int]], float] | None = None

    async def start(self) -> None:
        self._producer = new_producer(
            self.bootstrap_servers, settings=self.kafka, linger_ms=0, client_id="crisiswatch-held-reporter"
        )
        await self._producer.start()
        self._task = asyncio.create_task(self._run(), name=f"held-report-{self.key}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):  # gone from the board: its backlog goes with the process
                await asyncio.wait_for(producer.send_and_wait(self.topic, None, key=self.key.encode()), 5)
            await stop_quietly(producer.stop, "held reporter")

    async def report(self) -> bool:
        """Send the counts now if they changed or the last report is old; True if one was sent."""
        counts = self.backlog.counts()
        now = time.monotonic()
        if self._last is not None and self._last[0] == counts and now - self._last[1] < REFRESH_SECONDS:
            return False
        assert self._producer is not None
        body = HeldReport(gate=self.key, at=utcnow(), scopes={s: HeldCounts(**c) for s, c in counts.items()})
        await self._producer.send_and_wait(self.topic, body.model_dump_json().encode(), key=self.key.encode())
        self._last = (counts, now)
        return True

    async def _run(self) -> None:
        failing: str | None = None
        while True:
            try:
                await self.report()
                failing = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # advisory: never disturbs the gate; said once per kind of failure
                if repr(exc) != failing:
                    log.warning("held-post counts not reported to %s: %s", self.topic, exc)
                failing = repr(exc)
            await asyncio.sleep(self.interval)


class HeldBoard:
    """The newest report of every gate, summed per scope (follows ``publishing.held``)."""

    def __init__(self, settings: Settings, *, name: str = "held-board"):
        self.settings = settings
        self.max_age_seconds = settings.control.held_report_max_age_seconds
        self.reports: dict[str, HeldReport] = {}
        self.follower = TopicFollower(
            settings.kafka.bootstrap_servers,
            settings.topic(PUBLISHING_HELD.name),
            self._ingest,
            name=name,
            settings=settings,
            component="held",
        )

    async def start(self) -> None:
        await self.follower.start()

    async def stop(self) -> None:
        await self.follower.stop()

    def _ingest(self, record: ConsumerRecord, live: bool) -> None:
        key = record.key.decode("utf-8", "replace") if record.key else ""
        if record.value is None:
            self.reports.pop(key, None)
            return
        try:
            report = HeldReport.model_validate_json(record.value)
        except ValidationError as exc:
            log.warning("ignoring a malformed held-post report at offset %d: %s", record.offset, exc)
            return
        self.reports[report.gate] = report

    def summary(self, now: datetime | None = None) -> dict[str, Any]:
        """Per scope totals over the fresh reports, with how many reports were stale and as of when."""
        now = now or utcnow()
        fresh = [r for r in self.reports.values() if (now - r.at).total_seconds() <= self.max_age_seconds]
        scopes: dict[str, ScopeHeld] = {}
        for report in fresh:
            for scope, counts in report.scopes.items():
                row = scopes.setdefault(scope, ScopeHeld(held=0, awaiting_review=0, ready=0, publishers=0))
                row.held += counts.waiting
                row.awaiting_review += counts.review
                row.ready += counts.ready
                row.publishers += 1
        as_of = max((r.at for r in fresh), default=None)
        return {
            "known": self.follower.caught_up,
            "as_of": as_of.isoformat() if as_of else None,
            "reporting_publishers": len(fresh),
            "stale_publishers": len(self.reports) - len(fresh),
            "scopes": {scope: row.model_dump() for scope, row in sorted(scopes.items())},
        }

    def held_for(self, scope: str) -> ScopeHeld | None:
        """The fresh totals for one scope (None: nothing reported for it)."""
        row = self.summary()["scopes"].get(scope)
        return ScopeHeld(**row) if row else None


async def read_held(settings: Settings, timeout: float = 5.0) -> dict[str, Any] | None:
    """Read ``publishing.held`` once and sum it up (None when it could not be read in time)."""
    board = HeldBoard(settings, name="held-reader")
    await board.start()
    try:
        if not await board.follower.wait_caught_up(timeout):
            return None
        return board.summary()
    finally:
        await board.stop()


def describe_held(summary: dict[str, Any] | None, scope: str | None = None) -> str:
    """One line for people: how many posts are held (for ``scope``, or per scope)."""
    if summary is None:
        return "held posts: unknown (publishing.held could not be read)"
    stale = summary["stale_publishers"]
    tail = f"; {stale} publisher(s) stopped reporting" if stale else ""
    rows = summary["scopes"] if scope is None else {scope: summary["scopes"].get(scope)}
    parts = [
        f"{name}: {row['held']} held, {row['awaiting_review']} awaiting review, {row['ready']} going out"
        f" ({row['publishers']} publisher(s))"
        for name, row in rows.items()
        if row
    ]
    if not parts:
        where = f" for {scope}" if scope else ""
        return f"held posts{where}: none reported by {summary['reporting_publishers']} publisher(s){tail}"
    return "held posts: " + "; ".join(parts) + tail

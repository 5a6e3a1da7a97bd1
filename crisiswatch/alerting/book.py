"""Recent alert episodes with their acknowledgements, for people to look at (the page, the API, the CLI).

`AlertBook` is the in-memory picture (no I/O). `AlertFeed` keeps one up to date by following
``alerts`` and ``alerts.ack`` from the beginning (no consumer group, nothing committed).
`AckPublisher` records a person's acknowledgement on ``alerts.ack`` (key: ``alert_id``); the
dispatcher reads it and tells every channel who is on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from crisiswatch.alerting import render
from crisiswatch.contracts.records import Alert, AlertAck
from crisiswatch.contracts.topics import ALERTS, ALERTS_ACK
from crisiswatch.contracts.vocabulary import SEVERITY_RANK
from crisiswatch.follow import TopicFollower
from crisiswatch.kafka import new_producer
from crisiswatch.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Episode:
    """One alert episode as people see it: latest record, peak severity, changes, acknowledgements.

    ``peak`` is the firing record of the highest severity (then risk): once an episode has resolved, its
    evidence is what people need to see (why it fired), not the calm window that resolved it.
    """

    alert_id: str
    brand: str
    first: Alert
    latest: Alert
    peak: Alert | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    acks: list[AlertAck] = field(default_factory=list)

    @property
    def peak_severity(self) -> str:
        """The highest severity the episode reached."""
        seen = [self.latest.severity] if self.peak is None else [self.peak.severity, self.latest.severity]
        return max(seen, key=SEVERITY_RANK.__getitem__)

    @property
    def status(self) -> str:
        return self.latest.status

    @property
    def updated_at(self) -> datetime:
        times = [self.latest.created_at, *[a.at for a in self.acks]]
        return max(times)

    def to_json(self) -> dict[str, Any]:
        """JSON for the API and the page: the alert, why it fired (rendered), history, acks."""
        shown = self.latest if self.status == "firing" else (self.peak or self.latest)
        exp = render.explain(shown)
        return {
            "alert_id": self.alert_id,
            "brand": self.brand,
            "status": self.status,
            "severity": self.latest.severity,
            "peak_severity": self.peak_severity,
            "risk": self.latest.risk,
            "pause": self.latest.pause,
            "summary": self.latest.summary,
            "evidence_of": "latest" if shown is self.latest else "peak",
            "peak_summary": shown.summary,
            "peak_at": shown.event_time.isoformat(),
            "started_at": self.first.window_start.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "reasons": exp.reasons,
            "facts": [{"label": label, "value": value} for label, value in exp.facts],
            "top_mentions": [m.__dict__ for m in exp.top_mentions],
            "history": self.history,
            "acks": [a.model_dump(mode="json") for a in self.acks],
            "alert": self.latest.model_dump(mode="json"),
        }


class AlertBook:
    """The last ``max_episodes`` episodes, newest first."""

    def __init__(self, max_episodes: int = 200):
        self.max_episodes = max_episodes
        self._episodes: OrderedDict[str, Episode] = OrderedDict()
        self._orphan_acks: dict[str, list[AlertAck]] = {}

    def add_alert(self, alert: Alert) -> Episode:
        episode = self._episodes.get(alert.alert_id)
        if episode is None:
            episode = Episode(alert.alert_id, alert.brand, alert, alert)
            episode.acks.extend(self._orphan_acks.pop(alert.alert_id, []))
            self._episodes[alert.alert_id] = episode
            while len(self._episodes) > self.max_episodes:
                self._episodes.popitem(last=False)
        elif episode.latest.status == "resolved" and alert.created_at < episode.latest.created_at:
            return episode  # a late record of a finished episode
        previous = episode.history[-1] if episode.history else None
        if previous is None or (previous["severity"], previous["status"]) != (alert.severity, alert.status):
            episode.history.append(
                {
                    "at": alert.created_at.isoformat(),
                    "severity": alert.severity,
                    "status": alert.status,
                    "risk": alert.risk,
                }
            )
        episode.latest = alert
        peak = episode.peak
        if alert.status == "firing" and (
            peak is None or (SEVERITY_RANK[alert.severity], alert.risk) > (SEVERITY_RANK[peak.severity], peak.risk)
        ):
            episode.peak = alert
        return episode

    def add_ack(self, ack: AlertAck) -> None:
        episode = self._episodes.get(ack.alert_id)
        target = episode.acks if episode is not None else self._orphan_acks.setdefault(ack.alert_id, [])
        if not any(a.actor == ack.actor and a.at == ack.at for a in target):
            target.append(ack)
        if len(self._orphan_acks) > self.max_episodes:
            self._orphan_acks.pop(next(iter(self._orphan_acks)))

    def get(self, alert_id: str) -> Episode | None:
        return self._episodes.get(alert_id)

    def recent(self, limit: int = 50) -> list[Episode]:
        """Firing episodes first (worst first), then resolved ones; newest activity first within each."""
        episodes = sorted(self._episodes.values(), key=lambda e: e.updated_at, reverse=True)
        episodes.sort(
            key=lambda e: (e.status != "firing", -SEVERITY_RANK[e.peak_severity] if e.status == "firing" else 0)
        )
        return episodes[:limit]


class AlertFeed:
    """Follows ``alerts`` and ``alerts.ack`` from the beginning into an `AlertBook` (a `TopicFollower`)."""

    def __init__(self, settings: Settings, book: AlertBook | None = None):
        if not settings.kafka.bootstrap_servers:
            raise ValueError("no Kafka bootstrap servers: set KAFKA_BOOTSTRAP_SERVERS")
        self.settings = settings
        self.book = book or AlertBook()
        self.alerts_topic = settings.topic(ALERTS.name)
        self.ack_topic = settings.topic(ALERTS_ACK.name)
        self.follower = TopicFollower(
            settings.kafka.bootstrap_servers,
            (self.alerts_topic, self.ack_topic),
            lambda record, _live: self._ingest(record.topic, record.value),
            name="alert-feed",
            fetch_max_wait_ms=200,
            settings=settings,
            component="alert-feed",
            max_records=1000,
        )
        self.caught_up: asyncio.Event = self.follower.caught_up_event
        """Set once the history of both topics has been read."""

    async def start(self) -> None:
        await self.follower.start()

    async def stop(self) -> None:
        await self.follower.stop()

    def _ingest(self, topic: str, value: bytes | None) -> None:
        if value is None:
            return
        try:
            if topic == self.ack_topic:
                self.book.add_ack(AlertAck.model_validate_json(value))
            else:
                self.book.add_alert(Alert.model_validate_json(value))
        except ValidationError:
            log.warning("alert feed: skipping an invalid record on %s", topic)


class AckPublisher:
    """Writes acknowledgements to ``alerts.ack`` (waits for the broker's acknowledgement)."""

    def __init__(self, settings: Settings):
        if not settings.kafka.bootstrap_servers:
            raise ValueError("no Kafka bootstrap servers: set KAFKA_BOOTSTRAP_SERVERS")
        self.settings = settings
        self.topic = settings.topic(ALERTS_ACK.name)
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = new_producer(settings=self.settings, linger_ms=0, client_id="crisiswatch-ack")
        await self._producer.start()

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> AckPublisher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def publish(self, ack: AlertAck) -> AlertAck:
        if self._producer is None:
            raise RuntimeError("AckPublisher is not started")
        await self._producer.send_and_wait(self.topic, ack.to_bytes(), key=ack.alert_id.encode())
        return ack

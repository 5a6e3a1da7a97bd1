"""`ControlFeed`: a `TopicFollower` of ``publishing.control`` feeding a `ControlView`, with metrics.

The follower itself (read a topic from its beginning, know how fresh that view is, notice when the log
goes backwards) is part of the Kafka kit: `crisiswatch.follow.TopicFollower`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from aiokafka import ConsumerRecord

from crisiswatch.contracts.control import ControlMessage
from crisiswatch.contracts.topics import PUBLISHING_CONTROL
from crisiswatch.control import metrics
from crisiswatch.control.messages import Keyring
from crisiswatch.control.view import ControlView, Ingested
from crisiswatch.follow import TopicFollower
from crisiswatch.settings import ControlSettings, KafkaSettings

log = logging.getLogger(__name__)


class ControlFeed:
    """Follows ``publishing.control`` into a `ControlView`, verifying every record.

    ``listeners`` are called (in the event-loop thread) with every `Ingested` result, accepted or not;
    ``reset_listeners`` with the states the view held when the log went backwards (it is then cleared
    and re-read). Rejected records are counted and logged at a bounded rate (`metrics.REJECTIONS`).
    """

    REREAD_INTERVAL_SECONDS = 30.0

    def __init__(
        self,
        kafka: KafkaSettings,
        control: ControlSettings,
        keyring: Keyring,
        *,
        component: str,
        name: str | None = None,
        fetch_max_wait_ms: int = 100,
        bootstrap_servers: str | None = None,
    ):
        servers = bootstrap_servers or kafka.bootstrap_servers
        if not servers:
            raise ValueError("no Kafka bootstrap servers: set KAFKA_BOOTSTRAP_SERVERS")
        self.component = component
        self.view = ControlView(keyring, control.control_max_age_seconds)
        self.rejected: Counter[str] = Counter()
        self.listeners: list[Callable[[Ingested], None]] = []
        self.reset_listeners: list[Callable[[dict[str, ControlMessage]], None]] = []
        self.follower = TopicFollower(
            servers,
            kafka.topic(PUBLISHING_CONTROL.name),
            self._on_record,
            name=name or component,
            fetch_max_wait_ms=fetch_max_wait_ms,
            settings=kafka,
            component=component,
        )
        self.follower.on_reset = self._on_reset
        self._rejected_scopes: set[str] = set()
        self._last_reread = -self.REREAD_INTERVAL_SECONDS

    async def start(self) -> None:
        await self.follower.start()

    async def stop(self) -> None:
        await self.follower.stop()

    def _on_reset(self, why: str) -> None:
        before = self.view.clear()
        self._rejected_scopes.clear()
        for listener in self.reset_listeners:
            try:
                listener(before)
            except Exception:
                log.exception("control reset listener failed")

    def _on_record(self, record: ConsumerRecord, live: bool) -> None:
        result = self.view.ingest(record.key, record.value, live=live)
        if result.rejected is not None:
            self.rejected[result.rejected.reason] += 1
            if result.scope is not None:
                self._rejected_scopes.add(result.scope)
            key = record.key.decode(errors="replace")[:80] if record.key is not None else None
            metrics.REJECTIONS.rejected(
                self.component, result.rejected.reason, f"key {key!r} offset {record.offset}: {result.rejected}"
            )
        elif result.outcome in ("applied", "reasserted") and result.message is not None:
            metrics.MESSAGES_APPLIED.labels(self.component, result.message.state).inc()
        if result.missing:
            self._on_missing(result)
        for listener in self.listeners:
            try:
                listener(result)
            except Exception:
                log.exception("control listener failed")

    def _on_missing(self, result: Ingested) -> None:
        """A heartbeat names states this view does not hold and never saw rejected: re-read the topic
        (at most every 30 s), in case the topic was re-created under our position."""
        unexplained = [scope for scope in result.missing if scope not in self._rejected_scopes]
        now = time.monotonic()
        if unexplained and now - self._last_reread >= self.REREAD_INTERVAL_SECONDS:
            self._last_reread = now
            self.follower.request_reread(f"the state heartbeat names states this reader never read ({unexplained[0]})")

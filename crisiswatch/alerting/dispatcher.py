"""`AlertDispatcher`: reads ``alerts`` and ``alerts.ack`` and delivers notifications to every channel.

How it stays correct across restarts: it assigns itself every partition of both topics, reads them
from the beginning, and feeds every record to the `DeliveryPolicy`; records below the offsets it
committed last time only rebuild the policy's memory (which episodes were announced, at what
severity), records after them are delivered. An offset is committed only when every channel has
delivered (or given up on) the notifications of every record up to it: delivery is at least once,
and receivers can de-duplicate on the notification's idempotency key.

Isolation: each channel has its own queue and worker. A failing channel is retried with exponential
backoff and jitter (honouring ``Retry-After``) up to ``alert_retry_attempts`` times, then given up,
while the other channels go on; nothing a channel does can crash the dispatcher.

Routes and reminders: every channel is on the ``primary`` route except the channels named in
``alert_escalation_channels`` (and the webhook of ``alert_escalation_webhook_url``, named
``escalation``), which form the ``escalation`` route. Once caught up, the dispatcher asks the policy every
``reminder_check_seconds`` which reminders and escalations are due (`DeliveryPolicy.due`, see
`crisiswatch.alerting.policy.ReminderPolicy`) and delivers them to their routes; the clock is injectable
(``clock``), and `remind` runs one check, so tests need no sleeps.

Run exactly one dispatcher per deployment (two would both deliver).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from crisiswatch.alerting import metrics
from crisiswatch.alerting.channels import Channel, DeliveryError, WebhookChannel, channels_from_settings
from crisiswatch.alerting.policy import ESCALATION, PRIMARY, DeliveryPolicy, Notification, ReminderPolicy
from crisiswatch.contracts.records import Alert, AlertAck
from crisiswatch.contracts.topics import ALERTS, ALERTS_ACK
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.follow import cancel_and_wait
from crisiswatch.kafka import new_consumer
from crisiswatch.settings import Settings

log = logging.getLogger(__name__)

QUEUE_LIMIT = 1000


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped, honouring a server's ``Retry-After``."""

    attempts: int = 6
    backoff: float = 1.0
    max_backoff: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            settings.alerts.alert_retry_attempts,
            settings.alerts.alert_retry_backoff_seconds,
            settings.alerts.alert_retry_max_backoff_seconds,
        )

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


async def deliver_with_retry(
    channel: Channel,
    notification: Notification,
    retry: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> bool:
    """Deliver with retries; True when delivered. Never raises (except cancellation)."""
    for attempt in range(1, retry.attempts + 1):
        try:
            await channel.send(notification)
        except DeliveryError as exc:
            error, retryable, retry_after = str(exc), exc.retryable, exc.retry_after
        except Exception as exc:  # a bug in a channel must not take the dispatcher down
            log.exception("channel %s raised while sending %s", channel.name, notification.idempotency_key)
            error, retryable, retry_after = type(exc).__name__, True, None
        else:
            metrics.DELIVERIES.labels(channel.name, "ok").inc()
            log.info("delivered %s to %s", notification.idempotency_key, channel.name)
            return True
        if not retryable or attempt == retry.attempts:
            metrics.DELIVERIES.labels(channel.name, "failed").inc()
            log.error(
                "giving up on %s to %s after %d attempt(s): %s",
                notification.idempotency_key,
                channel.name,
                attempt,
                error,
            )
            return False
        metrics.DELIVERIES.labels(channel.name, "retry").inc()
        delay = retry.delay(attempt, retry_after)
        log.warning(
            "delivery of %s to %s failed (attempt %d/%d, retrying in %.1f s): %s",
            notification.idempotency_key,
            channel.name,
            attempt,
            retry.attempts,
            delay,
            error,
        )
        await sleep(delay)
    return False


class _Pending:
    """Deliveries of one record still in flight."""

    __slots__ = ("remaining",)

    def __init__(self, remaining: int):
        self.remaining = remaining

    def done(self) -> None:
        self.remaining -= 1


class OffsetTracker:
    """Which offsets may be committed: those whose record, and every earlier one, is fully handled."""

    def __init__(self) -> None:
        self._pending: dict[TopicPartition, deque[tuple[int, _Pending]]] = {}

    def add(self, tp: TopicPartition, offset: int, pending: _Pending) -> None:
        self._pending.setdefault(tp, deque()).append((offset, pending))

    def committable(self) -> dict[TopicPartition, int]:
        """Next offset to commit per partition (only partitions that advanced)."""
        out: dict[TopicPartition, int] = {}
        for tp, items in self._pending.items():
            while items and items[0][1].remaining <= 0:
                out[tp] = items.popleft()[0] + 1
        return out

    def in_flight(self) -> int:
        return sum(1 for items in self._pending.values() for _, p in items if p.remaining > 0)


def reminders_from_settings(settings: Settings) -> ReminderPolicy:
    """The reminder and escalation delays of the settings (minutes there, seconds here)."""
    return ReminderPolicy(settings.alerts.alert_remind_minutes * 60.0, settings.alerts.alert_escalate_minutes * 60.0)


def escalation_channels_from_settings(settings: Settings) -> list[Channel]:
    """The channel only the escalation route has (``alert_escalation_webhook_url``), if configured."""
    url = settings.alerts.alert_escalation_webhook_url
    if url is None:
        return []
    configured = settings.alerts.alert_webhook_secret
    secret = configured.get_secret_value().encode() if configured else None
    return [WebhookChannel(url.get_secret_value(), settings, secret=secret, name=ESCALATION)]


class ChannelWorker:
    """One channel's ordered queue of notifications and the task that delivers them."""

    def __init__(self, channel: Channel, retry: RetryPolicy, routes: frozenset[str] = frozenset({PRIMARY})):
        self.channel = channel
        self.retry = retry
        self.routes = routes
        """The routes whose notifications this channel delivers."""
        self.queue: asyncio.Queue[tuple[Notification, _Pending]] = asyncio.Queue(QUEUE_LIMIT)

    def submit(self, notification: Notification, pending: _Pending) -> None:
        try:
            self.queue.put_nowait((notification, pending))
        except asyncio.QueueFull:
            metrics.DELIVERIES.labels(self.channel.name, "dropped").inc()
            log.error("queue of %s is full: dropped %s", self.channel.name, notification.idempotency_key)
            pending.done()
        metrics.QUEUE_DEPTH.labels(self.channel.name).set(self.queue.qsize())

    async def run(self) -> None:
        while True:
            notification, pending = await self.queue.get()
            try:
                await deliver_with_retry(self.channel, notification, self.retry)
            finally:
                pending.done()
                self.queue.task_done()
                metrics.QUEUE_DEPTH.labels(self.channel.name).set(self.queue.qsize())

    async def run_periodic(self) -> None:
        period = self.channel.period
        if not period:
            return
        while True:
            await asyncio.sleep(period)
            await self.periodic_once()

    async def periodic_once(self) -> None:
        try:
            await self.channel.periodic()
        except DeliveryError as exc:
            log.warning("periodic re-post to %s failed: %s", self.channel.name, exc)
        except Exception:
            log.exception("periodic task of %s failed", self.channel.name)


class AlertDispatcher:
    """Consumes alerts and acknowledgements; delivers notifications to every configured channel.

    Its consumer is driven by hand, not by a `crisiswatch.follow.TopicFollower`: it belongs to a consumer
    group and commits what was delivered, replaying from the beginning only up to its committed offsets.
    """

    def __init__(
        self,
        settings: Settings,
        channels: list[Channel] | None = None,
        *,
        policy: DeliveryPolicy | None = None,
        retry: RetryPolicy | None = None,
        group_id: str | None = None,
        create_topics: bool = True,
        clock: Callable[[], datetime] = utcnow,
        reminder_check_seconds: float = 15.0,
    ):
        """``clock`` tells the time reminders are due against; ``reminder_check_seconds`` how often they are checked."""
        if not settings.kafka.bootstrap_servers:
            raise ValueError("no Kafka bootstrap servers: set KAFKA_BOOTSTRAP_SERVERS")
        self.settings = settings
        if channels is None:
            channels = [*channels_from_settings(settings), *escalation_channels_from_settings(settings)]
        self.channels = channels
        self.policy = policy or DeliveryPolicy(
            min_severity=settings.alerts.alert_min_severity,
            cooldown_seconds=settings.alerts.alert_cooldown_seconds,
            max_age_seconds=settings.alerts.alert_max_age_seconds,
            reminders=reminders_from_settings(settings),
        )
        self.clock = clock
        self.reminder_check_seconds = reminder_check_seconds
        self.retry = retry or RetryPolicy.from_settings(settings)
        self.group_id = group_id or f"{settings.kafka.app_id}-alerting"
        self.create_topics = create_topics
        self.alerts_topic = settings.topic(ALERTS.name)
        self.ack_topic = settings.topic(ALERTS_ACK.name)
        escalation = {n.strip() for n in (settings.alerts.alert_escalation_channels or "").split(",") if n.strip()}
        escalation.add(ESCALATION)
        self.workers = [
            ChannelWorker(c, self.retry, frozenset({ESCALATION if c.name in escalation else PRIMARY}))
            for c in self.channels
        ]
        unknown = escalation - {c.name for c in self.channels} - {ESCALATION}
        if unknown:
            log.warning("alert_escalation_channels names no configured channel: %s", ", ".join(sorted(unknown)))
        self.tracker = OffsetTracker()
        self._consumer: AIOKafkaConsumer | None = None
        self._committed: dict[TopicPartition, int | None] = {}
        self._uncommitted: dict[TopicPartition, int] = {}
        self._replaying: set[TopicPartition] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._consume_task: asyncio.Task[None] | None = None
        self.caught_up = asyncio.Event()
        """Set once the records read before this start have been replayed."""

    # --- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, assign every partition, start the channel workers and the consume loop."""
        if self.create_topics:
            from crisiswatch.kafka import ensure_topics

            await ensure_topics(self.settings.kafka.bootstrap_servers or "", self.settings)
        if not self.channels:
            log.warning("no alert channel configured: alerts are read but delivered nowhere")
        for channel in self.channels:
            await channel.start()
        consumer = new_consumer(
            settings=self.settings,
            group_id=self.group_id,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            client_id="crisiswatch-alerting",
        )
        await consumer.start()
        self._consumer = consumer
        await consumer.topics()
        tps = [
            TopicPartition(topic, p)
            for topic in (self.alerts_topic, self.ack_topic)
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not tps:
            await self.stop()
            raise RuntimeError(f"topics {self.alerts_topic} / {self.ack_topic} do not exist")
        consumer.assign(tps)
        for tp in tps:
            self._committed[tp] = await consumer.committed(tp)
        await consumer.seek_to_beginning(*tps)
        self._replaying = {tp for tp, offset in self._committed.items() if offset}
        for worker in self.workers:
            self._tasks.append(asyncio.create_task(worker.run(), name=f"alerting-{worker.channel.name}"))
            self._tasks.append(asyncio.create_task(worker.run_periodic()))
        self._tasks.append(asyncio.create_task(self._commit_loop()))
        if self.policy.reminders.enabled:
            self._tasks.append(asyncio.create_task(self._remind_loop(), name="alerting-reminders"))
        if not self._replaying:
            await self._replay_done()
        self._consume_task = asyncio.create_task(self._consume_loop(), name="alerting-consume")
        log.info("alert dispatcher started with channels: %s", ", ".join(c.name for c in self.channels) or "none")

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Stop reading, give queued deliveries ``drain_seconds`` to finish, commit, disconnect."""
        task, self._consume_task = self._consume_task, None
        await cancel_and_wait(task)
        if self.workers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(w.queue.join() for w in self.workers)), drain_seconds)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await self._commit(consumer)
            await consumer.stop()
        for channel in self.channels:
            with contextlib.suppress(Exception):
                await channel.close()

    async def __aenter__(self) -> AlertDispatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run_forever(self) -> None:
        """Start, then run until cancelled."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def idle(self, timeout: float = 30.0) -> bool:
        """Wait until every channel queue is empty and every read record is handled (for tests, bench)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.tracker.in_flight() == 0 and all(w.queue.empty() for w in self.workers):
                return True
            await asyncio.sleep(0.05)
        return False

    # --- consuming -----------------------------------------------------------------------------------
    async def _consume_loop(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=500, max_records=500)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading alerts failed; retrying in 1 s")
                await asyncio.sleep(1.0)
                continue
            for tp, records in batches.items():
                for record in records:
                    self._handle(tp, record.offset, record.value)
            if self._replaying:
                for tp in list(self._replaying):
                    if await consumer.position(tp) >= (self._committed[tp] or 0):
                        self._replaying.discard(tp)
                if not self._replaying:
                    await self._replay_done()

    def _handle(self, tp: TopicPartition, offset: int, value: bytes | None) -> None:
        committed = self._committed.get(tp)
        live = committed is None or offset >= committed
        notification = self._decide(tp.topic, value)
        if not live:
            return
        if notification is None:
            self.tracker.add(tp, offset, _Pending(0))
            return
        metrics.NOTIFICATIONS.labels(notification.event).inc()
        log.warning(
            "notify %s: %s %s (%s)",
            notification.event,
            notification.alert.brand,
            notification.peak_severity,
            notification.alert_id,
        )
        workers = self._routed(notification)
        pending = _Pending(len(workers))
        self.tracker.add(tp, offset, pending)
        for worker in workers:
            worker.submit(notification, pending)

    def _routed(self, notification: Notification) -> list[ChannelWorker]:
        return [w for w in self.workers if w.routes.intersection(notification.routes)]

    # --- reminders -----------------------------------------------------------------------------------
    async def remind(self, now: datetime | None = None) -> list[Notification]:
        """Deliver the reminders and escalations due at ``now`` (default: the clock); returns them."""
        if not self.caught_up.is_set():
            return []  # the policy does not know yet which episodes are acknowledged or over
        due = self.policy.due(now or self.clock())
        for notification in due:
            metrics.NOTIFICATIONS.labels(notification.event).inc()
            log.warning(
                "notify %s: %s %s unacknowledged (%s) to %s",
                notification.event,
                notification.alert.brand,
                notification.peak_severity,
                notification.alert_id,
                "+".join(notification.routes),
            )
            workers = self._routed(notification)
            if not workers:
                log.error(
                    "no channel on route(s) %s for %s", "+".join(notification.routes), notification.idempotency_key
                )
            pending = _Pending(len(workers))  # not tied to an offset: a restart may send it again (same key)
            for worker in workers:
                worker.submit(notification, pending)
        return due

    async def _remind_loop(self) -> None:
        while True:
            await asyncio.sleep(self.reminder_check_seconds)
            try:
                await self.remind()
            except Exception:
                log.exception("checking reminders failed")

    def _decide(self, topic: str, value: bytes | None) -> Notification | None:
        if value is None:
            return None
        try:
            if topic == self.ack_topic:
                ack = AlertAck.model_validate_json(value)
                metrics.RECORDS.labels(ALERTS_ACK.name, "ok").inc()
                return self.policy.on_ack(ack)
            alert = Alert.model_validate_json(value)
        except ValidationError as exc:
            metrics.RECORDS.labels(ALERTS_ACK.name if topic == self.ack_topic else ALERTS.name, "invalid").inc()
            log.warning("skipping an invalid record on %s: %d error(s)", topic, exc.error_count())
            return None
        metrics.RECORDS.labels(ALERTS.name, "ok").inc()
        return self.policy.on_alert(alert)

    async def _replay_done(self) -> None:
        active = self.policy.active()
        for worker in self.workers:
            try:
                await worker.channel.restore(active)
            except Exception:
                log.exception("restoring %s failed", worker.channel.name)
            if active and worker.channel.period:
                self._tasks.append(asyncio.create_task(worker.periodic_once()))
        self.caught_up.set()
        log.info("alert dispatcher caught up (%d episode(s) still firing)", len(active))

    # --- committing ----------------------------------------------------------------------------------
    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._consumer is not None:
                await self._commit(self._consumer)

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        self._uncommitted.update(self.tracker.committable())
        if not self._uncommitted:
            return
        offsets, self._uncommitted = self._uncommitted, {}
        try:
            await consumer.commit(offsets)
        except Exception as exc:
            log.warning("committing alert offsets failed (will retry): %s", exc)
            self._uncommitted = {**offsets, **self._uncommitted}

"""`Relay` (``crisiswatch relay``): tells external systems about every pause and resume by webhook.

It follows ``publishing.control`` like a gate (verifying every record, ignoring forged, replayed and
late ones), and POSTs each new change to every URL of ``ControlSettings.relay_urls``
(``CRISISWATCH_RELAY_URLS="https://ads.example/hooks/pause,https://..."``). On start it sends the
current state of every scope once (receivers de-duplicate with the idempotency key), then every change.

Each POST carries the signed control message as its JSON body (receivers can verify ``sig`` with the
Ed25519 public key of ``kid``, as a gate does), and the headers ``Idempotency-Key: <scope>:<seq>``,
``X-Crisiswatch-Event: publishing.paused|publishing.resumed`` and ``X-Crisiswatch-Scope``. A 2xx
answer is success; a network error, a timeout, 408, 425, 429 or 5xx is retried with exponential
backoff and jitter (0.5 s, 1 s, 2 s, ... up to 30 s, honouring ``Retry-After``), up to
``relay_max_attempts`` times; other answers are not retried. Each URL has its own ordered queue, so
a slow receiver delays no other. Re-assertions (same ``seq``) and heartbeats are not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter

import aiohttp
from yarl import URL

from crisiswatch.contracts.control import ControlMessage
from crisiswatch.control import metrics
from crisiswatch.control.follower import ControlFeed
from crisiswatch.control.messages import Keyring
from crisiswatch.control.view import Ingested
from crisiswatch.settings import Settings

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 425, 429})


class Relay:
    """Pushes verified pause/resume changes to webhook URLs, with retries and idempotency keys."""

    def __init__(
        self,
        settings: Settings,
        *,
        urls: list[str] | None = None,
        keyring: Keyring | None = None,
        max_attempts: int | None = None,
        backoff_initial_seconds: float = 0.5,
        backoff_max_seconds: float = 30.0,
        timeout_seconds: float = 10.0,
    ):
        self.urls = list(urls if urls is not None else settings.control.relay_urls)
        if not self.urls:
            raise ValueError("no webhook URLs: set CRISISWATCH_RELAY_URLS='https://…[,https://…]'")
        keyring = keyring if keyring is not None else Keyring.from_settings(settings.control)
        keyring = keyring.verifying_only(hmac_allowed=settings.control.control_hmac_migration)
        if not keyring:
            raise ValueError("the relay cannot verify control messages: set CRISISWATCH_CONTROL_PUBLIC_KEYS")
        self.max_attempts = max_attempts or settings.control.relay_max_attempts
        self.backoff_initial_seconds = backoff_initial_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.timeout_seconds = timeout_seconds
        self.feed = ControlFeed(settings.kafka, settings.control, keyring, component="relay")
        self.outcomes: Counter[str] = Counter()
        """Delivery outcomes since start: ``delivered``, ``failed``, ``retried``."""
        self._queues = {url: asyncio.Queue[ControlMessage]() for url in self.urls}
        self._session: aiohttp.ClientSession | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._synced = False

    async def start(self, timeout: float = 15.0) -> None:
        """Read the current state, queue it for every URL, then follow changes."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_seconds),
            headers={"User-Agent": "crisiswatch-relay"},
        )
        self.feed.listeners.append(self._on_ingested)
        await self.feed.start()
        if not await self.feed.follower.wait_caught_up(timeout):
            await self.stop()
            raise TimeoutError("could not read the control topic in time")
        self._synced = True
        for message in self.feed.view.states().values():
            self._enqueue(message)
        self._workers = [asyncio.create_task(self._work(url, queue)) for url, queue in self._queues.items()]

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers = []
        await self.feed.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Start, relay until ``stop`` is set (or forever), stop."""
        await self.start()
        try:
            await (stop or asyncio.Event()).wait()
        finally:
            await self.stop()

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued change was delivered or given up; False on timeout."""
        try:
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in self._queues.values())), timeout)
        except TimeoutError:
            return False
        return True

    def _on_ingested(self, result: Ingested) -> None:
        if self._synced and result.changed and result.message is not None:
            self._enqueue(result.message)

    def _enqueue(self, message: ControlMessage) -> None:
        for queue in self._queues.values():
            queue.put_nowait(message)

    async def _work(self, url: str, queue: asyncio.Queue[ControlMessage]) -> None:
        while True:
            message = await queue.get()
            try:
                await self.deliver(url, message)
            except Exception:
                log.exception("relay to %s failed unexpectedly", _safe_url(url))
            finally:
                queue.task_done()

    async def deliver(self, url: str, message: ControlMessage) -> bool:
        """POST one change to one URL, retrying with exponential backoff; True when delivered."""
        assert self._session is not None
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.change_key,
            "X-Crisiswatch-Event": f"publishing.{'paused' if message.paused else 'resumed'}",
            "X-Crisiswatch-Scope": message.scope,
        }
        body = message.to_bytes()
        delay = self.backoff_initial_seconds
        for attempt in range(1, self.max_attempts + 1):
            retry_after: float | None = None
            try:
                async with self._session.post(url, data=body, headers=headers) as response:
                    if 200 <= response.status < 300:
                        self._count("delivered")
                        log.info("relayed %s to %s", message.change_key, _safe_url(url))
                        return True
                    problem = f"HTTP {response.status}"
                    if response.status < 500 and response.status not in RETRYABLE_STATUS:
                        break
                    retry_after = _seconds(response.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = type(exc).__name__
            if attempt == self.max_attempts:
                break
            self._count("retried")
            wait = min(self.backoff_max_seconds, max(delay, retry_after or 0.0)) * random.uniform(0.8, 1.2)
            log.warning(
                "relay of %s to %s failed (%s), attempt %d/%d; retrying in %.1f s",
                message.change_key, _safe_url(url), problem, attempt, self.max_attempts, wait,
            )  # fmt: skip
            await asyncio.sleep(wait)
            delay = min(self.backoff_max_seconds, delay * 2)
        self._count("failed")
        log.error("gave up relaying %s to %s: %s", message.change_key, _safe_url(url), problem)
        return False

    def _count(self, outcome: str) -> None:
        self.outcomes[outcome] += 1
        metrics.RELAY_DELIVERIES.labels(outcome).inc()


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _safe_url(url: str) -> str:
    """The URL without credentials or query string (which may hold tokens), for logs."""
    parsed = URL(url)
    return str(parsed.with_user(None).with_query(None).with_fragment(None))

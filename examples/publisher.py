"""An example publishing service that embeds the crisiswatch `PublishingGate`.

It walks through a list of scheduled posts; when a post falls due it asks the gate, publishes it if
allowed, and otherwise defers it to the gate's backlog. When the blocking scope resumes, held posts
come back in order under a rate limit, skipped ones are listed, and posts under review wait for a
person. "Publishing" here is a log line: replace `ExamplePublisher.send` with your API call.

Try it against a cluster. The service holds only the *public* key: it can verify pauses and resumes,
never sign one. A writer (the CLI here; a worker or ``crisiswatch schedule run`` in production) holds the
private key and re-signs the state (the heartbeat) that the gate needs to say yes::

    crisiswatch keys generate --kid k1          # prints CRISISWATCH_CONTROL_KEYS=... and ..._PUBLIC_KEYS=...
    export KAFKA_BOOTSTRAP_SERVERS=localhost:9092
    CRISISWATCH_CONTROL_PUBLIC_KEYS=k1:ed25519:<public> python examples/publisher.py --posts 120 --every 1
    # in another shell, as a writer:
    export CRISISWATCH_CONTROL_KEYS=k1:ed25519:<private> CRISISWATCH_USER=alice
    crisiswatch pause --reason "test" --on-resume hold
    crisiswatch resume --reason "done"

Without a writer running, every post is deferred after ``CRISISWATCH_CONTROL_HEARTBEAT_MAX_AGE_SECONDS``:
the gate fails closed when nobody vouches for the state (the reason is in each DEFERRED line).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control import PublishingGate
from crisiswatch.settings import Settings

log = logging.getLogger("example.publisher")

CHANNELS = ("twitter", "facebook", "linkedin", "email")
ACCOUNTS = {"acme": ("acme_us", "acme_fr"), "globex": ("globex_main",)}


@dataclass(frozen=True)
class ScheduledPost:
    """A post the brand planned to publish at ``due_at``."""

    post_id: str
    due_at: datetime
    channel: str
    account: str
    brand: str
    text: str


def demo_posts(count: int, every_seconds: float, start: datetime | None = None) -> list[ScheduledPost]:
    """``count`` posts, one every ``every_seconds``, spread over channels, accounts and brands."""
    start = start or utcnow()
    accounts = [(brand, account) for brand, names in ACCOUNTS.items() for account in names]
    posts = []
    for i in range(count):
        brand, account = accounts[i % len(accounts)]
        channel = CHANNELS[i % len(CHANNELS)]
        due = start + timedelta(seconds=i * every_seconds)
        posts.append(ScheduledPost(f"post-{i:04d}", due, channel, account, brand, f"Hello from {brand} #{i}"))
    return posts


@dataclass
class ExamplePublisher:
    """Publishes due posts through the gate; defers, releases, skips and holds for review as told."""

    gate: PublishingGate
    posts: list[ScheduledPost]
    sender: Callable[[ScheduledPost], Awaitable[None]] | None = None
    published: list[tuple[str, datetime, str]] = field(default_factory=list)
    """(post id, when, ``on-time`` or ``released``)."""
    deferred: list[tuple[str, datetime, str]] = field(default_factory=list)
    """(post id, when, blocking scope)."""
    reported: set[str] = field(default_factory=set)

    async def run(self, linger_seconds: float = 0.0) -> None:
        """Handle every post as it falls due, then keep releasing the backlog for ``linger_seconds``."""
        helpers = [asyncio.create_task(self._release_backlog()), asyncio.create_task(self._report_backlog())]
        try:
            for post in sorted(self.posts, key=lambda p: p.due_at):
                await asyncio.sleep(max(0.0, (post.due_at - utcnow()).total_seconds()))
                await self._handle(post)
            await asyncio.sleep(linger_seconds)
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _handle(self, post: ScheduledPost) -> None:
        decision = self.gate.allowed(channel=post.channel, account=post.account, brand=post.brand)
        if decision.allowed:
            await self.send(post, "on-time")
            return
        self.gate.backlog.defer(
            post.post_id, decision, channel=post.channel, account=post.account, brand=post.brand,
            due_at=post.due_at, payload=post,
        )  # fmt: skip
        self.deferred.append((post.post_id, utcnow(), decision.scope or "unknown"))
        log.warning(
            "DEFERRED %s (%s): %s; on resume: %s", post.post_id, post.channel, decision.reason, decision.on_resume
        )

    async def _release_backlog(self) -> None:
        backlog = self.gate.backlog
        async for deferred in backlog.release():
            await self.send(deferred.payload, "released")
            backlog.forget([deferred.post_id])

    async def _report_backlog(self, every_seconds: float = 0.5) -> None:
        """Log posts that were skipped, or that wait for a person's review, once each."""
        while True:
            for post in self.gate.backlog.skipped():
                if post.post_id not in self.reported:
                    self.reported.add(post.post_id)
                    log.warning("SKIPPED %s: it fell due during the pause of %s", post.post_id, post.scope)
            for post in self.gate.backlog.awaiting_review():
                if post.post_id not in self.reported:
                    self.reported.add(post.post_id)
                    log.warning("REVIEW %s: waiting for a person (backlog.approve / .drop)", post.post_id)
            await asyncio.sleep(every_seconds)

    async def send(self, post: ScheduledPost, how: str) -> None:
        """Publish one post (here: log it, or call ``sender``)."""
        if self.sender is not None:
            await self.sender(post)
        self.published.append((post.post_id, utcnow(), how))
        log.info("PUBLISHED %s %s on %s/%s: %s", how, post.post_id, post.channel, post.account, post.text)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=60, help="How many demo posts.")
    parser.add_argument("--every", type=float, default=1.0, help="Seconds between posts.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    gate = PublishingGate.from_settings(Settings(), name="example-publisher")
    await gate.start()
    if not await gate.wait_ready(30):
        log.error("the gate could not read the control topic: every post will be deferred")
    try:
        publisher = ExamplePublisher(gate, demo_posts(args.posts, args.every))
        await publisher.run(linger_seconds=args.every * 5)
    finally:
        await gate.stop()


if __name__ == "__main__":
    asyncio.run(main())

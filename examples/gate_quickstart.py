"""The PublishingGate quick start (README, "Adopting the PublishingGate"), runnable as it stands.

A publishing service asks the gate before every post: allowed posts go out, refused ones wait in the
gate's backlog, and a resume hands the held ones back in due order. Needs only the public keys:

    export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 CRISISWATCH_CONTROL_PUBLIC_KEYS=k1:ed25519:...
    python examples/gate_quickstart.py                     # then pause / resume brand:globex, Ctrl-C stops
    python examples/gate_quickstart.py --until-released    # exits once no post waits any more
"""

import asyncio
import contextlib
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime

from crisiswatch.control import PublishingGate
from crisiswatch.settings import ControlSettings, KafkaSettings


@dataclass
class Post:
    id: str
    brand: str
    text: str
    channel: str = "twitter"
    account: str = "main"
    due_at: datetime = field(default_factory=lambda: datetime.now(UTC))


async def publish(post: Post) -> None:
    print(f"published {post.id} ({post.brand}): {post.text}", flush=True)  # your real publishing call


async def main(posts: list[Post], until_released: bool = False) -> None:
    # Only two sections: KAFKA_BOOTSTRAP_SERVERS (and TLS/SASL), CRISISWATCH_CONTROL_PUBLIC_KEYS (public keys only).
    gate = PublishingGate(KafkaSettings(), ControlSettings())
    await gate.start()
    await gate.wait_ready()  # reads the whole (compacted) topic first; until then it refuses every post
    try:
        for post in posts:
            decision = gate.allowed(channel=post.channel, account=post.account, brand=post.brand)  # in memory
            if decision.allowed:
                await publish(post)
            else:  # decision.reason / .scope / .on_resume / .resume_at / .alert_id
                print(f"deferred {post.id}: {decision.reason}", flush=True)
                gate.backlog.defer(
                    post.id, decision, channel=post.channel, account=post.account, brand=post.brand,
                    due_at=post.due_at, payload=post,
                )  # fmt: skip
        while not (until_released and not gate.backlog.waiting() and not gate.backlog.ready()):
            async for held in gate.backlog.release(until_empty=True):  # held posts, after a resume
                await publish(held.payload)
                gate.backlog.forget([held.post_id])
            await asyncio.sleep(0.2)
    finally:
        await gate.stop()


if __name__ == "__main__":
    demo_posts = [
        Post("post-1", "acme", "Our spring collection is here"),
        Post("post-2", "globex", "Globex keeps your data safe"),
    ]
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C stops it
        asyncio.run(main(demo_posts, until_released="--until-released" in sys.argv))

"""The posts a publishing service deferred because of a pause, and what becomes of them on resume.

When `PublishingGate.allowed` says no, the service hands the post to ``gate.backlog.defer(...)``. When
the scope that blocked it resumes, the resume choice of that scope decides:

* ``hold``: the post becomes *ready*; `Backlog.release` (async) or `Backlog.take` (sync) hands ready
  posts back in due order, at most ``ControlSettings.backlog_release_per_second``;
* ``skip``: the post is dropped and listed in `Backlog.skipped`;
* ``review``: the post waits in `Backlog.awaiting_review` until a person calls `Backlog.approve`
  (becomes ready) or `Backlog.drop` (skipped).

A post blocked by several paused scopes moves to the next blocking scope when the first resumes, and a
ready post is checked against the gate again right before it is handed out.

A post that was once released for publishing (``hold``, or approved after review) stays **held**: a later
pause blocks it again, whatever that pause's resume choice, but never skips it; it becomes ready again
when that pause ends. Held posts go out before new posts of the same channel and account: while one is
ready, `PublishingGate.allowed` answers "held posts go first" for that outlet, and the new post is
deferred behind them (`Decision.behind_held`), then released in due order under the same rate limit.

The backlog lives in the service's memory: a service that must survive restarts persists its own
schedule and re-defers. `counts` (reported by the gate to ``publishing.held``) is what the page and
``crisiswatch status`` show at resume time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from crisiswatch.contracts.control import ControlMessage, OnResume
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control import metrics
from crisiswatch.control.view import Decision, scopes_for

PostStatus = Literal["waiting", "ready", "skipped", "review", "released"]


@dataclass
class DeferredPost:
    """A post held back by a pause."""

    post_id: str
    scope: str
    """The scope that blocks it (the highest-precedence paused scope)."""
    due_at: datetime
    channel: str | None = None
    account: str | None = None
    brand: str | None = None
    payload: Any = None
    on_resume: OnResume = "review"
    """The choice announced when it was deferred; the resume message has the last word."""
    status: PostStatus = "waiting"
    deferred_at: datetime = field(default_factory=utcnow)
    held: bool = False
    """Released for publishing once (``hold`` or approved): a later pause never skips it."""
    behind_held: bool = False
    """Deferred only to go out after the held posts of its outlet (never paused itself)."""

    @property
    def order(self) -> tuple[bool, datetime, datetime]:
        """Release order: posts held by a pause first, in due order; then the new posts queued behind them."""
        return (self.behind_held, self.due_at, self.deferred_at)

    @property
    def scopes(self) -> list[str]:
        return scopes_for(channel=self.channel, account=self.account, brand=self.brand)


class Backlog:
    """Deferred posts by scope, released according to each scope's resume choice. Thread-safe."""

    def __init__(
        self,
        decide: Callable[[list[str]], Decision],
        state_of: Callable[[str], ControlMessage | None],
        release_per_second: float = 1.0,
    ):
        self._decide = decide
        self._state_of = state_of
        self.release_per_second = release_per_second
        self._posts: dict[str, DeferredPost] = {}
        self._lock = threading.Lock()
        self._next_release = 0.0

    def defer(
        self,
        post_id: str,
        decision: Decision,
        *,
        channel: str | None = None,
        account: str | None = None,
        brand: str | None = None,
        due_at: datetime | None = None,
        payload: Any = None,
    ) -> DeferredPost:
        """Hold ``post_id`` back because of ``decision`` (a refusal from the gate)."""
        if decision.allowed:
            raise ValueError("only a refused post can be deferred")
        queued = decision.behind_held  # not paused: it waits behind held posts of its outlet
        post = DeferredPost(
            post_id=post_id,
            scope=decision.scope or "global",
            due_at=due_at or utcnow(),
            channel=channel,
            account=account,
            brand=brand,
            payload=payload,
            on_resume=decision.on_resume or "review",
            status="ready" if queued else "waiting",
            held=queued,
            behind_held=queued,
        )
        with self._lock:
            self._posts[post_id] = post
        metrics.BACKLOG_POSTS.labels("deferred").inc()
        return post

    # --- views -----------------------------------------------------------------------------------
    def _with_status(self, status: PostStatus) -> list[DeferredPost]:
        self.refresh()
        with self._lock:
            posts = [p for p in self._posts.values() if p.status == status]
        return sorted(posts, key=lambda p: p.order)

    def waiting(self) -> list[DeferredPost]:
        """Posts still blocked by a pause."""
        return self._with_status("waiting")

    def by_scope(self) -> dict[str, list[DeferredPost]]:
        """Posts still blocked, grouped by the scope that blocks them."""
        grouped: dict[str, list[DeferredPost]] = {}
        for post in self.waiting():
            grouped.setdefault(post.scope, []).append(post)
        return grouped

    def ready(self) -> list[DeferredPost]:
        return self._with_status("ready")

    def skipped(self) -> list[DeferredPost]:
        return self._with_status("skipped")

    def awaiting_review(self) -> list[DeferredPost]:
        return self._with_status("review")

    def counts(self) -> dict[str, dict[str, int]]:
        """Per scope that blocked them: posts ``waiting`` for a resume, awaiting ``review``, ``ready`` to go."""
        self.refresh()
        counts: dict[str, dict[str, int]] = {}
        with self._lock:
            for post in self._posts.values():
                if post.status in ("waiting", "review", "ready"):
                    row = counts.setdefault(post.scope, {"waiting": 0, "review": 0, "ready": 0})
                    row[post.status] += 1
        return counts

    def first_in_line(self, channel: str | None, account: str | None) -> DeferredPost | None:
        """The earliest held post that is ready for this channel and account (new posts go after it)."""
        outlet = (channel, account)
        with self._lock:
            freed_maybe = any(p.status == "waiting" and (p.channel, p.account) == outlet for p in self._posts.values())
        if freed_maybe:
            self.refresh()  # a pause of theirs may just have ended: they go first
        with self._lock:
            ready = [p for p in self._posts.values() if p.status == "ready" and (p.channel, p.account) == outlet]
        return min(ready, key=lambda p: p.order, default=None)

    # --- decisions of people ---------------------------------------------------------------------
    def approve(self, post_ids: Iterable[str]) -> int:
        """Release reviewed posts (they become ready); returns how many were awaiting review."""
        return self._move(post_ids, "review", "ready", "approved")

    def drop(self, post_ids: Iterable[str]) -> int:
        """Drop reviewed posts (they become skipped)."""
        return self._move(post_ids, "review", "skipped", "skipped")

    def _move(self, post_ids: Iterable[str], source: PostStatus, target: PostStatus, outcome: str) -> int:
        moved = 0
        with self._lock:
            for post_id in post_ids:
                post = self._posts.get(post_id)
                if post is not None and post.status == source:
                    post.status = target
                    post.held = post.held or target == "ready"
                    moved += 1
        if moved:
            metrics.BACKLOG_POSTS.labels(outcome).inc(moved)
        return moved

    # --- release ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-check waiting posts against the gate and apply the resume choice of freed ones."""
        with self._lock:
            waiting = [p for p in self._posts.values() if p.status == "waiting"]
        for post in waiting:
            decision = self._decide(post.scopes)
            if not decision.allowed:
                post.scope = decision.scope or post.scope
                continue
            state = self._state_of(post.scope)
            choice: OnResume = state.on_resume if state is not None and not state.paused else post.on_resume
            if post.held:  # released once already: a later pause delays it but never skips it
                choice = "hold"
            post.status = {"hold": "ready", "skip": "skipped", "review": "review"}[choice]  # type: ignore[assignment]
            post.held = post.held or post.status == "ready"
            metrics.BACKLOG_POSTS.labels(post.status).inc()

    def take(self) -> DeferredPost | None:
        """The next ready post, if the rate limit allows one now (it is then marked released)."""
        now = time.monotonic()
        if now < self._next_release:
            return None
        for post in self.ready():
            decision = self._decide(post.scopes)
            if not decision.allowed:  # paused again meanwhile: it waits, still held (`refresh`)
                post.status, post.scope = "waiting", decision.scope or post.scope
                continue
            post.status = "released"
            self._next_release = now + 1.0 / self.release_per_second
            metrics.BACKLOG_POSTS.labels("released").inc()
            return post
        return None

    async def release(self, *, until_empty: bool = False) -> AsyncIterator[DeferredPost]:
        """Yield ready posts in due order under the rate limit, forever (or until none is left)."""
        while True:
            post = self.take()
            if post is not None:
                yield post
                continue
            if until_empty and not self.ready():
                return
            await asyncio.sleep(max(0.02, min(0.2, self._next_release - time.monotonic())))

    def forget(self, post_ids: Iterable[str]) -> None:
        """Remove posts from the backlog (e.g. once released and published, or listed as skipped)."""
        with self._lock:
            for post_id in post_ids:
                self._posts.pop(post_id, None)

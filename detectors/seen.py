"""Exact duplicates: a bounded memory of the ids already seen.

The enrich stage drops a mention whose id it saw within ``CRISISWATCH_DEDUPE_TTL_SECONDS``; connectors
remember the ids they handed over (in their checkpoints) so that an overlapping poll or a replayed stream
does not send one twice. Near-duplicates (the same story in other words) are `crisiswatch.detectors.neardup`'s.

Pure: the standard library only.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable


class SeenIds:
    """The ids seen last: at most ``max_ids`` (the least recently seen go first), each remembered for at most
    ``ttl_seconds`` after it was first seen (None: until it is pushed out). ``ids`` are remembered from now."""

    def __init__(self, ids: Iterable[str] = (), *, max_ids: int = 10_000, ttl_seconds: float | None = None):
        self.max_ids = max_ids
        self.ttl = ttl_seconds
        self._expires: OrderedDict[str, float] = OrderedDict()
        now = time.monotonic()
        for ident in ids:
            self.first_time(ident, now)

    def first_time(self, ident: str, now: float | None = None) -> bool:
        """Remember ``ident``; True unless it was already remembered (then it counts as seen again)."""
        now = time.monotonic() if now is None else now
        expires = self._expires.get(ident)
        if expires is not None and expires > now:
            self._expires.move_to_end(ident)
            return False
        self._expires[ident] = now + self.ttl if self.ttl is not None else float("inf")
        self._expires.move_to_end(ident)
        self._forget(now)
        return True

    def __contains__(self, ident: object) -> bool:
        expires = self._expires.get(ident)  # type: ignore[call-overload]
        return expires is not None and expires > time.monotonic()

    def __len__(self) -> int:
        return len(self._expires)

    def to_list(self) -> list[str]:
        """The remembered ids, least recently seen first (what a checkpoint stores)."""
        return list(self._expires)

    def _forget(self, now: float) -> None:
        expires = self._expires
        while len(expires) > self.max_ids:
            expires.popitem(last=False)
        while expires:  # the expired ones at the old end (a re-seen id may keep an expired one behind it a while)
            oldest, at = next(iter(expires.items()))
            if at > now:
                break
            del expires[oldest]

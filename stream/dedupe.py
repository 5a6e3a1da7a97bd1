"""Bounded de-duplication of mention ids."""

from __future__ import annotations

import time
from collections import OrderedDict


class SeenIds:
    """Remembers ids for ``ttl_seconds`` (processing time), at most ``max_ids`` of them (oldest go first)."""

    def __init__(self, ttl_seconds: float, max_ids: int):
        self.ttl = ttl_seconds
        self.max_ids = max_ids
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def first_time(self, mention_id: str, now: float | None = None) -> bool:
        """True the first time an id is seen within the TTL (and remembers it)."""
        now = time.monotonic() if now is None else now
        expires = self._seen.get(mention_id)
        if expires is not None and expires > now:
            return False
        self._seen[mention_id] = now + self.ttl
        self._seen.move_to_end(mention_id)
        self._evict(now)
        return True

    def _evict(self, now: float) -> None:
        seen = self._seen
        while len(seen) > self.max_ids:
            seen.popitem(last=False)
        while seen:
            oldest_id, expires = next(iter(seen.items()))
            if expires > now:
                break
            del seen[oldest_id]

"""Per-brand event-time window aggregates: counts, sentiment mix, reach, languages and evidence.

A `WindowAggregate` summarises the mentions of one brand in one event-time window with bounded
memory: distinct stories (near-duplicates folded by `detectors.neardup.story_key`) are counted with a
K-minimum-values sketch, exact up to ``DISTINCT_K`` stories; the evidence keeps the top mentions by
reach, and the most reached negative or crisis-term ones (`detectors.citing`), one per story.
`tumbling_window` maps an event time to its window. State round-trips through
plain dicts so the stream can changelog it. When the window closes, `detectors.closed.ClosedWindow.of`
turns the aggregate into the one closed-window record (every field it declares is read from here under
the same name): a new window field is counted here and declared there.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

from crisiswatch.detectors.citing import concerning, dict_concerning, dict_order, keep_cited

DISTINCT_K = 1024
VOICES_PER_STORY = 8
"""Voices (story and author together) remembered per solo story of a window."""
TOP_MENTIONS = 5
_MAX64 = float(2**64)
_KEYED_BY_STORY = ("solo_negativity", "solo_voices")
"""Dicts keyed by a story's 64-bit key: stored as [key, value] pairs (JSON object keys are strings)."""


def voice_key(story: int, author: str | None) -> int:
    """A 64-bit key of a story as posted by one author (the story alone when the author is unknown)."""
    if not author:
        return story
    digest = hashlib.blake2b(author.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return story ^ int.from_bytes(digest, "little")


def tumbling_window(event_time: float, size: float) -> tuple[float, float]:
    """(start, end) of the tumbling window of ``size`` seconds that holds ``event_time``."""
    start = event_time - (event_time % size)
    return start, start + size


@dataclass
class DistinctCounter:
    """K-minimum-values distinct counter: exact below ``k`` distinct keys, an estimate above."""

    k: int = DISTINCT_K
    mins: list[int] = field(default_factory=list)

    def add(self, key: int) -> int | None:
        """Count ``key``; return the key the sketch dropped to make room (or None)."""
        mins = self.mins
        if len(mins) >= self.k and key >= mins[-1]:
            return None
        pos = bisect.bisect_left(mins, key)
        if pos < len(mins) and mins[pos] == key:
            return None
        mins.insert(pos, key)
        if len(mins) > self.k:
            return mins.pop()
        return None

    def __contains__(self, key: int) -> bool:
        pos = bisect.bisect_left(self.mins, key)
        return pos < len(self.mins) and self.mins[pos] == key

    def count(self) -> int:
        if len(self.mins) < self.k:
            return len(self.mins)
        return round((self.k - 1) / (self.mins[-1] / _MAX64))


@dataclass
class MentionFacts:
    """The facts of one enriched mention that window aggregation needs."""

    id: str
    text: str
    source: str
    reach: int
    lang: str
    sentiment: str
    story: int
    crisis_terms: list[str] = field(default_factory=list)
    url: str | None = None
    p_negative: float | None = None
    """The sentiment model's probability that the mention is negative, when known."""
    shared: bool = False
    """The mention also names another watched brand (a competitor's story may name this one in passing)."""
    author: str | None = None
    """Who posted it (id or handle), when known: a story carried by new people is news again."""


@dataclass
class WindowAggregate:
    """Everything one brand's window needs for spike detection and risk evidence."""

    brand: str
    start: float
    end: float
    mentions: int = 0
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    reach: int = 0
    late_mentions: int = 0
    solo_voices: dict[int, list[int]] = field(default_factory=dict)
    """Up to ``VOICES_PER_STORY`` voice keys (story and author together) of each held solo story."""
    solo_negativity: dict[int, float] = field(default_factory=dict)
    """Negative probability of each solo story the sketch holds (the highest among its mentions, so the
    result does not depend on the order mentions arrive in); see `negative_mass`."""
    languages: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    crisis_terms: Counter[str] = field(default_factory=Counter)
    shared_mentions: int = 0
    repeated_stories: int = 0
    """Solo stories left out of the negativity because an earlier window already had them."""
    stories: DistinctCounter = field(default_factory=DistinctCounter)
    negative_stories: DistinctCounter = field(default_factory=DistinctCounter)
    solo_stories: DistinctCounter = field(default_factory=DistinctCounter)
    top: list[dict[str, Any]] = field(default_factory=list)

    def add(self, m: MentionFacts, late: bool = False) -> None:
        """Count one mention into this window."""
        self.mentions += 1
        if m.sentiment == "negative":
            self.negative += 1
            self.negative_stories.add(m.story)
        elif m.sentiment == "positive":
            self.positive += 1
        else:
            self.neutral += 1
        self.reach += m.reach
        self.late_mentions += late
        self.languages[m.lang] += 1
        self.sources[m.source] += 1
        for term in m.crisis_terms:
            self.crisis_terms[term] += 1
        self.stories.add(m.story)
        if m.shared:
            self.shared_mentions += 1
        else:
            p = m.p_negative
            if p is None or not 0.0 <= p <= 1.0:  # NaN fails both comparisons
                p = 1.0 if m.sentiment == "negative" else 0.0
            dropped = self.solo_stories.add(m.story)
            if dropped is not None:
                self.solo_negativity.pop(dropped, None)
                self.solo_voices.pop(dropped, None)
            if m.story in self.solo_stories:
                if p > self.solo_negativity.get(m.story, -1.0):
                    self.solo_negativity[m.story] = p
                voices = self.solo_voices.setdefault(m.story, [])
                if len(voices) < VOICES_PER_STORY:
                    voice = voice_key(m.story, m.author)
                    if voice not in voices:
                        voices.append(voice)
        self._consider_top(m)

    def _consider_top(self, m: MentionFacts) -> None:
        """Keep the mention if it is among the most reached, or among the most reached concerning ones
        (`detectors.citing.keep_cited`), one per story."""
        top = self.top
        worry = concerning(m.sentiment, terms=m.crisis_terms)
        rank = (-m.reach, m.id)  # `dict_order`: ties go to the smaller id, whatever the arrival order
        if len(top) >= TOP_MENTIONS and rank >= dict_order(top[TOP_MENTIONS - 1]):
            if not worry:
                return
            worried = [dict_order(item) for item in top if dict_concerning(item)]
            if len(worried) >= TOP_MENTIONS and rank >= worried[TOP_MENTIONS - 1]:
                return
        for i, held in enumerate(top):
            if held["story"] == m.story:
                if rank >= dict_order(held):
                    return
                del top[i]
                break
        top.append(
            {
                "id": m.id,
                "text": m.text[:280],
                "source": m.source,
                "reach": m.reach,
                "lang": m.lang,
                "sentiment": m.sentiment,
                "url": m.url,
                "story": m.story,
                "concerning": worry,
            }
        )
        top[:] = keep_cited(top, dict_order, dict_concerning)

    @property
    def story_count(self) -> int:
        return self.stories.count()

    @property
    def negative_story_count(self) -> int:
        return self.negative_stories.count()

    @property
    def solo_story_count(self) -> int:
        """Distinct solo stories, less those that repeat an earlier window's."""
        return max(0, self.solo_stories.count() - self.repeated_stories)

    def forget_repeats(self, recent: dict[int, float], since: float) -> int:
        """Drop from the negativity the solo stories whose every voice was heard in an earlier window since ``since``.

        A story that the same accounts post minute after minute (a bot flood, a spam campaign) is one
        voice: pooled over many windows it must count once, not once a window. The same story carried by
        new people (reshares of a viral post) is heard again. ``recent`` maps voice keys (story and
        author, `voice_key`) to the start of the last window that held them; this window's voices are
        added to it. Returns how many stories were dropped.
        """
        repeats = [
            k
            for k in self.solo_negativity
            if all(recent.get(v, float("-inf")) >= since for v in self.solo_voices.get(k) or [voice_key(k, None)])
        ]
        for key in repeats:
            del self.solo_negativity[key]
        self.repeated_stories += len(repeats)
        for key in self.solo_negativity.keys() | set(repeats):
            for voice in self.solo_voices.get(key) or [voice_key(key, None)]:
                recent[voice] = self.start
        return len(repeats)

    @property
    def negative_mass(self) -> float:
        """The expected number of negative solo stories (stories that name no other watched brand): their
        negative probabilities summed exactly, scaled up when the sketch holds only a sample of them."""
        held = len(self.solo_negativity)
        return math.fsum(self.solo_negativity.values()) * self._scale_up() if held else 0.0

    @property
    def negative_mass_sq(self) -> float:
        """The same sum of the squared probabilities (with `negative_mass`: their spread across stories)."""
        held = len(self.solo_negativity)
        return math.fsum(p * p for p in self.solo_negativity.values()) * self._scale_up() if held else 0.0

    def _scale_up(self) -> float:
        """How many stories each held one stands for (1 until the sketch overflows)."""
        held = len(self.solo_negativity)
        return max(1.0, self.solo_story_count / held) if held else 1.0

    def to_state(self) -> dict[str, Any]:
        """JSON-friendly state: every field, by its type (so a new field needs no code here)."""
        state: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, DistinctCounter):
                value = value.mins
            elif f.name in _KEYED_BY_STORY:
                value = [[k, v] for k, v in value.items()]
            elif isinstance(value, Counter):
                value = dict(value)
            state[f.name] = value
        return state

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> WindowAggregate:
        """An aggregate from `to_state`; a field the state lacks (written before it existed) takes its default."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in s:
                continue
            value = s[f.name]
            if f.type == "DistinctCounter":
                value = DistinctCounter(mins=list(value))
            elif f.name == "solo_negativity":
                value = {int(k): float(v) for k, v in value}
            elif f.name == "solo_voices":
                value = {int(k): [int(x) for x in v] for k, v in value}
            elif str(f.type).startswith("Counter"):
                value = Counter(value)
            elif isinstance(value, list):
                value = list(value)
            values[f.name] = value
        return cls(**values)

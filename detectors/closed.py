"""A closed window: the one contract between the window stage, the ``signals`` topic and the risk monitor.

`ClosedWindow` is built once, when a window closes (`ClosedWindow.of` a `detectors.window.WindowAggregate`
and the two detectors' `detectors.volume.SpikeResult` verdicts). The window stage publishes it as is (it
*is* the ``signals`` record: `crisiswatch.contracts.records.Signal` is this class), the risk stage validates it back
from the topic and hands it straight to `detectors.risk.BrandRiskMonitor.observe`, and the backtest
hands it over without the topic in between. There is no other shape of a closed window.

A new window field lands in two places: the aggregate that counts it (`WindowAggregate`: ``add`` and its
state) and its declaration here. `ClosedWindow.of` copies every field the aggregate has under the same
name, and `ClosedWindow.with_late` adds counts and merges mixes generically.

Pure: pydantic, the standard library and the shared vocabulary (`crisiswatch.contracts.vocabulary`) only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from crisiswatch.contracts.vocabulary import INT64_MAX, Count, SaturatedCount, Sentiment, UtcDatetime
from crisiswatch.detectors.citing import citation_order, keep_cited, mention_concerning
from crisiswatch.detectors.volume import SpikeResult

if TYPE_CHECKING:
    from crisiswatch.detectors.window import WindowAggregate

TOP_MENTIONS = 5
"""Mentions a window cites as evidence."""


class TopMention(BaseModel):
    """A mention cited as evidence."""

    model_config = ConfigDict(extra="ignore", str_max_length=100_000)

    id: str
    text: str
    source: str
    reach: Count
    lang: str
    sentiment: Sentiment
    url: str | None = None


_KEPT = frozenset({"brand", "window_start", "window_end", "volume", "negativity", "revision"})
"""Fields a correction does not add to (`ClosedWindow.with_late`)."""


def _epoch(name: str) -> Callable[[Any], datetime]:
    return lambda aggregate: datetime.fromtimestamp(getattr(aggregate, name), UTC)


_FROM_AGGREGATE: dict[str, Callable[[Any], Any]] = {
    "window_start": _epoch("start"),
    "window_end": _epoch("end"),
    "stories": lambda a: a.story_count,
    "negative_stories": lambda a: a.negative_story_count,
    "solo_stories": lambda a: a.solo_story_count,
    "top_mentions": lambda a: a.top,
}
"""The fields whose aggregate attribute has another name or type; every other field is copied by name."""


class ClosedWindow(BaseModel):
    """A closed per-brand event-time window with its spike verdicts, on ``signals`` (key: brand)."""

    model_config = ConfigDict(extra="ignore", str_max_length=100_000, title="Signal")

    brand: str
    window_start: UtcDatetime
    window_end: UtcDatetime
    mentions: int = Field(ge=0, description="Distinct mentions in the window.")
    stories: int = Field(ge=0, description="Mentions after folding near-duplicates into one story.")
    negative_stories: int = Field(0, ge=0, description="Distinct stories among the negative mentions.")
    negative: int = Field(ge=0)
    neutral: int = Field(ge=0)
    positive: int = Field(ge=0)
    reach: SaturatedCount = Field(description="Sum of the mentions' reach, saturated at the int64 maximum.")
    languages: dict[str, int] = Field(default_factory=dict)
    sources: dict[str, int] = Field(default_factory=dict)
    crisis_terms: dict[str, int] = Field(default_factory=dict)
    top_mentions: list[TopMention] = Field(default_factory=list)
    volume: SpikeResult
    negativity: SpikeResult
    late_mentions: int = Field(0, ge=0, description="Mentions that arrived late but within lateness.")
    negative_mass: float | None = Field(
        None, ge=0, description="Sum over distinct stories of their negative probability: expected negative stories."
    )
    negative_mass_sq: float | None = Field(None, ge=0, description="Sum of the squares of those probabilities.")
    solo_stories: int | None = Field(
        None, ge=0, description="Distinct stories that name no other watched brand (what negative_mass sums over)."
    )
    shared_mentions: int = Field(0, ge=0, description="Mentions that also name another watched brand.")
    revision: int = Field(
        0,
        ge=0,
        description="0: the window as it closed. n >= 1: its n-th correction, carrying only mentions that arrived "
        "after it closed (add them to revision 0 and the earlier corrections); its spike scores are not re-run "
        "(score 0, p_value 1).",
    )

    @classmethod
    def of(
        cls, aggregate: WindowAggregate, volume: SpikeResult, negativity: SpikeResult, revision: int = 0
    ) -> ClosedWindow:
        """The closed window of an aggregate with the detectors' verdicts (every field of the aggregate that
        this model declares under the same name is copied, so a new field needs no code here)."""
        values: dict[str, Any] = {"volume": volume, "negativity": negativity, "revision": revision}
        for name in cls.model_fields:
            if name in values:
                continue
            convert = _FROM_AGGREGATE.get(name)
            if convert is not None:
                values[name] = convert(aggregate)
            elif hasattr(aggregate, name):
                values[name] = getattr(aggregate, name)
        return cls.model_validate(values)

    @property
    def start(self) -> float:
        """Window start, epoch seconds."""
        return self.window_start.timestamp()

    @property
    def end(self) -> float:
        """Window end, epoch seconds."""
        return self.window_end.timestamp()

    @property
    def negative_share(self) -> float:
        return self.negative / self.mentions if self.mentions else 0.0

    def with_late(self, late: ClosedWindow) -> ClosedWindow:
        """This window with the late mentions of a correction added: counts add up (saturated; distinct stories
        then are an upper bound), optional sums add where known, mixes merge and the top mentions are re-ranked.
        Its brand, window, spike verdicts and revision stay this window's."""
        merged = self.model_copy(deep=True)
        for name in type(self).model_fields:
            if name in _KEPT:
                continue
            mine, theirs = getattr(self, name), getattr(late, name)
            if name == "top_mentions":
                value: Any = keep_cited([*mine, *theirs], citation_order, mention_concerning)
            elif isinstance(mine, dict):
                counts = Counter(mine)
                counts.update(theirs)
                value = dict(counts)
            elif mine is None or theirs is None:
                value = theirs if mine is None else mine
            elif isinstance(mine, int):
                value = min(INT64_MAX, mine + theirs)
            else:
                value = mine + theirs
            setattr(merged, name, value)
        return merged

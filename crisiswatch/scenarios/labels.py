"""The labels of a scenario corpus (``labels.json``): brands, and event windows with what is expected.

`crisiswatch backtest` reads them with `load_labels`. Times are UTC ISO-8601 (``...Z``). An event of
kind ``crisis`` expects a pause (``expect_pause: true``); a ``decoy`` expects none. Events of one brand
are at least six hours apart, except ``nab_burst`` decoys: the labelled anomaly windows of the real NAB
series the brand's volume follows, which are kept as they are and may overlap other events.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from crisiswatch.contracts.vocabulary import UtcDatetime

CRISIS_NAMES = ("sudden_explosion", "slow_burn", "one_language", "high_reach", "sparse_crisis")
DECOY_NAMES = (
    "viral_positive",
    "neutral_news",
    "gap_recovery",
    "bot_flood",
    "positive_launch",
    "competitor_crisis",
    "nab_burst",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BrandLabel(_Model):
    """One brand of the corpus: its size, the real series its volume follows, and when it starts."""

    name: str
    rate_per_minute: float = Field(gt=0, description="Median mentions per minute of its ordinary traffic.")
    series: str = Field(description="NAB series its volume follows, e.g. 'Twitter_volume_AAPL'.")
    segment_start: UtcDatetime = Field(description="Timestamp of the first NAB row used.")
    first_mention: UtcDatetime
    profile: str = Field(description="'sparse', 'quiet', 'moderate' or 'busy'.")
    sector: str = ""
    languages: dict[str, float] = Field(default_factory=dict, description="Share of its ordinary traffic.")
    sources: dict[str, float] = Field(default_factory=dict)
    handle: str = ""


class EventLabel(_Model):
    """A labelled window on one brand: a crisis (a pause is expected) or a decoy (none is)."""

    brand: str
    kind: Literal["crisis", "decoy"]
    name: str
    start: UtcDatetime
    end: UtcDatetime
    expect_pause: bool
    description: str = ""
    story: str | None = Field(None, description="Crisis story, e.g. 'data_breach'.")
    languages: list[str] = Field(default_factory=list, description="Languages of the event's own mentions.")
    related: str | None = Field(None, description="The other brand of a competitor crisis pair.")
    peak_multiplier: float | None = Field(None, description="Peak volume over the brand's local level.")


class Labels(_Model):
    """Everything a backtest needs to score a corpus."""

    split: Literal["tune", "check"]
    seed: int
    start: UtcDatetime
    end: UtcDatetime
    brands: dict[str, BrandLabel]
    events: list[EventLabel]

    def events_of(self, brand: str) -> list[EventLabel]:
        """The events of one brand, by start."""
        return sorted((e for e in self.events if e.brand == brand), key=lambda e: e.start)

    def crises(self) -> list[EventLabel]:
        return [e for e in self.events if e.kind == "crisis"]

    def label_at(self, brand: str, at: datetime) -> EventLabel | None:
        """The crisis or (else) decoy window of ``brand`` that contains ``at``, if any."""
        hits = [e for e in self.events if e.brand == brand and e.start <= at < e.end]
        hits.sort(key=lambda e: (e.kind != "crisis", e.name == "nab_burst", e.start))
        return hits[0] if hits else None


def load_labels(path: Path | str) -> Labels:
    """Read and validate a ``labels.json``."""
    return Labels.model_validate_json(Path(path).read_bytes())

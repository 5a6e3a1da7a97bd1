"""Record contracts of the crisiswatch topics.

The pydantic models here are the single source of truth; the versioned JSON Schema files in
``stream/schemas/`` are generated from them (``python -m stream.schemas``) and a test keeps the two in
sync. Consumers validate on consume with ``Model.model_validate_json``. Timestamps are timezone-aware
and travel as UTC ISO-8601 strings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware timestamp, normalised to UTC when validated, so it serialises as ``2026-11-23T12:00:00Z``.

(Models built with ``model_construct`` skip validation: give them UTC datetimes, e.g. `utcnow`.)"""

Severity = Literal["info", "warning", "critical"]
Sentiment = Literal["negative", "neutral", "positive"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=False, str_max_length=100_000)


class Author(_Record):
    """Who wrote a mention. ``followers`` feeds the reach estimate."""

    id: str | None = None
    handle: str | None = None
    followers: int | None = Field(default=None, ge=0)


class Metrics(_Record):
    """Engagement counters, where the source reports them."""

    likes: int | None = Field(default=None, ge=0)
    shares: int | None = Field(default=None, ge=0)
    replies: int | None = Field(default=None, ge=0)
    reach: int | None = Field(default=None, ge=0)


class Mention(_Record):
    """A mention as connectors publish it to ``mentions.raw`` (key: ``id``)."""

    id: str = Field(min_length=1, max_length=512, description="Stable, source-qualified id, e.g. 'rss:…'.")
    source: str = Field(min_length=1, max_length=128, description="Where it came from: 'twitter', 'rss', …")
    text: str = Field(max_length=50_000)
    created_at: UtcDatetime = Field(description="Event time: when the mention was published.")
    url: str | None = None
    author: Author | None = None
    metrics: Metrics | None = None
    lang: str | None = Field(default=None, description="ISO 639-1 code when the source knows it.")
    fetched_at: UtcDatetime | None = Field(default=None, description="When the connector fetched it.")

    def reach(self) -> int:
        """Best estimate of how many people could see this mention (at least 1)."""
        if self.metrics and self.metrics.reach:
            return self.metrics.reach
        followers = self.author.followers if self.author and self.author.followers else 0
        shares = self.metrics.shares if self.metrics and self.metrics.shares else 0
        return max(1, followers + shares)


class SentimentScores(_Record):
    """Class probabilities of the sentiment model."""

    negative: float
    neutral: float
    positive: float


class EnrichedMention(Mention):
    """A mention after de-duplication and enrichment, on ``mentions.enriched``.

    Key: the brand id for a mention that matched a brand (one record per matched brand, so a brand's
    mentions share a partition), the mention id for one that matched none (``brand`` is null).
    """

    lang: str = Field(description="Detected (or source-given) ISO 639-1 code, 'und' when unknown.")
    sentiment: Sentiment
    scores: SentimentScores
    brand: str | None = Field(description="The brand this record is routed for.")
    brands: list[str] = Field(default_factory=list, description="Every brand the text matched.")
    topics: list[str] = Field(default_factory=list, description="Topics from the brands file it matched.")
    crisis_terms: list[str] = Field(default_factory=list, description="Crisis lexicon terms found.")
    reach_estimate: int = Field(ge=1)
    enriched_at: UtcDatetime


class WindowedMention(_Record):
    """What the window stage reads of an `EnrichedMention`: its fields, validated, the rest ignored.

    Parsing only these costs about a fifth of validating the whole enriched record.
    """

    id: str = Field(min_length=1, max_length=512)
    source: str = Field(min_length=1, max_length=128)
    text: str = Field(max_length=50_000)
    created_at: UtcDatetime
    url: str | None = None
    lang: str
    sentiment: Sentiment
    brand: str | None
    crisis_terms: list[str] = Field(default_factory=list)
    reach_estimate: int = Field(ge=1)


class SpikeScore(_Record):
    """One detector's verdict on one window."""

    observed: float
    expected: float
    score: float = Field(description="Strength of the evidence (e.g. -log10 p-value), 0 = none.")
    p_value: float = Field(ge=0, le=1)
    spike: bool
    windows: int = Field(1, ge=1, description="Windows the test pooled: 1 = this one; more = a sustained rise.")


class TopMention(_Record):
    """A mention cited as evidence."""

    id: str
    text: str
    source: str
    reach: int
    lang: str
    sentiment: Sentiment
    url: str | None = None


class Signal(_Record):
    """A closed per-brand event-time window with its spike scores, on ``signals`` (key: brand)."""

    brand: str
    window_start: UtcDatetime
    window_end: UtcDatetime
    mentions: int = Field(ge=0, description="Distinct mentions in the window.")
    stories: int = Field(ge=0, description="Mentions after folding near-duplicates into one story.")
    negative_stories: int = Field(0, ge=0, description="Distinct stories among the negative mentions.")
    negative: int = Field(ge=0)
    neutral: int = Field(ge=0)
    positive: int = Field(ge=0)
    reach: int = Field(ge=0)
    languages: dict[str, int] = Field(default_factory=dict)
    sources: dict[str, int] = Field(default_factory=dict)
    crisis_terms: dict[str, int] = Field(default_factory=dict)
    top_mentions: list[TopMention] = Field(default_factory=list)
    volume: SpikeScore
    negativity: SpikeScore
    late_mentions: int = Field(0, ge=0, description="Mentions that arrived late but within lateness.")

    @property
    def negative_share(self) -> float:
        return self.negative / self.mentions if self.mentions else 0.0


class Alert(_Record):
    """A crisis alert on ``alerts`` (key: brand). One episode = one ``alert_id`` that escalates."""

    type: Literal["alert"] = "alert"
    alert_id: str = Field(description="Episode id: stable across escalation and resolution.")
    brand: str
    status: Literal["firing", "resolved"] = "firing"
    severity: Severity
    risk: float = Field(ge=0, le=100)
    event_time: UtcDatetime = Field(description="Event-time point at which the decision was made.")
    window_start: UtcDatetime
    summary: str
    explanation: list[str] = Field(default_factory=list)
    evidence: dict[str, Any] = Field(default_factory=dict)
    pause: bool = Field(False, description="The risk policy asks for publishing to pause.")
    created_at: UtcDatetime


class DeadLetter(_Record):
    """A record that could not be processed, on ``mentions.dlq`` (key: original key)."""

    model_config = ConfigDict(extra="ignore", str_max_length=None)  # the original bytes are kept whole

    reason: str = Field(description="Short machine-readable reason, e.g. 'invalid_json'.")
    error: str = Field(description="Human-readable detail.")
    stage: str
    topic: str
    partition: int
    offset: int
    original_b64: str = Field(description="The original value bytes, base64.")
    original_key_b64: str | None = None
    failed_at: UtcDatetime


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)

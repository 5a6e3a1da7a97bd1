"""Record contracts of the crisiswatch topics.

The pydantic models here are the single source of truth; the versioned JSON Schema files in
``crisiswatch/contracts/schemas/`` are generated from them (``python -m crisiswatch.contracts.schema_files``)
and a test keeps the two in sync. Consumers validate on consume with ``Model.model_validate_json``.
Timestamps are timezone-aware and travel as UTC ISO-8601 strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo
from pydantic_core import PydanticCustomError

from crisiswatch.contracts.vocabulary import INT64_MAX, Count, Sentiment, Severity, UtcDatetime, to_utc, utcnow
from crisiswatch.detectors.closed import ClosedWindow
from crisiswatch.detectors.evidence import Evidence

SCHEMA_VERSION = 1

EARLIEST_EVENT_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_EVENT_TIME = datetime(2200, 1, 1, tzinfo=UTC)
"""The absolute range of a mention's timestamps; decoding also checks them against now (`EventTimeBounds`)."""


@dataclass(frozen=True, slots=True)
class EventTimeBounds:
    """How far from ``now`` a mention's ``created_at`` may be: the validation context of `Mention` (and
    `WindowedMention`) under the key ``event_time_bounds``; without it only the absolute range applies."""

    now: datetime
    max_age: timedelta
    max_future: timedelta

    def context(self) -> dict[str, EventTimeBounds]:
        """The ``context=`` argument of ``model_validate_json``."""
        return {"event_time_bounds": self}


def _bounded_time(value: datetime) -> datetime:
    value = to_utc(value)
    if not EARLIEST_EVENT_TIME <= value < LATEST_EVENT_TIME:
        raise PydanticCustomError(
            "datetime_out_of_range",
            "timestamp outside {earliest} .. {latest}",
            {"earliest": EARLIEST_EVENT_TIME.isoformat(), "latest": LATEST_EVENT_TIME.isoformat()},
        )
    return value


def _event_time(value: datetime, info: ValidationInfo) -> datetime:
    value = to_utc(value)
    bounds = info.context.get("event_time_bounds") if isinstance(info.context, dict) else None
    if isinstance(bounds, EventTimeBounds):
        if value - bounds.now > bounds.max_future:
            detail = {"value": value.isoformat(), "limit": str(bounds.max_future)}
            raise PydanticCustomError("future_timestamp", "{value} is more than {limit} ahead of now", detail)
        if bounds.now - value > bounds.max_age:
            detail = {"value": value.isoformat(), "limit": str(bounds.max_age)}
            raise PydanticCustomError("stale_timestamp", "{value} is more than {limit} old", detail)
    return _bounded_time(value)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "text contains a NUL character")
    return value


BoundedTime = Annotated[AwareDatetime, AfterValidator(_bounded_time)]
"""A `UtcDatetime` within `EARLIEST_EVENT_TIME` .. `LATEST_EVENT_TIME`."""

EventTime = Annotated[AwareDatetime, AfterValidator(_event_time)]
"""A mention's event time: a `BoundedTime`, and within `EventTimeBounds` of now when validated with them."""

CleanStr = Annotated[str, AfterValidator(_no_nul)]
"""Text without NUL characters (they truncate strings in C-based consumers and databases)."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=False, str_max_length=100_000)


class Author(_Record):
    """Who wrote a mention. ``followers`` feeds the reach estimate."""

    id: CleanStr | None = None
    handle: CleanStr | None = None
    followers: Count | None = None


class Metrics(_Record):
    """Engagement counters, where the source reports them."""

    likes: Count | None = None
    shares: Count | None = None
    replies: Count | None = None
    reach: Count | None = None


class Context(_Record):
    """Where a mention sits in a conversation, where the source says so (ids or URIs of the source)."""

    in_reply_to: CleanStr | None = Field(default=None, max_length=2048, description="The post this one answers.")
    root: CleanStr | None = Field(default=None, max_length=2048, description="The first post of the thread.")
    quotes: CleanStr | None = Field(default=None, max_length=2048, description="The post this one quotes.")
    channel: CleanStr | None = Field(
        default=None, max_length=2048, description="The channel, subreddit, list or account it was posted in."
    )
    post: CleanStr | None = Field(
        default=None, max_length=2048, description="For owned sources: the brand's own post, video or ad it answers."
    )


class Mention(_Record):
    """A mention as connectors publish it to ``mentions.raw`` (key: ``id``)."""

    id: CleanStr = Field(min_length=1, max_length=512, description="Stable, source-qualified id, e.g. 'rss:…'.")
    source: CleanStr = Field(min_length=1, max_length=128, description="Where it came from: 'twitter', 'rss', …")
    text: CleanStr = Field(max_length=50_000)
    created_at: EventTime = Field(description="Event time: when the mention was published (1970 .. 2200, UTC).")
    url: CleanStr | None = None
    author: Author | None = None
    metrics: Metrics | None = None
    lang: CleanStr | None = Field(default=None, description="ISO 639-1 code when the source knows it.")
    fetched_at: BoundedTime | None = Field(default=None, description="When the connector fetched it.")
    context: Context | None = Field(default=None, description="Reply, quote and channel context.")
    owned: bool = Field(
        default=False,
        description="Posted under the brand's own channel, post or ad (comments on owned media).",
    )
    owner: CleanStr | None = Field(
        default=None,
        max_length=128,
        description="For owned mentions: the watched brand whose channel it is; routed to it even when the text "
        "does not name the brand.",
    )

    def reach(self) -> int:
        """Best estimate of how many people could see this mention (at least 1, at most `INT64_MAX`)."""
        if self.metrics and self.metrics.reach:
            return self.metrics.reach
        followers = self.author.followers if self.author and self.author.followers else 0
        shares = self.metrics.shares if self.metrics and self.metrics.shares else 0
        return min(INT64_MAX, max(1, followers + shares))


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

    lang: CleanStr = Field(description="Detected (or source-given) ISO 639-1 code, 'und' when unknown.")
    sentiment: Sentiment
    scores: SentimentScores
    brand: str | None = Field(description="The brand this record is routed for.")
    brands: list[str] = Field(default_factory=list, description="Every brand the text matched.")
    topics: list[str] = Field(default_factory=list, description="Topics from the brands file it matched.")
    crisis_terms: list[str] = Field(default_factory=list, description="Crisis lexicon terms found.")
    reach_estimate: int = Field(ge=1, le=INT64_MAX)
    story: int | None = Field(
        None, ge=0, lt=2**64, description="Near-duplicate story key of the text (`detectors.neardup.story_key`)."
    )
    enriched_at: UtcDatetime


class WindowedMention(_Record):
    """What the window stage reads of an `EnrichedMention`: its fields, validated, the rest ignored.

    Parsing only these costs about a fifth of validating the whole enriched record.
    """

    id: str = Field(min_length=1, max_length=512)
    source: str = Field(min_length=1, max_length=128)
    text: str = Field(max_length=50_000)
    created_at: EventTime
    url: str | None = None
    lang: str
    sentiment: Sentiment
    brand: str | None
    crisis_terms: list[str] = Field(default_factory=list)
    reach_estimate: int = Field(ge=1, le=INT64_MAX)
    scores: SentimentScores | None = None
    story: int | None = Field(None, ge=0, lt=2**64)
    brands: list[str] = Field(default_factory=list, max_length=1000)
    author: Author | None = None

    @property
    def p_negative(self) -> float | None:
        """The sentiment model's probability that this mention is negative (None when not given)."""
        return self.scores.negative if self.scores is not None else None


Signal = ClosedWindow
"""A closed per-brand event-time window with its spike verdicts, on ``signals`` (key: brand): the one
closed-window model, `detectors.closed.ClosedWindow` (the window stage builds it once, the risk stage hands
it straight to the risk monitor)."""


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
    evidence: Evidence = Field(
        default_factory=Evidence, description="The numbers behind the decision (`detectors.evidence.Evidence`)."
    )
    pause: bool = Field(False, description="The risk policy asks for publishing to pause.")
    created_at: UtcDatetime


DeadLetterReason = Literal[
    "empty",
    "oversized",
    "invalid_utf8",
    "invalid_json",
    "invalid_record",
    "bad_timestamp",
    "future_timestamp",
    "stale_timestamp",
    "enrich_error",
    "invalid_enriched",
    "window_error",
    "too_late",
    "invalid_signal",
    "risk_error",
]
"""Every reason a record can be dead-lettered for (the README's dead-letter table lists each one)."""

DEAD_LETTER_REASONS: tuple[str, ...] = get_args(DeadLetterReason)


class DeadLetter(_Record):
    """A record that could not be processed, on ``mentions.dlq`` (key: original key, truncated like the value)."""

    model_config = ConfigDict(extra="ignore", str_max_length=None)  # the original bytes are kept (up to a limit)

    reason: DeadLetterReason = Field(description="Short machine-readable reason, e.g. 'invalid_json'.")
    error: str = Field(description="Human-readable detail.")
    stage: str = Field(description="The stage that refused it: 'enrich', 'window' or 'risk'.")
    topic: str = Field(description="The topic the record was read from (a mention topic, or signals).")
    partition: int
    offset: int
    original_b64: str = Field(description="The original value bytes, base64 (the first bytes when truncated).")
    original_key_b64: str | None = None
    original_size: int = Field(0, ge=0, description="Size of the original value in bytes.")
    original_key_size: int | None = Field(None, ge=0, description="Size of the original key in bytes.")
    truncated: bool = Field(False, description="The original value or key was cut to fit the maximum message size.")
    failed_at: UtcDatetime


ACK_ACTOR_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._@+-]{0,127}$"


class AlertAck(BaseModel):
    """A person's acknowledgement of an alert episode: who, when, and an optional note."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["ack"] = "ack"
    alert_id: str = Field(min_length=1, max_length=256, description="The episode acknowledged.")
    brand: str | None = Field(default=None, max_length=256)
    actor: Annotated[str, StringConstraints(pattern=ACK_ACTOR_PATTERN)] = Field(
        description="User name of the person who acknowledged."
    )
    note: str = Field("", max_length=2000, description="What they are doing about it.")
    at: UtcDatetime = Field(default_factory=utcnow)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

"""The words every record and every detector share, defined once.

Pure: pydantic and the standard library only. This is the bottom of the import graph: the detectors
build their verdicts with these types, the records carry them, the stages and the page compare them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field
from pydantic_core import PydanticCustomError

Severity = Literal["info", "warning", "critical"]
"""How bad a risk decision is; ``critical`` can pause publishing (the brand's policy decides)."""
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}
"""Severity order for comparisons: info 0 < warning 1 < critical 2."""

Sentiment = Literal["negative", "neutral", "positive"]
"""A mention's sentiment label."""
SENTIMENTS: tuple[Sentiment, ...] = ("negative", "neutral", "positive")
"""The labels in the sentiment model's class order."""

INT64_MAX = 2**63 - 1
"""Every count and reach in a record fits a signed 64-bit integer (what Kafka-side consumers in any language hold)."""


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC; a timestamp that cannot be expressed in UTC is a validation error."""
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):  # e.g. 0001-01-01T00:00:00+14:00 is before datetime.min in UTC
        raise PydanticCustomError("datetime_out_of_range", "timestamp cannot be expressed in UTC") from None


def _saturate(value: Any) -> Any:
    return min(value, INT64_MAX) if isinstance(value, int) and not isinstance(value, bool) else value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(to_utc)]
"""A timezone-aware timestamp, normalised to UTC when validated, so it serialises as ``2026-11-23T12:00:00Z``.

(Models built with ``model_construct`` skip validation: give them UTC datetimes, e.g. `utcnow`.)"""

Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
"""A non-negative count that fits a signed 64-bit integer."""

SaturatedCount = Annotated[int, Field(ge=0, le=INT64_MAX), BeforeValidator(_saturate)]
"""A sum of counts: larger than `INT64_MAX` becomes `INT64_MAX` (it saturates rather than overflow)."""

"""Prometheus metrics of the live connectors (default registry; bounded label values).

``connector`` is the connector kind (``rss``, ``webhook``, ``sse``, ``websocket``, ``poll``), never a
URL or a source name; ``reason`` is one of `REASONS`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

REASONS = (
    "timeout",  # the source did not answer in time
    "connect",  # network / TLS / DNS failure, or the connection dropped
    "http_4xx",  # the source refused the request
    "http_5xx",  # the source failed
    "rate_limited",  # HTTP 429 (Retry-After honoured)
    "parse",  # a whole response was not a feed / JSON / event stream
    "invalid_item",  # one item could not be normalised: handed over raw (dead-lettered downstream)
    "auth",  # webhook request with a bad or missing signature/token
    "too_large",  # webhook body over the size limit
    "kafka",  # handing over to Kafka failed
    "unexpected",  # anything else (a bug): see the log
)

ITEMS = Counter("crisiswatch_connector_items", "Mentions normalised and handed over to mentions.raw.", ["connector"])
ERRORS = Counter(
    "crisiswatch_connector_errors", "Connector errors by reason (see connectors.metrics).", ["connector", "reason"]
)
IGNORED = Counter(
    "crisiswatch_connector_ignored",
    "Payload items that did not match the mapping's `match` filter (control frames, acks), or duplicates.",
    ["connector", "why"],
)
LAST_SUCCESS = Gauge(
    "crisiswatch_connector_last_success_timestamp_seconds",
    "Unix time of the last successful fetch / frame / webhook request.",
    ["connector"],
)


def count_error(connector: str, reason: str) -> None:
    """Count one error; an unknown reason is counted as ``unexpected`` to keep labels bounded."""
    ERRORS.labels(connector, reason if reason in REASONS else "unexpected").inc()

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


# --- delivery to mentions.raw (connectors.sink) and checkpoints (connectors.checkpoints) ---------------
DELIVERED = Counter("crisiswatch_connector_delivered", "Records the broker acknowledged (acks=all) in mentions.raw.")
BROKER_DOWN = Gauge(
    "crisiswatch_connector_broker_down", "1 while the broker does not acknowledge (records wait or go to the spool)."
)
SPOOL_BYTES = Gauge("crisiswatch_connector_spool_bytes", "Bytes in the on-disk spool.")
SPOOL_RECORDS = Gauge("crisiswatch_connector_spool_records", "Records in the on-disk spool, not yet delivered.")
SPOOL_FULL = Gauge("crisiswatch_connector_spool_full", "1 while the spool is full: sends block, fetching stops.")
SPOOL_REPLAYED = Counter("crisiswatch_connector_spool_replayed", "Spooled records delivered once the broker was back.")
SPOOL_EXPIRED = Counter(
    "crisiswatch_connector_spool_expired",
    "Spooled records older than the spool age limit, NOT delivered (each batch is also logged as an error).",
)
LOST = Counter(
    "crisiswatch_connector_lost",
    "Records not handed over when a sink without spool room closed while the broker was down (logged as errors).",
)
CHECKPOINTS = Counter(
    "crisiswatch_connector_checkpoints",
    "Checkpoints written after the broker acknowledged what came before.",
    ["store"],
)
CHECKPOINT_ERRORS = Counter("crisiswatch_connector_checkpoint_errors", "Checkpoint writes that failed (retried).")
REPLAY_OUT_OF_ORDER = Counter(
    "crisiswatch_connector_replay_out_of_order",
    "Replay records older than one already read: reordered within the window, or (late) beyond it.",
    ["outcome"],
)

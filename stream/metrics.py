"""Prometheus metrics of the stream processors, defined once (base units, ``_total`` counters,
bounded label sets: stage names and reasons come from fixed code paths, never from data)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MENTIONS_IN = Counter("crisiswatch_mentions_consumed_total", "Raw records consumed.", ["stage"])
MENTIONS_OUT = Counter("crisiswatch_mentions_enriched_total", "Mentions enriched and published.")
DUPLICATES = Counter("crisiswatch_mentions_duplicate_total", "Mentions dropped as duplicates by id.")
UNMATCHED = Counter("crisiswatch_mentions_unmatched_total", "Mentions that matched no brand.")
DEAD_LETTERS = Counter("crisiswatch_dead_letters_total", "Records sent to the dead-letter topic.", ["reason"])
TOO_LATE = Counter(
    "crisiswatch_mentions_too_late_total",
    "Mentions for a window that had already closed, by source kind (the lateness policy's key; 'other' for "
    "sources it does not name) and outcome: 'correction' (counted in a correction signal of the window) or "
    "'dead_letter' (beyond the correction horizon: to the DLQ as too_late).",
    ["source", "outcome"],
)
LATE = Counter(
    "crisiswatch_mentions_late_total",
    "Out-of-order mentions still counted in their open window, by source kind.",
    ["source"],
)
CORRECTIONS = Counter("crisiswatch_window_corrections_total", "Correction signals (revision >= 1) published.")
CORRECTIONS_CARRIED = Counter(
    "crisiswatch_corrections_carried_total",
    "Correction signals the risk stage took (their late mentions count in the brand's next assessed window).",
)
STATE_RESETS = Counter(
    "crisiswatch_window_state_resets_total",
    "Brand window states started afresh on restore because the configured window size differs from theirs.",
)
WINDOWS_CLOSED = Counter("crisiswatch_windows_closed_total", "Per-brand event-time windows closed.")
SPIKES = Counter("crisiswatch_spikes_total", "Windows flagged as spikes.", ["kind"])
ALERTS = Counter("crisiswatch_alerts_total", "Alerts published.", ["severity", "kind"])
PAUSES = Counter("crisiswatch_pause_signals_total", "Automatic pause signals sent.")
BATCH_SECONDS = Histogram(
    "crisiswatch_batch_processing_seconds",
    "Time to process one batch.",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
BATCH_SIZE = Histogram(
    "crisiswatch_batch_records", "Records per batch.", ["stage"], buckets=(1, 10, 100, 500, 1000, 2000, 5000)
)
PROCESSING_LATENCY = Histogram(
    "crisiswatch_processing_latency_seconds",
    "From a raw record's timestamp to its mention being counted in its window.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0),
)
EVENT_LOOP_LAG = Gauge("crisiswatch_event_loop_lag_seconds", "How late the event loop runs a 0.25 s timer.")
WATERMARK = Gauge("crisiswatch_watermark_timestamp_seconds", "Event-time watermark of the window stage.")
OPEN_WINDOWS = Gauge("crisiswatch_open_windows", "Per-brand windows currently open.")
STAGE_UP = Gauge(
    "crisiswatch_stage_up",
    "1 while a stage of this worker has joined its group and is processing; 0 while it starts, rebalances, "
    "recovers or after it stopped.",
    ["stage"],
)
STAGE_FAILURES = Counter(
    "crisiswatch_stage_failures_total",
    "Stage failures by reason: commit_failed and kafka_error are recovered (rejoin, retry from the last commit "
    "or checkpoint); restore_failed, crashed and stalled stop the stage and the worker exits non-zero.",
    ["stage", "reason"],
)
BROKER_REACHABLE = Gauge("crisiswatch_broker_reachable", "1 while a bootstrap server accepts connections, else 0.")
CLIENT_LOG_LINES_SUPPRESSED = Counter(
    "crisiswatch_client_log_lines_suppressed_total",
    "Kafka client log lines (aiokafka, faust, mode) held back: repeats, or any during a broker outage.",
    ["library"],
)

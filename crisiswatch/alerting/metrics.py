"""Prometheus metrics of alert delivery (default registry; small, fixed label sets)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

NOTIFICATIONS = Counter("crisiswatch_alert_notifications", "Notifications decided by the delivery policy.", ["event"])
DELIVERIES = Counter(
    "crisiswatch_alert_deliveries",
    "Delivery attempts per channel: ok, retry (failed, will retry), failed (gave up), dropped (queue full).",
    ["channel", "outcome"],
)
QUEUE_DEPTH = Gauge("crisiswatch_alert_queue_depth", "Notifications waiting per channel.", ["channel"])
RECORDS = Counter("crisiswatch_alert_records", "Records read by the dispatcher.", ["topic", "outcome"])

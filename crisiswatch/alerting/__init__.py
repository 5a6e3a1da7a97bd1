"""Alert delivery: from the ``alerts`` topic to the people who must act.

* `AlertDispatcher` (``dispatcher.py``): consumes ``alerts`` and ``alerts.ack`` and delivers
  notifications to every channel, with retries and per-channel isolation (`crisiswatch alerts`).
* `DeliveryPolicy` (``policy.py``): de-duplication, escalation, resolution, per-brand cool-down.
* Channels (``channels.py``): Alertmanager v2, Slack-compatible webhooks, generic JSON webhooks,
  SMTP e-mail.
* ``render.py``: the text that says why (volume, negative share, languages, top mentions, terms).
* ``book.py``: recent episodes and acknowledgements for the page (`AlertBook`, `AlertFeed`,
  `AckPublisher`); ``records.py``: the `AlertAck` record.
"""

from crisiswatch.alerting.book import AckPublisher, AlertBook, AlertFeed, Episode
from crisiswatch.alerting.channels import (
    AlertmanagerChannel,
    Channel,
    DeliveryError,
    EmailChannel,
    SlackChannel,
    WebhookChannel,
    channels_from_settings,
)
from crisiswatch.alerting.dispatcher import AlertDispatcher, RetryPolicy
from crisiswatch.alerting.policy import DeliveryPolicy, Notification
from crisiswatch.contracts.records import AlertAck

__all__ = [
    "AckPublisher",
    "AlertAck",
    "AlertBook",
    "AlertDispatcher",
    "AlertFeed",
    "AlertmanagerChannel",
    "Channel",
    "DeliveryError",
    "DeliveryPolicy",
    "EmailChannel",
    "Episode",
    "Notification",
    "RetryPolicy",
    "SlackChannel",
    "WebhookChannel",
    "channels_from_settings",
]

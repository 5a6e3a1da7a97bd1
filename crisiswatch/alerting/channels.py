"""Delivery channels: Alertmanager v2, Slack-compatible webhooks, generic JSON webhooks, SMTP e-mail.

A channel turns a `Notification` into one request and raises `DeliveryError` when it fails (saying
whether a retry can help); retries, backoff and isolation between channels are the dispatcher's job.
Error messages never contain a URL path, a query string or a password: webhook URLs carry secrets.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from crisiswatch.alerting import render
from crisiswatch.alerting.policy import Notification
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.settings import Settings

log = logging.getLogger(__name__)

USER_AGENT = "crisiswatch-alerting/1"
SLACK_HEADER_MAX = 150
SLACK_TEXT_MAX = 3000
SLACK_FIELDS_MAX = 10


class DeliveryError(Exception):
    """A delivery attempt failed. ``retryable``: a later attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Channel(ABC):
    """Where notifications go. ``name`` labels logs and metrics."""

    name: str = "channel"

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections (called once by the dispatcher)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @abstractmethod
    async def send(self, notification: Notification) -> None:
        """Deliver one notification or raise `DeliveryError`."""

    async def restore(self, active: list[Notification]) -> None:  # noqa: B027 - optional hook
        """Called after a restart with the episodes still firing (Alertmanager keeps re-posting them)."""

    async def periodic(self) -> None:  # noqa: B027 - optional hook
        """Called every ``period`` seconds while the dispatcher runs."""

    period: float | None = None


def link_for(settings: Settings, alert_id: str) -> str:
    """URL of the page, focused on one alert."""
    base = settings.web.public_url or f"http://{settings.web.web_host}:{settings.web.page_port}/"
    return f"{base.rstrip('/')}/#alert={quote(alert_id, safe='')}"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _HttpChannel(Channel):
    """Shared HTTP plumbing: one session, JSON POST, status classification, secret-free errors."""

    def __init__(self, name: str, timeout: float):
        self.name = name
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def post_json(self, url: str, payload: Any, headers: dict[str, str] | None = None) -> str:
        """POST ``payload`` as JSON; return the response text, or raise `DeliveryError`."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        if self._session is None:
            await self.start()
        assert self._session is not None
        host = urlsplit(url).hostname or "?"
        try:
            async with self._session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json", **(headers or {})},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
            ) as response:
                text = await response.text(errors="replace")
                if 200 <= response.status < 300:
                    return text
                retryable = response.status in (408, 425, 429) or response.status >= 500
                raise DeliveryError(
                    f"{host} answered HTTP {response.status}: {text[:200].strip()}",
                    retryable=retryable,
                    retry_after=_retry_after(response.headers.get("Retry-After")),
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"{type(exc).__name__} talking to {host}") from None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - utcnow()).total_seconds())


# --- Alertmanager ---------------------------------------------------------------------------------


class AlertmanagerChannel(_HttpChannel):
    """Prometheus Alertmanager API v2: ``POST /api/v2/alerts`` with a JSON array of alerts.

    Labels identify the alert (``alertname="BrandCrisis"``, ``brand``, ``severity``); annotations carry
    the text. While an episode fires it is re-posted every ``resend_seconds`` with ``endsAt`` four
    resend intervals ahead (as Prometheus does), so that it expires by itself if crisiswatch stops.
    Resolution posts the same labels with ``endsAt`` set to the resolution time. An escalation
    changes the ``severity`` label, which is a new alert for Alertmanager: the old one is resolved in
    the same request.
    """

    def __init__(self, base_url: str, settings: Settings, *, name: str = "alertmanager"):
        super().__init__(name, settings.alerts.alert_timeout_seconds)
        self.url = base_url.rstrip("/") + "/api/v2/alerts"
        self.settings = settings
        self.resend_seconds = settings.alerts.alertmanager_resend_seconds
        self.period = self.resend_seconds
        self.active: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()

    def postable(self, n: Notification, ends_at: datetime) -> dict[str, Any]:
        """One element of the ``postableAlerts`` array."""
        exp = render.explain(n.alert)
        description = "\n".join(
            [*exp.reasons, *[f"{label}: {value}" for label, value in exp.facts]]
            + [f"Top mention ({m.source}, reach {m.reach}): {m.text}" for m in exp.top_mentions[:3]]
        )
        annotations = {
            "summary": n.alert.summary,
            "description": description,
            "alert_id": n.alert_id,
            "risk": f"{n.alert.risk:.0f}",
        }
        if n.acks:
            annotations["acknowledged_by"] = ", ".join(dict.fromkeys(a.actor for a in n.acks))
        starts_at = min(n.started_at, utcnow())
        return {
            "labels": {"alertname": "BrandCrisis", "brand": n.alert.brand, "severity": n.peak_severity},
            "annotations": annotations,
            "startsAt": _iso(starts_at),
            "endsAt": _iso(max(ends_at, starts_at)),
            "generatorURL": link_for(self.settings, n.alert_id),
        }

    async def send(self, n: Notification) -> None:
        async with self._lock:
            now = utcnow()
            if n.event == "resolved":
                resolved = self.postable(n, ends_at=min(n.alert.created_at, now))
                previous = self.active.get(n.alert_id)
                batch = [resolved]
                if previous is not None and previous["labels"] != resolved["labels"]:
                    batch.insert(0, {**previous, "endsAt": resolved["endsAt"]})
                await self.post_json(self.url, batch)
                self.active.pop(n.alert_id, None)
                return
            if n.event == "acknowledged" and n.alert_id not in self.active:
                return  # nothing firing to annotate
            firing = self.postable(n, ends_at=now + timedelta(seconds=4 * self.resend_seconds))
            batch = [firing]
            previous = self.active.get(n.alert_id)
            if previous is not None and previous["labels"] != firing["labels"]:
                batch.insert(0, {**previous, "endsAt": _iso(now)})
            await self.post_json(self.url, batch)
            self.active[n.alert_id] = firing

    async def restore(self, active: list[Notification]) -> None:
        async with self._lock:
            ends_at = utcnow() + timedelta(seconds=4 * self.resend_seconds)
            for n in active:
                self.active[n.alert_id] = self.postable(n, ends_at=ends_at)

    async def periodic(self) -> None:
        """Re-post every firing alert with a fresh ``endsAt`` (Alertmanager expects repeats)."""
        async with self._lock:
            if not self.active:
                return
            ends_at = _iso(utcnow() + timedelta(seconds=4 * self.resend_seconds))
            for alert in self.active.values():
                alert["endsAt"] = ends_at
            await self.post_json(self.url, list(self.active.values()))


# --- Slack ----------------------------------------------------------------------------------------

_SLACK_EMOJI = {
    "critical": ":rotating_light:",
    "warning": ":warning:",
    "info": ":information_source:",
    "resolved": ":white_check_mark:",
    "acknowledged": ":eyes:",
}


def slack_payload(n: Notification, link: str | None) -> dict[str, Any]:
    """Incoming-webhook payload: ``text`` (notification fallback) and Block Kit ``blocks``."""
    title = render.headline(n)
    emoji = _SLACK_EMOJI.get(n.event, _SLACK_EMOJI.get(n.peak_severity, ""))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(f"{emoji} {title}", SLACK_HEADER_MAX)}}
    ]
    if n.event == "acknowledged":
        ack = n.acks[-1] if n.acks else None
        note = f"\n>{render.slack_escape(ack.note)}" if ack and ack.note else ""
        text = f"*{ack.actor if ack else 'someone'}* is on it.{note}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, SLACK_TEXT_MAX)}})
    else:
        exp = render.explain(n.alert)
        reasons = _cut(render.slack_mrkdwn_reasons(n), SLACK_TEXT_MAX)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": reasons}})
        if exp.facts:
            fields = [
                {"type": "mrkdwn", "text": _cut(f"*{label}*\n{render.slack_escape(value)}", 2000)}
                for label, value in exp.facts[:SLACK_FIELDS_MAX]
            ]
            blocks.append({"type": "section", "fields": fields})
        mentions = render.slack_mentions(n)
        if mentions and n.event != "resolved":
            text = _cut("*What people are saying*\n" + mentions, SLACK_TEXT_MAX)
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    context = f"Alert `{n.alert_id}` · started {n.started_at.strftime('%Y-%m-%d %H:%M UTC')}"
    acked = [a.actor for a in n.acks]
    if acked and n.event != "acknowledged":
        context += " · acknowledged by " + ", ".join(dict.fromkeys(acked))
    if link:
        context += f" · <{link}|open crisiswatch>"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(context, SLACK_TEXT_MAX)}]})
    return {"text": _cut(title, SLACK_TEXT_MAX), "blocks": blocks}


class SlackChannel(_HttpChannel):
    """Slack (or Mattermost, Rocket.Chat, …) incoming webhook: ``{"text", "blocks"}``."""

    def __init__(self, url: str, settings: Settings, *, name: str = "slack"):
        super().__init__(name, settings.alerts.alert_timeout_seconds)
        self._url = url
        self.settings = settings

    def __repr__(self) -> str:  # never show the webhook URL: it is the secret
        return f"SlackChannel(name={self.name!r})"

    async def send(self, n: Notification) -> None:
        await self.post_json(self._url, slack_payload(n, link_for(self.settings, n.alert_id)))


# --- Generic webhook ------------------------------------------------------------------------------


def webhook_payload(n: Notification, link: str | None) -> dict[str, Any]:
    """The generic JSON webhook body (``type`` ``crisiswatch.alert.v1``)."""
    exp = render.explain(n.alert)
    return {
        "type": "crisiswatch.alert.v1",
        "event": n.event,
        "idempotency_key": n.idempotency_key,
        "alert_id": n.alert_id,
        "brand": n.alert.brand,
        "severity": n.peak_severity,
        "previous_severity": n.previous_severity,
        "status": n.alert.status,
        "started_at": _iso(n.started_at),
        "headline": render.headline(n),
        "text": render.plain_text(n, link),
        "reasons": exp.reasons,
        "facts": dict(exp.facts),
        "link": link,
        "acks": [a.model_dump(mode="json") for a in n.acks],
        "alert": n.alert.model_dump(mode="json"),
    }


def webhook_signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``<timestamp>.<body>`` (what ``X-Crisiswatch-Signature`` holds)."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookChannel(_HttpChannel):
    """Generic JSON webhook; signed with ``X-Crisiswatch-Signature`` when a secret is configured."""

    def __init__(self, url: str, settings: Settings, *, secret: bytes | None = None, name: str = "webhook"):
        super().__init__(name, settings.alerts.alert_timeout_seconds)
        self._url = url
        self._secret = secret
        self.settings = settings

    def __repr__(self) -> str:
        return f"WebhookChannel(name={self.name!r})"

    async def send(self, n: Notification) -> None:
        body = json.dumps(webhook_payload(n, link_for(self.settings, n.alert_id)), ensure_ascii=False).encode()
        headers = {"Idempotency-Key": n.idempotency_key, "X-Crisiswatch-Event": n.event}
        if self._secret:
            timestamp = str(int(time.time()))
            headers["X-Crisiswatch-Timestamp"] = timestamp
            headers["X-Crisiswatch-Signature"] = webhook_signature(self._secret, timestamp, body)
        await self.post_json(self._url, body, headers)


# --- E-mail ---------------------------------------------------------------------------------------


class EmailChannel(Channel):
    """E-mail over SMTP (stdlib ``smtplib`` in a worker thread); STARTTLS, SMTPS and login optional.

    The messages of one episode form a thread in mail clients (``Message-ID`` of the first one is
    derived from the alert id; the others refer to it).
    """

    def __init__(self, settings: Settings, *, name: str = "email"):
        if not settings.alerts.smtp_host or not settings.alerts.alert_email_to:
            raise ValueError("e-mail needs CRISISWATCH_SMTP_HOST and CRISISWATCH_ALERT_EMAIL_TO")
        self.name = name
        self.settings = settings
        self.recipients = [a.strip() for a in settings.alerts.alert_email_to.split(",") if a.strip()]

    def __repr__(self) -> str:
        return f"EmailChannel(host={self.settings.alerts.smtp_host!r}, recipients={len(self.recipients)})"

    def message(self, n: Notification) -> EmailMessage:
        """The e-mail for one notification."""
        s = self.settings
        msg = EmailMessage()
        msg["Subject"] = f"[crisiswatch] {render.headline(n)}"
        msg["From"] = s.alerts.alert_email_from
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
        domain = s.alerts.alert_email_from.rpartition("@")[2] or "crisiswatch.local"
        thread = f"<{hashlib.sha256(n.alert_id.encode()).hexdigest()[:24]}.crisiswatch@{domain}>"
        if n.event == "opened":
            msg["Message-ID"] = thread
        else:
            msg["Message-ID"] = email.utils.make_msgid("crisiswatch", domain=domain)
            msg["In-Reply-To"] = thread
            msg["References"] = thread
        msg["X-Crisiswatch-Alert-Id"] = n.alert_id
        msg["X-Crisiswatch-Event"] = n.event
        msg["X-Priority"] = "1" if n.peak_severity == "critical" and n.event in ("opened", "escalated") else "3"
        msg.set_content(render.plain_text(n, link_for(s, n.alert_id)))
        return msg

    async def send(self, n: Notification) -> None:
        msg = self.message(n)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._send_sync, msg)

    def _send_sync(self, msg: EmailMessage) -> None:
        s = self.settings
        host = s.alerts.smtp_host or ""
        try:
            tls = ssl.create_default_context(cafile=str(s.alerts.smtp_ca_file) if s.alerts.smtp_ca_file else None)
            if s.alerts.smtp_ssl:
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    host, s.alerts.smtp_port, timeout=s.alerts.alert_timeout_seconds, context=tls
                )
            else:
                client = smtplib.SMTP(host, s.alerts.smtp_port, timeout=s.alerts.alert_timeout_seconds)
            with client:
                client.ehlo()
                if s.alerts.smtp_starttls and not s.alerts.smtp_ssl:
                    client.starttls(context=tls)  # raises SMTPNotSupportedError when not offered
                    client.ehlo()
                if s.alerts.smtp_username:
                    password = s.alerts.smtp_password.get_secret_value() if s.alerts.smtp_password else ""
                    client.login(s.alerts.smtp_username, password)
                client.send_message(msg, to_addrs=self.recipients)
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP {host} answered {exc.smtp_code}", retryable=exc.smtp_code < 500) from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryError(f"SMTP {host} refused every recipient", retryable=False) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"SMTP {host}: {exc}", retryable=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__} talking to SMTP {host}") from None


# --- configuration --------------------------------------------------------------------------------


def channels_from_settings(settings: Settings) -> list[Channel]:
    """Every channel the settings configure (possibly none)."""
    channels: list[Channel] = []
    urls = [u.strip() for u in (settings.alerts.alertmanager_urls or "").split(",") if u.strip()]
    for i, url in enumerate(urls):
        name = "alertmanager" if len(urls) == 1 else f"alertmanager-{i + 1}"
        channels.append(AlertmanagerChannel(url, settings, name=name))
    if settings.alerts.slack_webhook_url:
        channels.append(SlackChannel(settings.alerts.slack_webhook_url.get_secret_value(), settings))
    if settings.alerts.alert_webhook_url:
        secret = (
            settings.alerts.alert_webhook_secret.get_secret_value().encode()
            if settings.alerts.alert_webhook_secret
            else None
        )
        channels.append(WebhookChannel(settings.alerts.alert_webhook_url.get_secret_value(), settings, secret=secret))
    if settings.alerts.smtp_host and settings.alerts.alert_email_to:
        channels.append(EmailChannel(settings))
    return channels


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

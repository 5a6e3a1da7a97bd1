"""Alert delivery end to end: alerts on a real broker topic, delivered to real local servers.

The servers speak the real wire formats and check what they receive: an Alertmanager implementing
``POST /api/v2/alerts`` (validates the postable-alert array like Alertmanager's OpenAPI spec), a
Slack-like incoming webhook (validates Block Kit limits), a generic webhook (verifies the HMAC
signature) and an SMTP server (aiosmtpd, with login and STARTTLS).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from prometheus_client import REGISTRY
from pydantic import SecretStr

from crisiswatch.alerting import (
    AckPublisher,
    AlertAck,
    AlertBook,
    AlertDispatcher,
    AlertFeed,
    RetryPolicy,
    channels_from_settings,
)
from crisiswatch.alerting.channels import EmailChannel, webhook_signature
from crisiswatch.broker import free_port
from crisiswatch.contracts.records import Alert
from crisiswatch.detectors.evidence import Evidence, VolumeEvidence
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
WEBHOOK_SECRET = "hook-secret"


# --- fake servers speaking the real formats ----------------------------------------------------------


def _rfc3339(value: Any) -> datetime:
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def validate_postable_alerts(body: Any) -> list[dict[str, Any]]:
    """Alertmanager v2 ``postableAlerts``: an array of {labels, annotations?, startsAt?, endsAt?, generatorURL?}."""
    if not isinstance(body, list) or not body:
        raise ValueError("body must be a non-empty JSON array")
    for item in body:
        if not isinstance(item, dict) or set(item) - {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}:
            raise ValueError(f"unexpected alert fields: {item}")
        labels = item.get("labels")
        if not isinstance(labels, dict) or not labels:
            raise ValueError("labels are required")
        for name, value in {**labels, **item.get("annotations", {})}.items():
            if not LABEL_NAME.match(name) or not isinstance(value, str):
                raise ValueError(f"bad label/annotation {name!r}={value!r}")
        if "startsAt" in item and "endsAt" in item and _rfc3339(item["endsAt"]) < _rfc3339(item["startsAt"]):
            raise ValueError("endsAt before startsAt")
        for key in ("startsAt", "endsAt"):
            if key in item:
                _rfc3339(item[key])
        url = urlsplit(item.get("generatorURL", "http://x/"))
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError("generatorURL must be an absolute URL")
    return body


@dataclass
class FakeAlertmanager:
    """``POST /api/v2/alerts`` like Alertmanager: 200 with an empty body, 400 with a message on bad input."""

    fail_next: int = 0
    posts: list[tuple[float, list[dict[str, Any]]]] = field(default_factory=list)
    failures: int = 0
    invalid: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v2/alerts", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return web.json_response({"code": 415, "message": "want application/json"}, status=415)
        if self.fail_next > 0:
            self.fail_next -= 1
            self.failures += 1
            return web.json_response({"code": 503, "message": "not ready"}, status=503)
        try:
            alerts = validate_postable_alerts(await request.json())
        except ValueError as exc:
            self.invalid.append(str(exc))
            return web.json_response({"code": 400, "message": str(exc)}, status=400)
        self.posts.append((time.monotonic(), alerts))
        return web.Response(status=200)

    def alerts(self) -> list[dict[str, Any]]:
        return [a for _, batch in self.posts for a in batch]


@dataclass
class FakeSlack:
    """An incoming webhook: answers ``ok``, or 400 ``invalid_blocks`` like Slack does."""

    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    path: str = "/services/T000/B000/XXXXSECRET"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(self.path, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body.get("text"), str) or not isinstance(body.get("blocks"), list):
            return web.Response(status=400, text="invalid_payload")
        for block in body["blocks"]:
            kind = block.get("type")
            if kind == "header":
                ok = block["text"]["type"] == "plain_text" and len(block["text"]["text"]) <= 150
            elif kind == "section":
                text_ok = "text" not in block or len(block["text"]["text"]) <= 3000
                fields = block.get("fields", [])
                fields_ok = len(fields) <= 10 and all(len(f["text"]) <= 2000 for f in fields)
                ok = text_ok and fields_ok and ("text" in block or "fields" in block)
            elif kind == "context":
                ok = 0 < len(block["elements"]) <= 10
            else:
                ok = False
            if not ok:
                return web.Response(status=400, text="invalid_blocks")
        self.messages.append((time.monotonic(), body))
        return web.Response(text="ok")


@dataclass
class FakeWebhook:
    """A generic JSON receiver that checks the signature and the timestamp."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hooks/crisis", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        timestamp = request.headers.get("X-Crisiswatch-Timestamp", "")
        expected = webhook_signature(WEBHOOK_SECRET.encode(), timestamp, raw)
        if request.headers.get("X-Crisiswatch-Signature") != expected or abs(time.time() - int(timestamp)) > 300:
            return web.Response(status=401, text="bad signature")
        self.bodies.append(json.loads(raw))
        self.headers.append(dict(request.headers))
        return web.Response(status=204)


class MailSink:
    """aiosmtpd handler that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


class Authenticator:
    def __init__(self) -> None:
        self.logins: list[str] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and auth_data.password == b"mail-pass":
            self.logins.append(auth_data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@dataclass
class Receivers:
    alertmanager: FakeAlertmanager
    slack: FakeSlack
    webhook: FakeWebhook
    mail: MailSink
    auth: Authenticator
    am_url: str
    slack_url: str
    webhook_url: str
    smtp_port: int


@pytest.fixture
def smtp_server() -> Iterator[tuple[MailSink, Authenticator, int]]:
    sink, auth = MailSink(), Authenticator()
    port = free_port()
    controller = Controller(
        sink, hostname="127.0.0.1", port=port, authenticator=auth, auth_require_tls=False, auth_required=True
    )
    controller.start()
    try:
        yield sink, auth, port
    finally:
        controller.stop()


@pytest.fixture
async def receivers(smtp_server: tuple[MailSink, Authenticator, int]) -> AsyncIterator[Receivers]:
    am, slack, hook = FakeAlertmanager(), FakeSlack(), FakeWebhook()
    servers = [TestServer(x.app(), host="127.0.0.1") for x in (am, slack, hook)]
    for server in servers:
        await server.start_server()
    mail, auth, smtp_port = smtp_server
    try:
        yield Receivers(
            am, slack, hook, mail, auth,
            am_url=str(servers[0].make_url("")),
            slack_url=str(servers[1].make_url(slack.path)),
            webhook_url=str(servers[2].make_url("/hooks/crisis")),
            smtp_port=smtp_port,
        )  # fmt: skip
    finally:
        for server in servers:
            await server.close()


def configured(settings: Settings, r: Receivers, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "alertmanager_urls": r.am_url,
        "alertmanager_resend_seconds": 3600.0,
        "slack_webhook_url": SecretStr(r.slack_url),
        "alert_webhook_url": SecretStr(r.webhook_url),
        "alert_webhook_secret": SecretStr(WEBHOOK_SECRET),
        "smtp_host": "127.0.0.1",
        "smtp_port": r.smtp_port,
        "smtp_starttls": False,
        "smtp_username": "crisisbot",
        "smtp_password": SecretStr("mail-pass"),
        "alert_email_from": "crisiswatch@example.org",
        "alert_email_to": "pr-team@example.org, oncall@example.org",
        "alert_retry_backoff_seconds": 0.05,
        "alert_retry_max_backoff_seconds": 0.2,
        "alert_timeout_seconds": 3.0,
        "public_url": "http://crisiswatch.test:6066/",
        **overrides,
    }
    return settings.model_copy(update=values)


# --- records ----------------------------------------------------------------------------------------


def make_alert(severity: str, status: str = "firing", *, alert_id: str = "acme:100", brand: str = "acme") -> Alert:
    now = datetime.now(UTC)
    return Alert(
        alert_id=alert_id,
        brand=brand,
        status=status,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        risk=91 if severity == "critical" else 60,
        event_time=now,
        window_start=now - timedelta(minutes=1),
        summary=f"{brand}: 1240 mentions vs 85 expected, 72% negative",
        explanation=["volume 14.6x the expected level", "negative share 72% vs 18% usual"],
        evidence={
            "mentions": 1240,
            "negative": 893,
            "reach": 2_300_000,
            "languages": {"en": 744, "de": 372, "fr": 124},
            "crisis_terms": {"recall": 45, "explode": 20},
            "volume": {"observed": 1240, "expected": 85},
            "top_mentions": [
                {
                    "id": "t:1",
                    "text": "Acme airbags explode — RECALL now",
                    "source": "twitter",
                    "reach": 1_200_000,
                    "lang": "en",
                    "sentiment": "negative",
                    "url": "https://x.example/1",
                },
            ],
        },
        pause=severity == "critical",
        created_at=now,
    )


async def produce(settings: Settings, *records: Alert | AlertAck) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        for record in records:
            if isinstance(record, AlertAck):
                topic, key = settings.topic("alerts.ack"), record.alert_id.encode()
                await producer.send_and_wait(topic, record.to_bytes(), key=key)
            else:
                await producer.send_and_wait(
                    settings.topic("alerts"), record.model_dump_json().encode(), key=record.brand.encode()
                )
    finally:
        await producer.stop()


async def until(predicate: Any, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- tests -------------------------------------------------------------------------------------------


async def test_episode_escalates_acknowledges_and_resolves_on_every_channel(
    kafka_bootstrap: str, settings: Settings, receivers: Receivers
) -> None:
    await ensure_topics(kafka_bootstrap, settings)
    s = configured(settings, receivers)
    assert [c.name for c in channels_from_settings(s)] == ["alertmanager", "slack", "webhook", "email"]
    r = receivers
    dispatcher = AlertDispatcher(s)
    await dispatcher.start()
    try:
        # warning, then the same warning again: one delivery per channel
        await produce(s, make_alert("warning"), make_alert("warning"))
        await until(lambda: len(r.slack.messages) == 1 and len(r.mail.messages) == 1 and r.webhook.bodies
                    and r.alertmanager.posts, what="first delivery")  # fmt: skip
        assert await dispatcher.idle()
        await asyncio.sleep(0.3)
        assert len(r.slack.messages) == len(r.webhook.bodies) == len(r.mail.messages) == 1
        assert len(r.alertmanager.posts) == 1

        # a person acknowledges; every channel hears who is on it
        async with AckPublisher(s) as acks:
            await acks.publish(AlertAck(alert_id="acme:100", brand="acme", actor="maria", note="legal is drafting"))
        await until(lambda: len(r.slack.messages) == 2 and len(r.mail.messages) == 2, what="ack delivery")

        # escalation to critical (then a duplicate critical): one more delivery each
        await produce(s, make_alert("critical"), make_alert("critical"))
        await until(lambda: len(r.slack.messages) == 3 and len(r.mail.messages) == 3, what="escalation")

        # resolution
        await produce(s, make_alert("critical", "resolved"))
        await until(lambda: len(r.slack.messages) == 4 and len(r.mail.messages) == 4 and len(r.webhook.bodies) == 4,
                    what="resolution")  # fmt: skip
        assert await dispatcher.idle()
    finally:
        await dispatcher.stop()

    # Alertmanager: firing warning; ack annotation; escalation resolves the warning and fires critical;
    # resolution sets endsAt on the critical alert. All validated by the fake server.
    assert r.alertmanager.invalid == []
    posts = [batch for _, batch in r.alertmanager.posts]
    assert len(posts) == 4
    first = posts[0][0]
    assert first["labels"] == {"alertname": "BrandCrisis", "brand": "acme", "severity": "warning"}
    assert first["annotations"]["alert_id"] == "acme:100"
    assert "1,240 mentions vs 85 expected" in first["annotations"]["description"]
    assert first["generatorURL"] == "http://crisiswatch.test:6066/#alert=acme%3A100"
    assert _rfc3339(first["endsAt"]) > datetime.now(UTC)  # firing: endsAt in the future
    assert posts[1][0]["annotations"]["acknowledged_by"] == "maria"
    escalation = {a["labels"]["severity"]: a for a in posts[2]}
    assert set(escalation) == {"warning", "critical"}
    assert _rfc3339(escalation["warning"]["endsAt"]) <= datetime.now(UTC)
    assert _rfc3339(escalation["critical"]["endsAt"]) > datetime.now(UTC)
    resolved = posts[3][-1]
    assert resolved["labels"]["severity"] == "critical"
    assert _rfc3339(resolved["endsAt"]) <= datetime.now(UTC)

    # Slack: header per event, the why in the body
    headers = [m["blocks"][0]["text"]["text"] for _, m in r.slack.messages]
    assert headers == [
        ":warning: WARNING: acme brand crisis",
        ":eyes: ACKNOWLEDGED by maria: acme (warning)",
        ":rotating_light: CRITICAL: acme brand crisis escalated (was warning)",
        ":white_check_mark: RESOLVED: acme (critical episode is over)",
    ]
    opened = json.dumps(r.slack.messages[0][1])
    for fact in ("volume 14.6x", "72% negative", "en 60%, de 30%, fr 10%", "recall (45)", "Acme airbags explode"):
        assert fact in opened, fact

    # Generic webhook: signed, idempotency keys, full alert
    events = [b["event"] for b in r.webhook.bodies]
    assert events == ["opened", "acknowledged", "escalated", "resolved"]
    assert [h["Idempotency-Key"] for h in r.webhook.headers][2] == "acme:100:escalated:critical"
    assert r.webhook.bodies[3]["alert"]["status"] == "resolved"
    assert r.webhook.bodies[1]["acks"][0]["note"] == "legal is drafting"

    # E-mail: logged in, to every recipient, one thread per episode
    assert r.auth.logins == ["crisisbot"] * 4
    assert r.mail.envelopes[0] == ("crisiswatch@example.org", ["pr-team@example.org", "oncall@example.org"])
    subjects = [m["Subject"] for m in r.mail.messages]
    assert subjects[0] == "[crisiswatch] WARNING: acme brand crisis"
    assert subjects[2] == "[crisiswatch] CRITICAL: acme brand crisis escalated (was warning)"
    thread = r.mail.messages[0]["Message-ID"]
    assert all(m["In-Reply-To"] == thread for m in r.mail.messages[1:])
    body = r.mail.messages[0].get_payload(decode=True).decode()
    assert "Volume: 1,240 mentions vs 85 expected (14.6×)" in body and "Crisis terms: recall (45)" in body
    assert "https://x.example/1" in body


async def test_failing_channel_is_retried_and_never_blocks_the_others(
    kafka_bootstrap: str, settings: Settings, receivers: Receivers
) -> None:
    await ensure_topics(kafka_bootstrap, settings)
    r = receivers
    r.alertmanager.fail_next = 2  # 503 twice, then fine
    dead = f"http://127.0.0.1:{free_port()}/hooks/crisis"  # nothing listens: every attempt fails
    s = configured(
        settings, r, alert_webhook_url=SecretStr(dead), smtp_host=None, alert_retry_attempts=4,
        alert_retry_backoff_seconds=0.5, alert_retry_max_backoff_seconds=0.5,
    )  # fmt: skip
    gave_up = counter("crisiswatch_alert_deliveries_total", channel="webhook", outcome="failed")
    dispatcher = AlertDispatcher(s)
    await dispatcher.start()
    try:
        await produce(s, make_alert("critical", alert_id="acme:200"))
        await until(lambda: r.slack.messages, what="slack delivery")
        await until(lambda: r.alertmanager.posts, what="alertmanager after retries")
        assert r.alertmanager.failures == 2
        # Slack got it at once, while Alertmanager was still being retried.
        assert r.slack.messages[0][0] < r.alertmanager.posts[0][0] - 0.2
        await until(
            lambda: counter("crisiswatch_alert_deliveries_total", channel="webhook", outcome="failed") == gave_up + 1,
            what="webhook given up",
        )
        # The dispatcher is still alive and delivers the next notification.
        await produce(s, make_alert("critical", "resolved", alert_id="acme:200"))
        await until(lambda: len(r.slack.messages) == 2 and len(r.alertmanager.posts) == 2, what="resolution")
    finally:
        await dispatcher.stop()
    assert counter("crisiswatch_alert_deliveries_total", channel="webhook", outcome="retry") >= 3


async def test_restart_does_not_resend_and_alertmanager_keeps_reposting(
    kafka_bootstrap: str, settings: Settings, receivers: Receivers
) -> None:
    await ensure_topics(kafka_bootstrap, settings)
    r = receivers
    s = configured(settings, r, alert_webhook_url=None, smtp_host=None, alertmanager_resend_seconds=0.4)
    first = AlertDispatcher(s)
    await first.start()
    try:
        await produce(s, make_alert("warning", alert_id="acme:300"))
        await until(lambda: len(r.slack.messages) == 1, what="first delivery")
        await until(lambda: len(r.alertmanager.posts) >= 3, what="re-posts while firing")
    finally:
        await first.stop()
    ends = [_rfc3339(batch[0]["endsAt"]) for _, batch in r.alertmanager.posts]
    assert ends == sorted(ends) and ends[-1] > datetime.now(UTC)  # every re-post pushes endsAt forward

    # A new dispatcher (same group) replays the topic: nothing is re-sent to Slack, Alertmanager is
    # told again at once that the episode still fires.
    posts_before = len(r.alertmanager.posts)
    second = AlertDispatcher(s)
    await second.start()
    try:
        await asyncio.wait_for(second.caught_up.wait(), 10)
        await until(lambda: len(r.alertmanager.posts) > posts_before, what="re-post after restart")
        await asyncio.sleep(0.5)
        assert len(r.slack.messages) == 1
        await produce(s, make_alert("warning", "resolved", alert_id="acme:300"))
        await until(lambda: len(r.slack.messages) == 2, what="resolution after restart")
        await until(lambda: _rfc3339(r.alertmanager.alerts()[-1]["endsAt"]) <= datetime.now(UTC), what="endsAt")
        resolved_posts = len(r.alertmanager.posts)
        await asyncio.sleep(1.0)
        assert len(r.alertmanager.posts) == resolved_posts  # no more re-posts once resolved
    finally:
        await second.stop()
    assert r.alertmanager.invalid == []


async def test_alert_feed_shows_episodes_with_acks(kafka_bootstrap: str, settings: Settings) -> None:
    await ensure_topics(kafka_bootstrap, settings)
    await produce(
        settings,
        make_alert("warning", alert_id="b:1", brand="bolt"),
        make_alert("critical", alert_id="b:1", brand="bolt"),
        AlertAck(alert_id="b:1", actor="sam", note="on it"),
        make_alert("warning", alert_id="c:1", brand="cola"),
        make_alert("warning", "resolved", alert_id="c:1", brand="cola"),
    )
    feed = AlertFeed(settings)
    await feed.start()
    try:
        await asyncio.wait_for(feed.caught_up.wait(), 10)
        await until(lambda: feed.book.get("c:1") is not None and feed.book.get("c:1").status == "resolved")
        recent = feed.book.recent()
    finally:
        await feed.stop()
    assert [e.alert_id for e in recent] == ["b:1", "c:1"]  # firing first
    bolt = recent[0].to_json()
    assert bolt["peak_severity"] == "critical" and [a["actor"] for a in bolt["acks"]] == ["sam"]
    assert [h["severity"] for h in bolt["history"]] == ["warning", "critical"]
    assert any(f["label"] == "Volume" for f in bolt["facts"])


async def test_email_refuses_to_send_in_clear_when_starttls_is_required(
    smtp_server: tuple[MailSink, Authenticator, int], settings: Settings
) -> None:
    sink, _, port = smtp_server
    s = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": True,
                                    "alert_email_to": "pr@example.org", "smtp_username": "crisisbot",
                                    "smtp_password": SecretStr("mail-pass")})  # fmt: skip
    from crisiswatch.alerting.channels import DeliveryError
    from crisiswatch.alerting.policy import Notification

    n = Notification("opened", make_alert("critical"), datetime.now(UTC), "critical")
    with pytest.raises(DeliveryError) as info:
        await EmailChannel(s).send(n)
    assert not info.value.retryable and "mail-pass" not in str(info.value)
    assert sink.messages == []


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_email_over_starttls_with_login(tls_files: tuple[Path, Path], settings: Settings) -> None:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink, auth, port = MailSink(), Authenticator(), free_port()
    controller = Controller(
        sink, hostname="127.0.0.1", port=port, authenticator=auth, tls_context=context,
        require_starttls=True, auth_required=True,
    )  # fmt: skip
    controller.start()
    try:
        s = settings.model_copy(update={
            "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": True, "smtp_ca_file": cert,
            "alert_email_to": "pr@example.org", "smtp_username": "crisisbot", "smtp_password": SecretStr("mail-pass"),
        })  # fmt: skip
        from crisiswatch.alerting.policy import Notification

        await EmailChannel(s).send(Notification("opened", make_alert("critical"), datetime.now(UTC), "critical"))
    finally:
        controller.stop()
    assert auth.logins == ["crisisbot"]
    assert sink.messages[0]["Subject"] == "[crisiswatch] CRITICAL: acme brand crisis"


def test_secrets_stay_out_of_reprs(settings: Settings) -> None:
    s = settings.model_copy(update={"slack_webhook_url": SecretStr("https://hooks.example/T/B/SECRET"),
                                    "alert_webhook_url": SecretStr("https://hook.example/x?token=SECRET")})  # fmt: skip
    channels = channels_from_settings(s)
    assert "SECRET" not in repr(s) and all("SECRET" not in repr(c) for c in channels)


def test_retry_policy_backoff() -> None:
    retry = RetryPolicy(attempts=5, backoff=1.0, max_backoff=5.0)
    assert 0.5 <= retry.delay(1) <= 1.0
    assert 2.0 <= retry.delay(3) <= 4.0
    assert 2.5 <= retry.delay(10) <= 5.0
    assert retry.delay(1, retry_after=3.0) == 3.0
    assert retry.delay(1, retry_after=100.0) == 5.0


def test_a_resolved_episode_shows_the_evidence_of_its_peak() -> None:
    book = AlertBook()
    warning, critical = make_alert("warning"), make_alert("critical")
    calm = make_alert("info", "resolved").model_copy(
        update={"summary": "acme: 3 mentions vs 4 expected", "evidence": Evidence(mentions=3), "risk": 0.0}
    )
    for alert in (warning, critical, make_alert("warning"), calm):
        book.add_alert(alert)
    episode = book.get("acme:100")
    assert episode is not None and episode.peak is not None and episode.peak.severity == "critical"
    shown = episode.to_json()
    assert shown["status"] == "resolved" and shown["evidence_of"] == "peak"
    assert shown["summary"] == "acme: 3 mentions vs 4 expected"  # what resolved it
    assert shown["peak_summary"] == critical.summary  # why it fired
    assert any(m["text"].startswith("Acme airbags") for m in shown["top_mentions"])
    book.add_alert(make_alert("warning", alert_id="acme:200"))
    firing = book.get("acme:200")
    assert firing is not None and firing.to_json()["evidence_of"] == "latest"


def test_the_volume_fact_counts_stories_like_the_summary() -> None:
    from crisiswatch.alerting.render import explain

    alert = make_alert("critical")
    alert.evidence = alert.evidence.model_copy(update={
        "mentions": 22, "stories": 16, "volume": VolumeEvidence(observed=16, expected=1.0, ratio=8.6)
    })  # fmt: skip
    facts = dict(explain(alert).facts)
    assert facts["Volume"].startswith("16 stories (22 mentions) vs 1") and facts["Volume"].endswith("(8.6×)")

"""An alert of a silenced window (a planned event) says so first: e-mail subject, Slack's first line, text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from crisiswatch.alerting.channels import EmailChannel, slack_payload
from crisiswatch.alerting.policy import Notification
from crisiswatch.alerting.render import headline, plain_text, silenced
from crisiswatch.contracts.records import Alert
from crisiswatch.control.silences import new_silence
from crisiswatch.settings import Settings
from crisiswatch.stream.decisions import mark_silenced

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _alert() -> Alert:
    return Alert(
        alert_id="acme:1",
        brand="acme",
        severity="critical",
        risk=91.0,
        event_time=START + timedelta(minutes=5),
        window_start=START + timedelta(minutes=4),
        summary="acme: 412 mentions vs 35 expected",
        created_at=START + timedelta(minutes=5),
    )


def _notification(alert: Alert, event: str = "opened") -> Notification:
    return Notification(event, alert, started_at=alert.window_start, peak_severity="critical")  # type: ignore[arg-type]


def test_a_silenced_alert_says_so_in_the_subject_and_the_first_line() -> None:
    alert = _alert()
    launch = new_silence(
        "acme", start=START, end=START + timedelta(hours=3), reason="spring launch", created_by="maria", now=START
    )
    mark_silenced(alert, launch)  # what the risk stage does for a window the silence covers
    alert = Alert.model_validate_json(alert.model_dump_json())  # as the dispatcher reads it from the topic
    assert silenced(alert)
    n = _notification(alert)
    assert headline(n) == "[silenced] CRITICAL: acme brand crisis"
    text = plain_text(n)
    assert text.splitlines()[0] == "[silenced] CRITICAL: acme brand crisis"
    assert "Silenced: spring launch (planned by maria, until 2026-03-02 12:00 UTC)" in text
    slack = slack_payload(n, None)
    assert (
        slack["text"].startswith("[silenced] CRITICAL") and "[silenced] CRITICAL" in slack["blocks"][0]["text"]["text"]
    )
    settings = Settings(smtp_host="smtp.example", alert_email_to="pr@example.com", smtp_password=SecretStr("x"))
    assert EmailChannel(settings).message(n)["Subject"] == "[crisiswatch] [silenced] CRITICAL: acme brand crisis"
    assert headline(_notification(alert, "resolved")).startswith("[silenced] RESOLVED: acme")


def test_an_ordinary_alert_is_not_marked() -> None:
    alert = _alert()
    assert not silenced(alert)
    assert headline(_notification(alert)) == "CRITICAL: acme brand crisis"
    assert not slack_payload(_notification(alert), None)["text"].startswith("[silenced]")

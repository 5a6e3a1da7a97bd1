"""The live printout of `crisiswatch run`: ordering across topics, spike notes, the page it serves."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import aiohttp
from pydantic import SecretStr

from crisiswatch.broker import free_port
from crisiswatch.contracts.control import ControlMessage
from crisiswatch.contracts.records import Alert, Signal
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control.messages import Keyring
from crisiswatch.control.testing import fixed_key_pair
from crisiswatch.detectors.spikes import SpikeResult
from crisiswatch.runner import Watcher, human_line, open_page
from crisiswatch.settings import Settings

DECIDED = datetime(2026, 3, 2, 11, 3, tzinfo=UTC)


def watcher(lines: list[dict], notes: list[dict] | None = None) -> Watcher:
    settings = Settings(control_keys=SecretStr(fixed_key_pair("k1", "runner").private))
    return Watcher(settings, "unused:9092", lines.append, None if notes is None else notes.append)


def alert(alert_id: str = "a-1", pause: bool = True) -> bytes:
    return Alert(
        alert_id=alert_id, brand="globex", severity="critical", risk=100.0, event_time=DECIDED,
        window_start=DECIDED - timedelta(minutes=1), summary="globex: 16 stories", pause=pause, created_at=utcnow(),
    ).model_dump_json().encode()  # fmt: skip


def pause(w: Watcher, alert_id: str = "a-1", seq: int = 1) -> bytes:
    now = utcnow()
    message = ControlMessage(
        scope="global", state="paused", reason="crisis", actor="detector", alert_id=alert_id, episode="ep-1",
        seq=seq, issued_at=now, signed_at=now, on_resume="hold",
    )  # fmt: skip
    return w.keyring.sign(message).to_bytes()


def signal(minute: int, spike: bool, positive: int = 25) -> bytes:
    start = datetime(2026, 3, 2, 10, minute, tzinfo=UTC)
    verdict = SpikeResult(observed=26, expected=1.0, score=9.0 if spike else 0.0, p_value=1e-9, spike=spike)
    calm = SpikeResult(observed=0, expected=0.2, score=0.0, p_value=1.0, spike=False)
    return Signal(
        brand="acme", window_start=start, window_end=start + timedelta(minutes=1), mentions=26, stories=18,
        negative=0, neutral=1, positive=positive, reach=1000, volume=verdict, negativity=calm,
    ).model_dump_json().encode()  # fmt: skip


def test_a_pause_read_before_its_alert_waits_for_it_and_carries_the_decision_time() -> None:
    lines: list[dict] = []
    w = watcher(lines)
    w._on_control(pause(w), b"global")
    assert lines == [] and len(w.held) == 1  # its alert is on another topic, not read yet
    w._on_alert(alert())
    w.release_held()
    assert [line["type"] for line in lines] == ["alert", "control"]
    assert lines[1]["event_time"] == "2026-03-02T11:03:00Z"
    assert "CONTROL PAUSED   global" in human_line(lines[1])


def test_a_pause_whose_alert_never_comes_is_printed_after_a_while_and_repeats_are_not() -> None:
    lines: list[dict] = []
    w = watcher(lines)
    w._on_control(pause(w, alert_id="unknown"), b"global")
    w.release_held(wait_seconds=5.0)
    assert lines == []
    w.release_held(wait_seconds=0.0)
    assert len(lines) == 1 and lines[0]["alert_id"] == "unknown"
    w._on_control(pause(w, alert_id="unknown"), b"global")  # the same seq re-asserted: not a change
    w.release_held(force=True)
    assert len(lines) == 1


def test_forged_control_records_are_never_printed() -> None:
    lines: list[dict] = []
    w = watcher(lines)
    now = utcnow()
    resume = ControlMessage(
        scope="global", state="active", reason="x", actor="mallory", episode="e", seq=2,
        issued_at=now, signed_at=now, on_resume="hold",
    )  # fmt: skip
    forged = Keyring({"k1": b"guessed"}).sign(resume)
    w._on_control(forged.to_bytes(), b"global")
    w.release_held(force=True)
    assert lines == [] and w.held == []


def test_the_first_window_of_each_volume_spike_is_noted_once() -> None:
    lines: list[dict] = []
    notes: list[dict] = []
    w = watcher(lines, notes)
    for minute, spike in [(0, False), (1, True), (2, True), (3, True), (4, False), (5, True)]:
        w._on_signal(signal(minute, spike))
    assert [n["event_time"] for n in notes] == ["2026-03-02T10:01:00Z", "2026-03-02T10:05:00Z"]
    assert "96% positive, 0% negative" in notes[0]["summary"]
    assert human_line(notes[0]).startswith("2026-03-02 10:01  SPIKE")
    assert lines == []  # decisions only: spikes are notes, never alerts


async def test_the_run_serves_the_page_on_its_port_or_a_free_one(settings: Settings) -> None:
    """`crisiswatch run` serves the one-button page; a second run on the same machine gets a free port."""
    from crisiswatch.kafka import ensure_topics

    s = settings.model_copy(
        update={"control_keys": SecretStr(fixed_key_pair("k1", "page").private),
                "web_users": SecretStr("demo:pw-for-this-run"), "page_port": free_port(),
                "web_allow_plaintext_passwords": True}  # a test user (the run itself stores a hash)
    )  # fmt: skip
    await ensure_topics(settings.kafka.bootstrap_servers, s)
    demo_user = {"Authorization": "Basic " + base64.b64encode(b"demo:pw-for-this-run").decode()}
    async with (
        open_page(s, settings.kafka.bootstrap_servers) as first,
        open_page(s, settings.kafka.bootstrap_servers) as second,
    ):
        assert first.port == s.web.page_port and second.port not in (0, s.web.page_port)
        async with aiohttp.ClientSession() as http:
            async with http.get(second.url + "api/state") as r:
                assert r.status == 401
            async with http.get(second.url + "api/state", headers=demo_user) as r:
                assert r.status == 200
                assert "global" in json.dumps(await r.json())

"""The charts' data and the plain-words headline over real HTTP, from the demo crisis on a real broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from page_data import MID_CRISIS, crisis_window, demo_records, publish_demo
from pydantic import SecretStr

from crisiswatch import demo
from crisiswatch.alerting.channels import slack_payload
from crisiswatch.alerting.plain import plain_headline, share_words, times_usual, topic_phrase
from crisiswatch.alerting.policy import Notification
from crisiswatch.alerting.render import plain_text
from crisiswatch.brands_file import BrandsWatch
from crisiswatch.contracts.control import AuditRecord
from crisiswatch.control.messages import Keyring
from crisiswatch.control.testing import fixed_key_pair
from crisiswatch.detectors.evidence import Evidence
from crisiswatch.detectors.risk import BrandPolicy
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings
from crisiswatch.stream.decisions import RiskBook
from crisiswatch.web.server import WebServer
from crisiswatch.web.timeline import Point, TimelineFeed, TimelineStore, trend

TOKEN = "timeline-token-0123456789abcdef"


@pytest.fixture
async def demo_server(kafka_bootstrap: str, settings: Settings, tmp_path: Path) -> AsyncIterator[WebServer]:
    s = settings.model_copy(
        update={
            "control_keys": SecretStr(fixed_key_pair("k3", "timeline").private),
            "api_token": SecretStr(TOKEN),
            "page_port": 0,
        }
    )
    await ensure_topics(kafka_bootstrap, s)
    async with WebServer(s, port=0) as web:
        assert web.services is not None
        web.demo_end = await publish_demo(s, tmp_path / "demo", web.services.plane)  # type: ignore[attr-defined]
        yield web


async def get(server: WebServer, path: str) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http, http.get(server.url + path) as r:
        return r.status, await r.json()


async def wait_for(check, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await check()
        if found or loop.time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def test_timeline_of_the_demo_crisis(demo_server: WebServer) -> None:
    last = demo_server.demo_end["globex"]  # type: ignore[attr-defined]

    async def globex_paused() -> dict | None:
        status, body = await get(demo_server, "api/brands/globex/timeline?hours=6")
        latest = body.get("latest") or {}
        if status == 200 and any(m["kind"] == "pause" for m in body["marks"]) and latest.get("end") == last:
            return body
        return None

    body = await wait_for(globex_paused)
    assert body, "no globex timeline with its pause"
    columns = body["columns"]
    n = len(columns["start"])
    assert 300 <= n <= 361  # six hours of one-minute windows
    assert all(len(v) == n for v in columns.values())
    start, end = crisis_window()
    during = [i for i, t in enumerate(columns["start"]) if start <= t < end]
    before = [i for i, t in enumerate(columns["start"]) if t < start - 600]
    # the crisis is far above the expected band; before it, the mentions stay near it
    assert max(columns["per_minute"][i] for i in during) > 3 * max(columns["band_per_minute"][i] for i in during)
    assert max(columns["risk"][i] for i in during) >= body["thresholds"]["critical"]
    assert max(columns["risk"][i] for i in before) < body["thresholds"]["warning"]
    assert max(columns["negative_share"][i] for i in during) > 2 * columns["usual_share"][during[0]]
    kinds = [(m["kind"], m.get("severity")) for m in body["marks"]]
    assert ("alert", "critical") in kinds and ("alert", "warning") in kinds
    [pause] = [m for m in body["marks"] if m["kind"] == "pause"]
    critical = next(m for m in body["marks"] if m.get("severity") == "critical")
    assert pause["at"] == critical["at"] and start <= pause["at"] <= end  # marked at its alert, in event time
    assert pause["scope"] == "brand:globex" and pause["actor"] == "crisiswatch-risk"
    assert body["latest"]["end"] == columns["start"][-1] + 60
    assert body["headline"] == "No mentions of Globex in this window"  # the demo's last windows are empty

    status, everything = await get(demo_server, "api/timelines?hours=2")
    assert status == 200
    assert {t["brand"] for t in everything["timelines"]} == {"acme", "globex", "initech"}
    assert all(len(t["columns"]["start"]) <= 121 for t in everything["timelines"])
    assert (await get(demo_server, "api/brands/nobody/timeline"))[0] == 404
    assert (await get(demo_server, "api/timelines?hours=abc"))[0] == 400
    async with aiohttp.ClientSession() as anonymous, anonymous.get(demo_server.url + "api/timelines") as r:
        assert r.status == 401

    # the alert card: the newest window's numbers and the plain words, not only the window that opened it
    status, alerts = await get(demo_server, "api/alerts")
    [episode] = [a for a in alerts["alerts"] if a["brand"] == "globex"]
    assert episode["status"] == "resolved"
    assert episode["peak_headline"].startswith("Mentions of Globex are ")
    assert "about a data breach" in episode["peak_headline"]
    assert "p=" not in episode["peak_headline"] and "x" not in episode["peak_headline"].split("about")[1]
    assert episode["latest"]["end"] == body["latest"]["end"]
    # its peak is the crisis at its height on the timeline, not the window that opened it (11 mentions)
    opened = next(m for m in body["marks"] if m.get("severity") == "warning")
    assert episode["peak"]["stories"] > 2 * episode["alert"]["evidence"]["stories"]
    assert start <= episode["peak"]["start"] <= end and episode["peak"]["start"] >= opened["at"] - 60


def test_plain_words() -> None:
    evidence = {
        "mentions": 50, "negative": 33, "negative_share": 0.66, "expected_negative_share": 0.15, "positive": 2,
        "volume": {"observed": 48, "expected": 6, "ratio": 8.1},
        "languages": {"en": 9, "es": 8, "fr": 7, "de": 6, "it": 5, "pt": 5, "ar": 5, "hi": 5},
        "crisis_terms": {"data_leak": 20, "hack": 18, "breach": 12, "boycott": 4, "scandal": 2},
    }  # fmt: skip
    assert plain_headline("globex", Evidence.model_validate(evidence)) == (
        "Mentions of Globex are 8 times the usual, two thirds negative, in 8 languages, about a data breach"
    )
    viral = {"mentions": 75, "negative": 2, "positive": 72, "negative_share": 0.03, "expected_negative_share": 0.15,
             "volume": {"ratio": 15.2}, "languages": {"en": 60, "es": 15}}  # fmt: skip
    assert plain_headline("acme", Evidence.model_validate(viral), "ACME Corp") == (
        "Mentions of ACME Corp are 15 times the usual, nearly all positive, in English and Spanish"
    )
    assert times_usual(1.5) == "50% above the usual" and times_usual(1.0) == "about the usual"
    assert [share_words(x) for x in (0.5, 0.34, 0.25, 0.1, 0.97)] == [
        "half", "a third", "a quarter", "one in ten", "nearly all",
    ]  # fmt: skip
    assert topic_phrase({"recall": 5, "lawsuit": 4}) == "a product recall and a lawsuit"
    assert topic_phrase({"scandal": 9, "fraud": 2}) == "fraud and a scandal"  # the cause first
    assert topic_phrase({}) is None and plain_headline("x", Evidence()) == "Mentions of X"


def test_the_email_says_it_in_plain_words_too() -> None:
    from datetime import UTC, datetime

    from crisiswatch.contracts.records import Alert

    now = datetime(2026, 3, 2, 11, 3, tzinfo=UTC)
    alert = Alert(
        alert_id="globex:1", brand="globex", severity="critical", risk=80, event_time=now, window_start=now,
        summary="globex: 48 stories vs 6 expected", created_at=now,
        evidence={"mentions": 50, "negative_share": 0.66, "volume": {"ratio": 8.0}, "crisis_terms": {"recall": 3}},
    )  # fmt: skip
    n = Notification(event="opened", alert=alert, peak_severity="critical", started_at=now)
    text = plain_text(n)
    plain = "Mentions of Globex are 8 times the usual, two thirds negative, about a product recall"
    assert text.splitlines()[2] == plain + "."
    assert f"*{plain}.*" in json.dumps(slack_payload(n, None), ensure_ascii=False)  # Slack says it first too


@pytest.fixture
async def mid_crisis_server(kafka_bootstrap: str, settings: Settings, tmp_path: Path) -> AsyncIterator[WebServer]:
    s = settings.model_copy(
        update={
            "control_keys": SecretStr(fixed_key_pair("k3", "timeline").private),
            "api_token": SecretStr(TOKEN),
            "page_port": 0,
        }
    )
    await ensure_topics(kafka_bootstrap, s)
    async with WebServer(s, port=0) as web:
        assert web.services is not None
        web.demo_end = await publish_demo(s, tmp_path / "demo", web.services.plane, until=MID_CRISIS)  # type: ignore[attr-defined]
        yield web


async def test_a_firing_alert_shows_its_newest_window(mid_crisis_server: WebServer) -> None:
    """The card's numbers and words are the newest window's, not the window that opened the episode."""
    last = mid_crisis_server.demo_end["globex"]  # type: ignore[attr-defined]

    async def firing() -> dict | None:
        _, body = await get(mid_crisis_server, "api/alerts")
        found = [a for a in body.get("alerts", []) if a["brand"] == "globex" and a["status"] == "firing"]
        if found and found[0]["latest"] and found[0]["latest"]["end"] == last:
            return found[0]
        return None

    episode = await wait_for(firing)
    assert episode, "no firing globex alert with the newest window"
    _, timeline = await get(mid_crisis_server, "api/brands/globex/timeline?hours=1")
    newest = timeline["latest"]
    assert episode["latest"] == newest and newest["trend"] in ("rising", "steady", "falling")
    assert newest["stories"] > 2 * episode["alert"]["evidence"]["stories"]  # the crisis grew since it opened
    assert episode["headline"] == timeline["headline"]
    assert episode["headline"].startswith("Mentions of Globex are ") and "negative" in episode["headline"]
    assert f"{round(newest['ratio'])} times the usual" in episode["headline"]


def test_trend_words() -> None:
    def points(stories: list[int]) -> list[Point]:
        return [
            Point(start=60.0 * i, end=60.0 * (i + 1), mentions=s, negative=0, stories=s, expected=2.0,
                  negative_share=0.0, usual_share=0.1, risk=0.0, severity="info", written=0.0)
            for i, s in enumerate(stories)
        ]  # fmt: skip

    assert trend(points([2, 2, 2, 2, 2])) is None  # too few windows to say
    assert trend(points([5, 5, 5, 10, 12, 14])) == "rising"
    assert trend(points([40, 44, 38, 20, 18, 10])) == "falling"
    assert trend(points([40, 44, 38, 41, 39, 40])) == "steady"
    assert trend(points([1, 1, 1, 2, 2, 2])) == "steady"  # doubling one story is not a trend


def test_marks_on_event_time(tmp_path: Path) -> None:
    """A person's pause sits at the last window written by then; a policy pause at its alert; scopes apart."""
    signals, alerts = demo_records(str(tmp_path / "demo"))
    store = TimelineStore(Settings().risk.policy(), max_hours=2.0)
    written = 1_000_000.0
    for i, signal in enumerate(signals):
        store.add_signal(signal, written + i)  # the broker's timestamps: one second apart
    for alert in alerts:
        store.add_alert(alert)
    globex = [p for p in store.brands["globex"].points]
    assert globex[-1].end - globex[0].end <= 2 * 3600  # bounded by max_hours
    by_hand = globex[-30]
    at = datetime.fromtimestamp(by_hand.written + 0.5, UTC)

    def audit(scope: str, state: str, alert_id: str | None = None) -> AuditRecord:
        action = "pause" if state == "paused" else "resume"
        return AuditRecord(action=action, scope=scope, actor="maria", reason="r", at=at, state=state, alert_id=alert_id)

    store.add_audit(audit("brand:globex", "paused"))
    store.add_audit(audit("global", "active"))
    store.add_audit(audit("channel:x", "paused"))  # not on a brand's chart
    asked = next(a for a in alerts if a.pause)
    store.add_audit(audit("brand:globex", "paused", asked.alert_id))
    data = store.timeline_json("globex", 2.0)
    assert data is not None
    marks = [(m["kind"], m["at"], m.get("scope")) for m in data["marks"] if m["kind"] != "alert"]
    assert ("pause", by_hand.end, "brand:globex") in marks
    assert ("resume", by_hand.end, "global") in marks
    assert ("pause", asked.event_time.timestamp(), "brand:globex") in marks
    assert all(scope != "channel:x" for _, _, scope in marks)
    acme = store.timeline_json("acme", 2.0)
    assert acme is not None and [m["scope"] for m in acme["marks"] if m["kind"] != "alert"] == ["global"]


def test_each_brand_charts_its_own_policy(tmp_path: Path) -> None:
    """A brand with its own preset in the brands file: its risk is the risk stage's under that policy, its
    threshold lines are its own, and a changed file applies without a restart."""
    signals, _ = demo_records(str(tmp_path / "demo"))
    base = Settings().risk.policy()
    brands = tmp_path / "brands.yaml"
    brands.write_text(
        demo.BRANDS_YAML.replace("    name: Globex\n", "    name: Globex\n    policy: {sensitivity: quiet}\n")
    )
    store = TimelineStore(base, brands=BrandsWatch(brands), max_hours=24.0)
    for i, signal in enumerate(signals):
        store.add_signal(signal, 1_000_000.0 + i)
    quiet = BrandPolicy(sensitivity="quiet").apply(base)
    assert quiet.critical_at != base.critical_at
    globex, acme = store.timeline_json("globex", 24.0), store.timeline_json("acme", 24.0)
    assert globex is not None and acme is not None
    assert globex["thresholds"] == {"warning": quiet.warning_at, "critical": quiet.critical_at}
    assert acme["thresholds"] == {"warning": base.warning_at, "critical": base.critical_at}

    def risks(book: RiskBook, brand: str) -> list[float]:
        out = []
        for signal in signals:
            decided = book.decide(signal, created_at=signal.window_end)
            if decided is not None and signal.brand == brand:
                out.append(round(decided.decision.assessment.risk, 2))
        return out

    n = len(globex["columns"]["risk"])
    own = risks(RiskBook(base, {"globex": BrandPolicy(sensitivity="quiet")}), "globex")[-n:]
    assert globex["columns"]["risk"] == own  # what the risk stage decided for globex under quiet
    assert own != risks(RiskBook(base), "globex")[-n:]  # not the global policy's line
    assert store.timeline_json("acme", 24.0)["columns"]["risk"] == risks(RiskBook(base), "acme")[-n:]  # type: ignore[index]

    brands.write_text(
        demo.BRANDS_YAML.replace("    name: Globex\n", "    name: Globex\n    policy: {critical_at: 90}\n")
    )
    reloaded = store.timeline_json("globex", 24.0)
    assert reloaded is not None and reloaded["thresholds"]["critical"] == 90.0
    assert store.book.policy_for("globex").critical_at == 90.0  # the next windows are decided under it


def test_the_feed_reads_the_risk_stage_brands_file(tmp_path: Path) -> None:
    """The page's feed watches the brands file the risk stage reads (none readable: the global policy)."""
    brands = tmp_path / "brands.yaml"
    brands.write_text(demo.BRANDS_YAML.replace("    name: Acme\n", "    name: Acme\n    policy: {critical_at: 88}\n"))
    settings, keyring = Settings(bootstrap_servers="127.0.0.1:9"), Keyring()  # not started: no broker needed
    feed = TimelineFeed(settings.model_copy(update={"brands_file": brands}), keyring)
    assert feed.store.thresholds("acme")["critical"] == 88.0
    assert feed.store.thresholds("globex")["critical"] == settings.risk.policy().critical_at
    missing = TimelineFeed(settings.model_copy(update={"brands_file": tmp_path / "none.yaml"}), keyring)
    assert (
        missing.store.watch is None
        and missing.store.thresholds("acme")["critical"] == settings.risk.policy().critical_at
    )

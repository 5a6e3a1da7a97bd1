"""The demo crisis on the page, in headless Chromium at 390 px (a phone) and 1400 px (a laptop).

The demo's signals and alerts are on the broker as the worker writes them (tests/page_data.py), the
crisis paused ``brand:globex`` through the control plane, and a publisher reports 12 held posts on
``publishing.held``. At both widths the page must show the per-brand chart with the crisis and the pause,
an alert card a PR person reads in ten seconds, with nothing wider than the screen, and a resume dialog
with the held-post count and the hold/skip/review choice. Screenshots go to the test's tmp_path (set
``CRISISWATCH_SCREENSHOTS=docs/screenshots`` to refresh the README's pictures).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from browser_kit import BROWSER_MARKS, QUIET_FLAGS, chrome, in_thread, log_in_on_page, waiter
from page_data import MID_CRISIS, publish_demo
from pydantic import SecretStr

from crisiswatch import demo
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control.testing import fixed_key_pair
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings
from crisiswatch.web.auth import LoginGuard
from crisiswatch.web.server import WebServer

PASSWORD = "correct horse battery"

pytestmark = BROWSER_MARKS


@pytest.fixture
def browser() -> Iterator[Any]:
    flags = [*QUIET_FLAGS, "--hide-scrollbars", "--force-device-scale-factor=1"]
    yield from chrome(flags, window="1400,1600", script_timeout=10, browser_log=True)


def page_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "control_keys": SecretStr(fixed_key_pair("k4", "page").private),
            "web_users": SecretStr(f"maria:{PASSWORD}"),
            "web_allow_plaintext_passwords": True,
            "web_roles": "maria:admin",
            "page_port": 0,
        }
    )


@pytest.fixture
async def demo_page(kafka_bootstrap: str, settings: Settings, tmp_path: Path) -> AsyncIterator[WebServer]:
    """The page in the middle of the demo crisis: critical alert firing, brand:globex paused, 12 posts held."""
    _, brands = demo.write_demo(tmp_path / "demo")
    s = page_settings(settings).model_copy(update={"brands_file": brands})
    await ensure_topics(kafka_bootstrap, s)
    async with WebServer(s, port=0) as web:
        assert web.services is not None
        web.demo_end = await publish_demo(s, tmp_path / "demo", web.services.plane, until=MID_CRISIS)  # type: ignore[attr-defined]
        report = {
            "gate": "host/1/example-publisher",
            "at": utcnow().isoformat(),
            "scopes": {"brand:globex": {"waiting": 12, "review": 0, "ready": 0}},
        }  # what a publishing gate reports (crisiswatch.control.held.HeldReport)
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers, enable_idempotence=False)
        await producer.start()
        try:
            value = json.dumps(report).encode()
            await producer.send_and_wait(s.topic("publishing.held"), value, key=report["gate"].encode())
        finally:
            await producer.stop()
        yield web


OVERFLOW = """
    const root = document.documentElement;
    const wide = (node) => node.scrollWidth > node.clientWidth + 1;
    const visible = (node) => node.offsetParent !== null;
    return {
      inner: window.innerWidth,
      page: root.scrollWidth,
      cards: [...document.querySelectorAll("article.alert, article.brand, .card, .modal-card")]
        .filter(visible).filter(wide).map((n) => (n.id || n.className) + " " + n.scrollWidth + ">" + n.clientWidth),
      buttons: [...document.querySelectorAll("button")].filter(visible).filter(wide)
        .map((b) => b.textContent + " " + b.scrollWidth + ">" + b.clientWidth),
      offscreen: [...document.querySelectorAll("button, input, h1, h2, canvas")].filter(visible)
        .filter((n) => n.getBoundingClientRect().right > window.innerWidth + 1)
        .map((n) => n.tagName + "#" + n.id + "." + n.className),
    };
"""


def visible_text_outside_details(browser: Any, card: Any) -> str:
    """The card's text a person sees without opening "The numbers behind it"."""
    script = """
        const copy = arguments[0].cloneNode(true);
        for (const d of copy.querySelectorAll("details")) d.remove();
        return copy.innerText || copy.textContent;
    """
    return browser.execute_script(script, card)


async def test_demo_crisis_on_a_phone_and_a_laptop(demo_page: WebServer, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    wait = waiter(browser, 60, poll=0.2)

    shots = tmp_path / "screenshots"
    shots.mkdir()
    last = demo_page.demo_end["globex"]  # type: ignore[attr-defined]

    def log_in() -> None:
        log_in_on_page(browser, wait, demo_page.url, "maria", PASSWORD)

    def fetch(path: str) -> Any:
        script = """
            const done = arguments[arguments.length - 1];
            fetch(arguments[0]).then(r => r.json()).then(done);
        """
        return browser.execute_async_script(script, path)

    def crisis_drawn(d: Any) -> bool:
        """The globex chart has its three panels up to the newest window, and the firing card its chart."""
        brand = d.find_elements(By.CSS_SELECTOR, 'article.brand[data-brand="globex"] canvas')
        card = d.find_elements(By.CSS_SELECTOR, "article.alert.firing .alert-chart canvas")
        return len(brand) == 3 and len(card) == 3

    await in_thread(log_in)

    def phone_and_laptop() -> dict[int, Any]:
        results = {}
        for width, height in ((360, 2400), (390, 2400), (1400, 1800)):
            browser.set_window_size(width, height)
            wait(lambda d, w=width: d.execute_script("return window.innerWidth") == w)
            browser.refresh()
            wait(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "1")
            wait(crisis_drawn)
            timeline = fetch("api/brands/globex/timeline?hours=6")
            api_alert = next(a for a in fetch("api/alerts")["alerts"] if a["brand"] == "globex")
            overflow = browser.execute_script(OVERFLOW)
            browser.save_screenshot(str(shots / f"page-{width}.png"))
            card = browser.find_element(By.CSS_SELECTOR, "article.alert")
            chart = browser.find_element(By.CSS_SELECTOR, 'article.brand[data-brand="globex"]')
            for node, name in ((card, "alert-card"), (chart, "chart-globex")):
                browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", node)
                node.screenshot(str(shots / f"{name}-{width}.png"))
            browser.execute_script("window.scrollTo(0, 0)")
            seen = visible_text_outside_details(browser, card)
            details = card.find_element(By.CSS_SELECTOR, "details.stats")
            children = browser.execute_script("return [...arguments[0].children].map(c => c.className)", card)

            # the resume dialog for the paused brand: held posts, the scope's choice, an empty reason
            browser.find_element(By.CSS_SELECTOR, 'button[data-scope="brand:globex"]').click()
            wait(lambda d: d.find_element(By.ID, "resume-dialog").get_attribute("data-ready") == "1")
            held = browser.find_element(By.ID, "resume-held").text
            checked = browser.find_element(By.CSS_SELECTOR, "input[name=on-resume]:checked").get_attribute("value")
            radios = browser.find_elements(By.CSS_SELECTOR, "input[name=on-resume]")
            choices = [e.get_attribute("value") for e in radios]
            reason = browser.find_element(By.ID, "resume-reason").get_attribute("value")
            dialog_overflow = browser.execute_script(OVERFLOW)
            browser.save_screenshot(str(shots / f"resume-dialog-{width}.png"))
            browser.find_element(By.ID, "resume-reason").send_keys("statement is out")
            browser.find_element(By.CSS_SELECTOR, "input[name=on-resume][value=skip]").click()
            browser.find_element(By.ID, "resume-no").click()
            wait(lambda d: not d.find_element(By.ID, "resume-dialog").is_displayed())
            results[width] = {
                "timeline": timeline, "alert": api_alert, "overflow": overflow, "seen": seen,
                "details_open": details.get_attribute("open"), "children": children, "held": held,
                "checked": checked, "choices": choices, "reason": reason, "dialog_overflow": dialog_overflow,
            }  # fmt: skip
        return results

    results = await in_thread(phone_and_laptop)
    for width, r in results.items():
        # the chart's data: the crisis up to the newest window, its alerts and the pause
        assert r["timeline"]["latest"]["end"] == last
        kinds = {(m["kind"], m.get("severity")) for m in r["timeline"]["marks"]}
        assert ("pause", None) in kinds and ("alert", "critical") in kinds, r["timeline"]["marks"]
        o = r["overflow"]
        assert o["inner"] == width
        assert o["page"] <= o["inner"], f"{width}px: the page is {o['page']}px wide"
        assert o["cards"] == [] and o["buttons"] == [] and o["offscreen"] == [], (width, o)
        d = r["dialog_overflow"]
        assert d["page"] <= d["inner"] and d["cards"] == [] and d["buttons"] == [] and d["offscreen"] == [], (width, d)
        # ten seconds: "I'm on it" first, a plain headline of the newest window, the evidence once, no statistics
        seen = r["seen"]
        assert r["children"][:2] == ["alert-head", "ack-form"]
        assert "I'm on it" in seen and r["alert"]["status"] == "firing"
        assert f"{r['alert']['headline']}." in seen and r["alert"]["headline"] == r["timeline"]["headline"]
        assert "Mentions of Globex are" in seen and "about a data breach" in seen
        newest = r["timeline"]["latest"]
        assert f"{round(newest['per_minute'] * 10) / 10:g} mentions/min" in seen
        for raw in ("p=", "loudness", "badness", "data_leak", " x4", "sd above"):
            assert raw not in seen, f"{raw!r} is visible on the card: {seen}"
        assert r["details_open"] is None
        assert seen.count("What people are saying") == 1
        # resuming with eyes open
        assert r["held"].startswith("Held posts: 12 posts are waiting"), r["held"]
        assert sorted(r["choices"]) == ["hold", "review", "skip"] and r["checked"] == "hold"
        assert r["reason"] == ""  # a new dialog never carries the previous reason

    # live: the rest of the crisis arrives; the page follows without a reload, and says who must resume
    assert demo_page.services is not None
    ends = await publish_demo(demo_page.services.settings, tmp_path / "demo", after=MID_CRISIS)

    def updated() -> dict[str, Any]:
        end_clock = browser.execute_script(
            "return new Date(arguments[0] * 1000).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'})",
            ends["globex"],
        )
        chart = 'article.brand[data-brand="globex"] .brand-latest'
        wait(lambda d: end_clock in d.find_element(By.CSS_SELECTOR, chart).text, timeout=90)
        wait(lambda d: d.find_element(By.ID, "hero-resume-note").is_displayed(), timeout=60)
        wait(lambda d: d.find_elements(By.CSS_SELECTOR, "article.alert.resolved .alert-chart canvas"))
        browser.save_screenshot(str(shots / "page-resolved-1400.png"))
        note = browser.find_element(By.ID, "hero-resume-note").text
        card = browser.find_element(By.CSS_SELECTOR, "article.alert.resolved")
        browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", card)
        card.screenshot(str(shots / "alert-card-resolved-1400.png"))
        browser.execute_script("window.scrollTo(0, 0)")
        return {"note": note, "seen": visible_text_outside_details(browser, card)}

    after = await in_thread(updated)
    assert (
        "The Globex alert has resolved, but publishing stays paused for Globex until a person resumes it"
        in (after["note"])
    )
    assert after["seen"].count("At its peak") == 2 and "I'm on it" not in after["seen"]

    for png in shots.glob("*.png"):
        assert png.stat().st_size > 5_000, png
    target = os.environ.get("CRISISWATCH_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for png in shots.glob("*.png"):
            shutil.copy(png, Path(target) / png.name)

    # resume from the dialog with a choice: the control plane gets it, and the note goes away
    def resume() -> str:
        browser.find_element(By.CSS_SELECTOR, 'button[data-scope="brand:globex"]').click()
        wait(lambda d: d.find_element(By.ID, "resume-dialog").get_attribute("data-ready") == "1")
        assert "has resolved" in browser.find_element(By.ID, "resume-episode").text
        browser.find_element(By.ID, "resume-reason").send_keys("statement published, story calmed down")
        browser.find_element(By.CSS_SELECTOR, "input[name=on-resume][value=review]").click()
        browser.find_element(By.ID, "resume-yes").click()
        wait(lambda d: not d.find_element(By.ID, "resume-dialog").is_displayed())
        wait(lambda d: not d.find_element(By.ID, "hero-resume-note").is_displayed())
        return browser.find_element(By.ID, "flash").text

    assert "Resumed brand:globex" in await in_thread(resume)
    state = demo_page.services.plane.get("brand:globex")
    assert state is not None and state.state == "active" and state.actor == "maria"
    assert state.on_resume == "review" and state.reason == "statement published, story calmed down"
    logs = await in_thread(lambda: browser.get_log("browser"))
    errors = [e for e in logs if e["level"] == "SEVERE" and e.get("source") != "network"]  # 401s before login
    assert errors == [], errors


async def test_too_many_logins_says_how_long_to_wait(kafka_bootstrap: str, settings: Settings, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    s = page_settings(settings)
    await ensure_topics(kafka_bootstrap, s)
    guard = LoginGuard(free_failures=1, free_failures_under_attack=1, base_delay=120.0)

    def attempt(url: str) -> str:
        browser.get(url)
        WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "username").is_displayed())
        browser.find_element(By.ID, "username").send_keys("maria")
        messages = []
        for _ in range(2):
            browser.find_element(By.ID, "password").clear()
            browser.find_element(By.ID, "password").send_keys("wrong")
            browser.execute_script('document.getElementById("login-error").textContent = ""')
            browser.find_element(By.ID, "login-button").click()
            WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "login-error").text)
            messages.append(browser.find_element(By.ID, "login-error").text)
        return messages[-1]

    async with WebServer(s, port=0, login_guard=guard) as web:
        message = await in_thread(lambda: attempt(web.url))
    assert message.startswith("Too many attempts. Try again in "), message
    assert "minute" in message or "second" in message

"""The silences section of the page (static/silences.js) in headless Chromium: list, add, remove."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from browser_kit import BROWSER_MARKS, chrome, in_thread, log_in_on_page, waiter
from pydantic import SecretStr

from crisiswatch.contracts.records import Alert
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control.silences import new_silence
from crisiswatch.control.testing import fixed_key_pair
from crisiswatch.kafka import ensure_topics, new_producer
from crisiswatch.settings import Settings
from crisiswatch.stream.decisions import mark_silenced
from crisiswatch.web.server import WebServer

pytestmark = BROWSER_MARKS


@pytest.fixture
def browser() -> Iterator[Any]:
    yield from chrome()


@pytest.fixture
async def server(kafka_bootstrap: str, settings: Settings) -> AsyncIterator[WebServer]:
    s = settings.model_copy(
        update={
            "control_keys": SecretStr(fixed_key_pair("k3", "silences-browser").private),
            "web_users": SecretStr("maria:correct horse battery"),
            "web_allow_plaintext_passwords": True,  # a test user (production stores hashes)
            "web_roles": "maria:admin",
            "page_port": 0,
        }
    )
    await ensure_topics(kafka_bootstrap, s)
    async with WebServer(s, port=0) as web:
        yield web


async def test_plan_and_remove_a_silence_on_the_page(server: WebServer, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    wait = waiter(browser, 20)

    def plan() -> str:
        log_in_on_page(browser, wait, server.url, "maria", "correct horse battery", loaded=False)
        section = wait(lambda d: d.find_element(By.ID, "silences") if d.find_element(By.ID, "silences").is_displayed()
                       and "No silences planned" in d.find_element(By.ID, "silences").text else None)  # fmt: skip
        section.find_element(By.TAG_NAME, "summary").click()
        section.find_element(By.ID, "silence-brand").send_keys("acme")
        section.find_element(By.ID, "silence-reason").send_keys("spring product launch")
        section.find_element(By.ID, "silence-until").send_keys("2h")
        section.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait(lambda d: "spring product launch" in d.find_element(By.ID, "silences").text)
        return section.text

    text = await in_thread(plan)
    assert "acme" in text and "active now" in text and "by maria" in text, text
    assert server.services is not None

    # Three critical alerts: one of a silenced window, one asking for a pause that is in force, one asking.
    now = utcnow()
    launch = new_silence(
        "acme", start=now - timedelta(minutes=5), end=now + timedelta(hours=2), reason="spring product launch",
        created_by="maria", now=now,
    )  # fmt: skip

    def critical(brand: str, pause: bool) -> Alert:
        return Alert(
            alert_id=f"{brand}:1", brand=brand, severity="critical", risk=90.0, event_time=now,
            window_start=now - timedelta(minutes=1), summary=f"{brand}: 300 mentions vs 20 expected", pause=pause,
            created_at=now,
        )  # fmt: skip

    alerts = [critical("acme", False), critical("initech", True), critical("globex", True)]
    mark_silenced(alerts[0], launch)  # as the risk stage marks an alert of a silenced window
    producer = new_producer(settings=server.settings, linger_ms=0)
    await producer.start()
    try:
        for alert in alerts:
            await producer.send_and_wait(
                server.settings.topic("alerts"), alert.model_dump_json().encode(), key=alert.brand.encode()
            )
    finally:
        await producer.stop()
    await server.services.plane.pause("brand:initech", reason="crisis", actor="crisiswatch-risk", alert_id="initech:1")

    def cards() -> dict[str, str]:
        def pills(d: Any) -> dict[str, str] | None:
            found = {}
            for brand in ("acme", "initech", "globex"):
                card = d.find_elements(By.CSS_SELECTOR, f'article.alert[data-alert-id="{brand}:1"] .alert-head')
                if not card:
                    return None
                found[brand] = card[0].text
            return found if "publishing paused" in found["initech"] else None

        return wait(pills)

    heads = await in_thread(cards)
    until = browser.execute_script("return when(arguments[0])", launch.end.isoformat())
    assert f"Silenced: spring product launch, until {until} — will not pause" in heads["acme"], heads
    assert "pause requested" not in heads["acme"] and "publishing paused" not in heads["acme"]
    assert "publishing paused" in heads["initech"] and "pause requested" not in heads["initech"], heads
    assert "pause requested" in heads["globex"] and "publishing paused" not in heads["globex"], heads

    def remove() -> str:
        browser.execute_script("window.confirm = () => true;")
        browser.find_element(By.CSS_SELECTOR, "#silences td.actions button").click()
        wait(lambda d: "No silences planned" in d.find_element(By.ID, "silences").text)
        return browser.find_element(By.ID, "silences").text

    assert "spring product launch" not in await in_thread(remove)

"""The page in a real headless browser (Debian chromium + chromedriver, driven by selenium).

Log in, press "Pause all", see the state change on the page, and find the signed pause on the control
topic; the browser's own session cannot change anything without the CSRF token, and nobody can without
logging in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from browser_kit import BROWSER_MARKS, QUIET_FLAGS, chrome, in_thread, log_in_on_page, waiter
from pydantic import SecretStr

from crisiswatch.contracts.control import ControlMessage
from crisiswatch.contracts.records import Alert
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control.messages import ControlRejected, Keyring
from crisiswatch.control.testing import fixed_key_pair
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings
from crisiswatch.web.server import WebServer

pytestmark = BROWSER_MARKS


@pytest.fixture
def browser() -> Iterator[Any]:
    yield from chrome(QUIET_FLAGS, script_timeout=10)


@pytest.fixture
async def server(kafka_bootstrap: str, settings: Settings) -> AsyncIterator[WebServer]:
    s = settings.model_copy(
        update={
            "control_keys": SecretStr(fixed_key_pair("k2", "browser").private),
            "web_users": SecretStr("maria:correct horse battery"),
            "web_allow_plaintext_passwords": True,  # a test user (production stores hashes)
            "web_roles": "maria:admin",
            "page_port": 0,
        }
    )
    await ensure_topics(kafka_bootstrap, s)
    async with WebServer(s, port=0) as web:
        yield web


async def test_login_pause_all_and_the_signed_message(server: WebServer, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    wait = waiter(browser, 10)

    def log_in() -> None:
        log_in_on_page(browser, wait, server.url, "maria", "correct horse battery")

    s = server.settings
    hostile = "<img src=x onerror=alert(1)> acme lied"
    alert = Alert(
        alert_id="acme:1", brand="acme", severity="critical", risk=90, event_time=utcnow(), window_start=utcnow(),
        summary="acme: 900 mentions vs 40 expected", created_at=utcnow(),
        evidence={"top_mentions": [{"text": hostile, "source": "rss", "reach": 10, "lang": "en",
                                    "sentiment": "negative", "url": "javascript:alert(2)"}]},
    )  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(s.topic("alerts"), alert.model_dump_json().encode(), key=b"acme")
    finally:
        await producer.stop()

    await in_thread(log_in)
    assert await in_thread(lambda: browser.find_element(By.ID, "hero-state").text) == "LIVE"

    def alert_card() -> tuple[str, int, int]:
        card = wait(lambda d: d.find_element(By.CSS_SELECTOR, 'article[data-alert-id="acme:1"]'))
        text = card.find_element(By.CSS_SELECTOR, ".mentions li").text
        return text, len(card.find_elements(By.TAG_NAME, "img")), len(card.find_elements(By.TAG_NAME, "a"))

    text, images, links = await in_thread(alert_card)
    assert hostile in text and images == 0 and links == 0  # shown as text, never as markup or a link

    def acknowledge() -> str:
        card = browser.find_element(By.CSS_SELECTOR, 'article[data-alert-id="acme:1"]')
        card.find_element(By.CSS_SELECTOR, ".ack-form input").send_keys("drafting a statement")
        card.find_element(By.CSS_SELECTOR, "button.ack").click()
        found = wait(lambda d: d.find_elements(By.CSS_SELECTOR, 'article[data-alert-id="acme:1"] .acks'))
        return found[0].text

    assert "maria is on it" in await in_thread(acknowledge)
    assert server.services is not None
    episode = server.services.alerts.book.get("acme:1")
    assert episode is not None and [(a.actor, a.note) for a in episode.acks] == [("maria", "drafting a statement")]
    assert await in_thread(lambda: browser.find_element(By.ID, "user").text) == "maria"
    cookies = await in_thread(browser.get_cookies)
    [session] = [c for c in cookies if c["name"] == "crisiswatch_session"]
    assert session["httpOnly"] is True and session["sameSite"] == "Strict"

    # The page's session without the CSRF header is refused, from inside the browser itself.
    fetch = """
        const done = arguments[arguments.length - 1];
        fetch("api/pause", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"})
            .then(r => done(r.status)).catch(e => done(String(e)));
    """
    assert await in_thread(lambda: browser.execute_async_script(fetch)) == 403

    def press_pause_all() -> None:
        browser.find_element(By.ID, "reason").send_keys("recall story trending")
        browser.find_element(By.ID, "pause-all").click()
        wait(lambda d: d.find_element(By.ID, "hero-state").text == "PAUSED everywhere")
        wait(lambda d: "recall story trending" in d.find_element(By.ID, "hero-detail").text)
        browser.save_screenshot(str(tmp_path / "paused.png"))

    await in_thread(press_pause_all)
    row = await in_thread(
        lambda: browser.find_element(By.CSS_SELECTOR, 'tr[data-scope="global"]').get_attribute("data-state")
    )
    assert row == "paused"
    assert (tmp_path / "paused.png").stat().st_size > 10_000

    # The signed pause message is on the control topic, by the person who pressed the button.
    consumer = AIOKafkaConsumer(
        s.topic("publishing.control"), bootstrap_servers=s.kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
    finally:
        await consumer.stop()
    [record] = [m for msgs in batches.values() for m in msgs]
    assert record.key == b"global"
    message = Keyring.from_settings(s.control).verify_record(record.value, ControlMessage)
    assert (message.state, message.actor, message.reason) == ("paused", "maria", "recall story trending")
    assert message.kid == "k2"
    with pytest.raises(ControlRejected):  # the signature covers the actor: a changed record fails
        Keyring.from_settings(s.control).verify_record(record.value.replace(b'"maria"', b'"mallory"'), ControlMessage)
    with pytest.raises(ControlRejected):  # and another key does not verify it
        Keyring({"k2": b"another key"}).verify_record(record.value, ControlMessage)

    # Without logging in, the pause endpoint refuses.
    async with aiohttp.ClientSession() as anonymous, anonymous.post(server.url + "api/pause", json={}) as r:
        assert r.status == 401

    # Resume from the page: a deliberate second click.
    def resume() -> None:
        browser.find_element(By.ID, "resume-all").click()
        wait(lambda d: d.find_element(By.ID, "resume-yes").is_displayed())
        assert browser.find_element(By.ID, "resume-reason").get_attribute("value") == ""  # never the pause's reason
        browser.find_element(By.ID, "resume-reason").send_keys("statement is out")
        browser.find_element(By.ID, "resume-yes").click()
        wait(lambda d: d.find_element(By.ID, "hero-state").text == "LIVE")

    await in_thread(resume)
    current = server.services.plane.get("global")
    assert current is not None and current.state == "active" and current.actor == "maria"


async def test_wrong_password_shows_an_error(server: WebServer, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def attempt() -> str:
        browser.get(server.url)
        WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "username").is_displayed())
        browser.find_element(By.ID, "username").send_keys("maria")
        browser.find_element(By.ID, "password").send_keys("wrong")
        browser.find_element(By.ID, "login-button").click()
        WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "login-error").text)
        return browser.find_element(By.ID, "login-error").text

    assert await in_thread(attempt) == "wrong user name or password"
    assert await in_thread(lambda: browser.find_element(By.ID, "app").is_displayed()) is False

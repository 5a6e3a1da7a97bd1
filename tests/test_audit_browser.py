"""The governance section of the page (static/audit.js) in headless Chromium: a viewer sees the audit log
and no buttons it may not press; a second operator approves a two-person resume of global on the page."""

from __future__ import annotations

import asyncio
import base64
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from argon2 import PasswordHasher
from pydantic import SecretStr

from crisiswatch.control.testing import fixed_key_pair
from crisiswatch.settings import Settings
from crisiswatch.web.server import WebServer
from stream.topics import ensure_topics

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # test-sized Argon2id costs
PASSWORDS = {"maria": "admin pass 1", "oscar": "operator pass 1", "olga": "operator pass 2", "vera": "viewer pass"}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="Debian chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
    ),
]


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="crisiswatch-chrome-")
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1400,1400")
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
async def server(kafka_bootstrap: str, settings: Settings) -> AsyncIterator[WebServer]:
    s = settings.model_copy(
        update={
            "control_keys": SecretStr(fixed_key_pair("k4", "audit-browser").private),
            "web_users": SecretStr(",".join(f"{u}:{FAST.hash(p)}" for u, p in PASSWORDS.items())),
            "web_roles": "maria:admin,oscar:operator,olga:operator",
            "web_resume_approval": True,
            "page_port": 0,
        }
    )
    await ensure_topics(kafka_bootstrap, s)
    async with WebServer(s, port=0) as web:
        yield web


async def in_thread(work: Callable[[], Any]) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, work)


def basic(user: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()}


async def test_audit_log_roles_and_approval_on_the_page(server: WebServer, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "api/pause", json={"reason": "leak story"}, headers=basic("maria")) as r:
            assert r.status == 200
        async with http.post(server.url + "api/resume", json={"reason": "leak denied"}, headers=basic("oscar")) as r:
            assert r.status == 202

    def wait(condition: Callable[[Any], Any], timeout: float = 30) -> Any:
        return WebDriverWait(browser, timeout, poll_frequency=0.1).until(condition)

    def sign_in(user: str) -> None:
        browser.delete_all_cookies()
        browser.get(server.url)
        wait(lambda d: d.find_element(By.ID, "username").is_displayed())
        browser.find_element(By.ID, "username").send_keys(user)
        browser.find_element(By.ID, "password").send_keys(PASSWORDS[user])
        browser.find_element(By.ID, "login-button").click()

    def audit_text(d: Any) -> str:
        return d.find_element(By.ID, "audit").text

    def as_viewer() -> tuple[str, bool, bool]:
        sign_in("vera")
        wait(lambda d: "asked to resume global" in audit_text(d) and "paused global" in audit_text(d))
        wait(lambda d: d.execute_script("return document.body.dataset.role") == "viewer")
        pause_all = browser.find_element(By.ID, "pause-all")
        approve = browser.find_elements(By.XPATH, "//*[@id='audit']//button[contains(., 'Approve')]")
        return audit_text(browser), pause_all.is_displayed(), bool(approve)

    text, pause_visible, approve_visible = await in_thread(as_viewer)
    assert "maria paused global" in text and "leak story" in text and "✔ verified" in text
    assert "oscar asked to resume global" in text and "Waiting for a second person" in text
    assert not pause_visible and not approve_visible  # a viewer gets no buttons it may not press

    def as_second_operator() -> str:
        sign_in("olga")
        button = wait(
            lambda d: next(iter(d.find_elements(By.XPATH, "//*[@id='audit']//button[contains(., 'Approve')]")), None)
        )
        button.find_element(By.XPATH, "preceding-sibling::input").send_keys("checked with legal")
        button.click()
        wait(lambda d: "approved resuming global" in audit_text(d))
        return audit_text(browser)

    text = await in_thread(as_second_operator)
    assert "olga resumed global" in text and "asked by oscar" in text
    assert server.services is not None
    state = server.services.plane.get("global")
    assert state is not None and not state.paused and state.actor == "olga"

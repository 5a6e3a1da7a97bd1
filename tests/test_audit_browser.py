"""The governance section of the page (static/audit.js) in headless Chromium: a viewer sees the audit log
and no buttons it may not press; a second operator approves a two-person resume of global on the page."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from argon2 import PasswordHasher
from browser_kit import BROWSER_MARKS, chrome, in_thread, log_in_on_page, waiter
from pydantic import SecretStr

from crisiswatch.control.testing import fixed_key_pair
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings
from crisiswatch.web.server import WebServer

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # test-sized Argon2id costs
PASSWORDS = {"maria": "admin pass 1", "oscar": "operator pass 1", "olga": "operator pass 2", "vera": "viewer pass"}

pytestmark = BROWSER_MARKS


@pytest.fixture
def browser() -> Iterator[Any]:
    yield from chrome()


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


def basic(user: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()}


async def test_audit_log_roles_and_approval_on_the_page(server: WebServer, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "api/pause", json={"reason": "leak story"}, headers=basic("maria")) as r:
            assert r.status == 200
        async with http.post(server.url + "api/resume", json={"reason": "leak denied"}, headers=basic("oscar")) as r:
            assert r.status == 202

    wait = waiter(browser, 30)

    def sign_in(user: str) -> None:
        browser.delete_all_cookies()
        log_in_on_page(browser, wait, server.url, user, PASSWORDS[user], loaded=False)

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

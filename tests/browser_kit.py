"""Shared set-up of the headless-browser tests: Debian chromium + chromedriver driven by selenium.

One place for finding chromium and its driver, the skip marker when they are absent, starting and
cleaning up a driver with a throw-away profile, waiting on a page condition, and logging in on the page.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
QUIET_FLAGS = [*FLAGS, "--disable-quic", "--disable-component-update", "--disable-sync"]

# ``pytestmark = BROWSER_MARKS`` in a test module: marked ``browser`` and skipped without chromium.
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="Debian chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
    ),
]


def chrome(
    flags: Sequence[str] = FLAGS,
    window: str = "1400,1400",
    script_timeout: float | None = None,
    browser_log: bool = False,
) -> Iterator[Any]:
    """Yield a headless Chrome driver with its own temporary profile; quit it and remove the profile after.

    Meant for ``yield from chrome(...)`` inside a pytest fixture.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in flags:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="crisiswatch-chrome-")
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={window}")
    options.binary_location = CHROMIUM
    if browser_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    if script_timeout is not None:
        driver.set_script_timeout(script_timeout)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


async def in_thread(work: Callable[[], Any]) -> Any:
    """Run blocking selenium work off the event loop (the web server under test runs on it)."""
    return await asyncio.get_running_loop().run_in_executor(None, work)


def waiter(driver: Any, timeout: float, poll: float = 0.1) -> Callable[..., Any]:
    """A ``wait(condition, timeout=...)`` for ``driver``: polls ``condition(driver)`` until it is truthy."""
    from selenium.webdriver.support.ui import WebDriverWait

    def wait(condition: Callable[[Any], Any], timeout: float = timeout) -> Any:
        return WebDriverWait(driver, timeout, poll_frequency=poll).until(condition)

    return wait


def log_in_on_page(
    driver: Any, wait: Callable[..., Any], url: str, user: str, password: str, loaded: bool = True
) -> None:
    """Open the page at ``url`` and sign in; with ``loaded``, wait until the page has loaded its data."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait(lambda d: d.find_element(By.ID, "username").is_displayed())
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-button").click()
    if loaded:
        wait(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "1")

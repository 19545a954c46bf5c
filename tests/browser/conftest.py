"""The playground's page in a real headless Chromium: Debian's ``chromium`` and ``chromedriver``, driven by Selenium.

Each test gets a playground of its own (the local Discord, the real bot, the seeded community, the page's server)
on an event loop in a background thread, so the test, which drives the browser synchronously, can also act on
the local Discord and read it (``live.run``, ``live.call``). Every test saves a screenshot in ``tmp/artifacts``.

Without Chromium the tests skip, saying how to install it; under CI (the ``CI`` variable set) they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from playground.session import Playground
from playground.web import PlaygroundPage

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tmp" / "artifacts"
INSTALL = "apt-get install -y chromium chromium-driver fonts-noto-cjk"
MONDAY_MORNING = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)   # 09:00 in Tokyo
T = TypeVar("T")


def _first(*candidates: str | None) -> str | None:
    return next((c for c in candidates if c and os.path.exists(c)), None)


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why}; CI runs the browser tests, never skips them", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def driver() -> Iterator[Any]:
    chromium = _first("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
    chromedriver = _first("/usr/bin/chromedriver", shutil.which("chromedriver"))
    if chromium is None or chromedriver is None:
        _unavailable(f"Chromium and its driver are not installed (as root: {INSTALL})")
    try:
        from selenium import webdriver
    except ImportError:
        _unavailable("Selenium is not installed: .venv/bin/pip install -e '.[test]'")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1440,900", "--lang=en-US", "--hide-scrollbars"):
        options.add_argument(argument)
    # The driver is given, so Selenium downloads nothing.
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
    browser.set_page_load_timeout(30)
    yield browser
    browser.quit()


class LivePlayground:
    """A playground and its page served on 127.0.0.1, running on a loop in a thread of its own."""

    def __init__(self, database: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="playground", daemon=True)
        self._thread.start()
        self.playground: Playground = self.run(Playground.start(database, now=MONDAY_MORNING), timeout=90)
        self.url = self.run(self._serve())

    async def _serve(self) -> str:
        from aiohttp import web

        self.page = PlaygroundPage(self.playground)
        self._runner = web.AppRunner(self.page.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.page.allowed_hosts = {f"127.0.0.1:{port}"}
        return f"http://127.0.0.1:{port}/"

    def run(self, work: Awaitable[T], timeout: float = 60) -> T:
        """Run a coroutine on the playground's loop and wait for its result."""
        async def wrapped() -> T:
            return await work

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout)

    def call(self, read: Callable[[], T]) -> T:
        """Read the local Discord on its own loop (never while it is changing it)."""
        async def wrapped() -> T:
            return read()

        return self.run(wrapped())

    def close(self) -> None:
        async def stop() -> None:
            self.page.close()
            await self._runner.cleanup()
            await self.playground.stop()
            # What discord.py leaves waiting (the timeouts of views and forms) ends with the loop.
            left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)

        try:
            self.run(stop(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LivePlayground]:
    playground = LivePlayground(tmp_path / "playground.db")
    try:
        yield playground
    finally:
        playground.close()


@pytest.fixture
def page(driver: Any, live: LivePlayground, request: pytest.FixtureRequest) -> Iterator[Any]:
    from tests.browser.pages import Page

    opened = Page(driver, live)
    opened.open()
    try:
        yield opened
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / f"{request.node.name}.png"))

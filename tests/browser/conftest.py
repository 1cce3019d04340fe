"""Debian's Chromium driven by Playwright, against a real server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright

from tests.support.servers import Database, Server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling hosts a closed network refuses.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.browser


# Module-scoped, not session-scoped: Playwright's sync API keeps an asyncio loop running while it
# is open, and the anyio tests that run after the browser tests cannot start theirs until it ends.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[Server]:
    db = Database("sqlite", tmp_path)
    srv = Server(data_dir=tmp_path, database_url=db.url).start()
    srv.create_user("casey@vendor.example", "Casey Vendor", PASSWORD)
    srv.create_user("robin@customer.example", "Robin Customer", PASSWORD)
    yield srv
    srv.stop()


def sign_in(browser: Browser, base: str, email: str) -> BrowserContext:
    """A fresh browser context signed in through the real sign-in form."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    page.close()
    return context

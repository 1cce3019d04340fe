"""Debian's Chromium driven by Playwright, against a real server."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

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
# Generous: these wait for a condition, and a loaded CI machine can take seconds to get there.
expect.set_options(timeout=15_000)


# Module scope, not session: Playwright's sync API keeps an event loop running in the main
# thread while it is open, which breaks every asyncio test collected after the browser tests.
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
    db = Database("sqlite", tmp_path, at_head=True)
    srv = Server(data_dir=tmp_path, database_url=db.url).start()
    srv.create_user("casey@vendor.example", "Casey Vendor", PASSWORD)
    # A customer person: a guest, so the Share page may add them to the customer side.
    done = srv.cli(
        "users",
        "create",
        "robin@customer.example",
        "--name",
        "Robin Customer",
        "--guest",
        stdin=PASSWORD + "\n",
    )
    assert done.returncode == 0, done.stderr
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


def add_member(
    owner: Page,
    member: Page,
    plan_id: str,
    email: str,
    *,
    owner_base: str,
    member_base: str,
    role: str = "editor",
    side: str = "customer",
) -> None:
    """The owner invites ``email`` on the Share page; the member opens the link and joins."""
    owner.goto(f"{owner_base}/plans/{plan_id}/share")
    owner.fill("#invite-email", email)
    owner.select_option("#invite-role", role)
    owner.select_option("#invite-side", side)
    owner.click("#invite button[type=submit]")
    url = owner.locator(f'tr[data-invite="{email}"] input.url').input_value()
    # The member accepts through their own browser context's cookies, without navigating their
    # page: the page's first visit stays the plan itself, as before plans became members-only.
    target = member_base + "/" + url.split("://", 1)[1].split("/", 1)[1]
    page = member.context.request.get(target)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text())
    assert page.ok and csrf, page.text()
    joined = member.context.request.post(target, form={"csrf": csrf.group(1)}, max_redirects=0)
    assert joined.status == 303 and joined.headers["location"] == f"/plans/{plan_id}"

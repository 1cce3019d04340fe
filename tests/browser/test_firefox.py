"""The editor in Firefox (Debian's firefox-esr), next to Chromium: a customer on Firefox joins
through an invitation, edits live with a vendor on Chromium, goes offline and comes back, and
finds the plan saved after a reload."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import PASSWORD, sign_in
from tests.browser.test_editor import create_plan_in_ui, editor_json, open_plan, type_at_end
from tests.support.firefox import Firefox, FirefoxPage
from tests.support.proxy import CuttableProxy
from tests.support.servers import Server

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
EDITOR = "#editor .ProseMirror"


@pytest.fixture(scope="module")
def firefox() -> Iterator[Firefox]:
    ff = Firefox()
    yield ff
    ff.close()


def js(value: str) -> str:
    return json.dumps(value)


def has_text(selector: str, text: str) -> str:
    """A JavaScript condition: the element's text contains ``text``."""
    return f"(document.querySelector({js(selector)})?.textContent || '').includes({js(text)})"


def invite_url(casey: Page, base: str, plan_id: str, email: str) -> str:
    """Casey invites ``email`` as a customer-side editor on the Share page; the link she gets."""
    casey.goto(f"{base}/plans/{plan_id}/share")
    casey.fill("#invite-email", email)
    casey.select_option("#invite-role", "editor")
    casey.select_option("#invite-side", "customer")
    casey.click("#invite button[type=submit]")
    return casey.locator(f'tr[data-invite="{email}"] input.url').input_value()


def join_by_invitation(page: FirefoxPage, url: str, name: str) -> str:
    """A newcomer opens the invitation in Firefox, creates an account and lands on the plan."""
    page.goto(url)
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    return page.click("form.form button[type=submit]", navigates=True)


def open_plan_ff(page: FirefoxPage, url: str) -> None:
    page.goto(url)
    page.wait_for("document.querySelector('#connection')?.dataset.state === 'connected'")
    page.wait_for("document.querySelector('#editor')?.dataset.synced === 'true'")


def type_at_end_ff(page: FirefoxPage, text: str) -> None:
    page.click(EDITOR)
    page.press("Control+End")
    page.press("Enter")
    page.type(text)


def ff_editor_json(page: FirefoxPage) -> object:
    return page.eval("window.tandem.editor.getJSON()")


def in_view(selector: str) -> str:
    """A JavaScript condition: the element is entirely inside the window."""
    return (
        f"(() => {{ const r = document.querySelector({js(selector)})?.getBoundingClientRect();"
        " return !!r && r.width > 0 && r.left >= 0 && r.top >= 0"
        " && r.right <= innerWidth && r.bottom <= innerHeight })()"
    )


def test_firefox_and_chromium_edit_one_plan_live(
    browser: Browser, firefox: Firefox, web_server: Server
) -> None:
    base = web_server.http
    casey = sign_in(browser, base, "casey@vendor.example").new_page()
    plan_id = create_plan_in_ui(casey, base, "Onboarding plan", "Sam's Co")
    url = invite_url(casey, base, plan_id, "sam@customer.example")

    sam = firefox.page("sam")
    assert join_by_invitation(sam, url, "Sam Customer") == f"{base}/plans/{plan_id}"
    open_plan_ff(sam, f"{base}/plans/{plan_id}")
    open_plan(casey, base, plan_id)

    type_at_end(casey, "Kick-off call on Monday")
    sam.wait_for(has_text(EDITOR, "Kick-off call on Monday"))  # see type_at_end
    type_at_end_ff(sam, "We will invite our IT lead")

    expect(casey.locator(EDITOR)).to_contain_text("We will invite our IT lead")
    sam.wait_for(has_text(EDITOR, "We will invite our IT lead"))
    # Each sees the other's caret, named by the server, and the other in the presence strip.
    expect(casey.locator(".collaboration-carets__label", has_text="Sam Customer")).to_be_visible()
    sam.wait_for(has_text(".collaboration-carets__label", "Casey Vendor"))
    expect(casey.locator("#presence")).to_contain_text("Sam Customer")
    sam.wait_for(has_text("#presence", "Casey Vendor"))
    assert editor_json(casey) == ff_editor_json(sam)

    # Formatting typed in Firefox reaches Chromium as marks, not as literal characters.
    sam.press("Enter")
    sam.press("Control+b")
    sam.type("Go-live by March")
    expect(casey.locator(f"{EDITOR} strong", has_text="Go-live by March")).to_be_visible()

    # The top bar keeps the account menu, who is here and the connection in the window.
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1440, 1100, 760):
        sam.set_viewport(width, 800)
        for selector in ("#presence", "#connection", ".account button"):
            sam.wait_for(in_view(selector), timeout_ms=5_000)
        sam.screenshot(ARTIFACTS / f"firefox-sam-{width}.png")

    # A reload in Firefox shows the saved plan, and the server has it as Markdown.
    open_plan_ff(sam, f"{base}/plans/{plan_id}")
    sam.wait_for(has_text(EDITOR, "We will invite our IT lead"))
    md = casey.request.get(f"{base}/api/plans/{plan_id}/document?format=markdown").text()
    assert "We will invite our IT lead" in md
    assert "**Go-live by March**" in md


def test_firefox_offline_edits_merge_when_the_connection_returns(
    browser: Browser, firefox: Firefox, web_server: Server
) -> None:
    base = web_server.http
    proxy = CuttableProxy(web_server.port)
    try:
        casey = sign_in(browser, base, "casey@vendor.example").new_page()
        plan_id = create_plan_in_ui(casey, base, "Renewal plan", "Sam's Co")
        url = invite_url(casey, base, plan_id, "sam@customer.example")
        # Sam reaches the server through a link the test can cut: a real network outage.
        url = proxy.http + "/" + url.split("://", 1)[1].split("/", 1)[1]
        sam = firefox.page("sam-offline")
        assert join_by_invitation(sam, url, "Sam Customer") == f"{proxy.http}/plans/{plan_id}"
        open_plan_ff(sam, f"{proxy.http}/plans/{plan_id}")
        open_plan(casey, base, plan_id)
        type_at_end(casey, "Shared before the outage")
        sam.wait_for(has_text(EDITOR, "Shared before the outage"))

        proxy.cut()
        sam.wait_for("document.querySelector('#connection')?.dataset.state !== 'connected'")
        type_at_end_ff(sam, "Written while offline")
        sam.wait_for(has_text("#connection", "unsent"))
        type_at_end(casey, "Written online meanwhile")
        expect(casey.locator(EDITOR)).not_to_contain_text("Written while offline")

        proxy.restore()
        sam.wait_for(
            "document.querySelector('#connection')?.dataset.state === 'connected'",
            timeout_ms=30_000,
        )
        expect(casey.locator(EDITOR)).to_contain_text("Written while offline")
        sam.wait_for(has_text(EDITOR, "Written online meanwhile"))
        assert editor_json(casey) == ff_editor_json(sam)
    finally:
        proxy.close()

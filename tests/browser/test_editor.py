"""Two people in two browsers editing one plan: live text, named carets, offline and reload."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import add_member, sign_in
from tests.support.proxy import CuttableProxy
from tests.support.servers import Server

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def create_plan_in_ui(page: Page, base: str, title: str, customer: str) -> str:
    page.goto(f"{base}/")
    page.fill("#title", title)
    page.fill("#customer", customer)
    page.click("form.form button[type=submit]")
    page.wait_for_url(f"{base}/plans/*")
    return page.url.rsplit("/", 1)[1]


def open_plan(page: Page, base: str, plan_id: str) -> None:
    page.goto(f"{base}/plans/{plan_id}")
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    expect(page.locator("#editor")).to_have_attribute("data-synced", "true")


def type_at_end(page: Page, text: str) -> None:
    # Put the caret at the end through the editor, not with a click and Ctrl+End: ProseMirror
    # restores a clicked position shortly after focus, which could undo the Ctrl+End and send the
    # text into whatever the click landed on.
    # Asked again until it holds: another person's paragraph arriving just after the first ask
    # moves the end of the document away from the caret.
    # A caller whose page is receiving someone else's typing waits until it shows their words
    # first, as a person would: a caret stays to the left of text another person types at it
    # (y-tiptap anchors it to the character before it), so an Enter pressed while their words
    # are still arriving splits them, and Yjs then has their next words follow the first half.
    page.wait_for_function(
        "() => { const e = window.tandem.editor, s = e.state;"
        " const ready = s.selection.head === s.selection.constructor.atEnd(s.doc).head"
        " && document.activeElement.closest('#editor') !== null;"
        " if (!ready) e.commands.focus('end');"
        " return ready; }"
    )
    page.keyboard.press("Enter")
    page.keyboard.type(text, delay=10)


def editor_json(page: Page) -> object:
    # The document itself, not the DOM: remote carets are rendered inside the editor.
    return page.evaluate("window.tandem.editor.getJSON()")


def test_two_people_see_each_others_text_and_named_caret(
    browser: Browser, web_server: Server
) -> None:
    base = web_server.http
    casey = sign_in(browser, base, "casey@vendor.example").new_page()
    robin = sign_in(browser, base, "robin@customer.example").new_page()
    plan_id = create_plan_in_ui(casey, base, "Onboarding plan", "Robin's Co")
    add_member(casey, robin, plan_id, "robin@customer.example", owner_base=base, member_base=base)
    open_plan(casey, base, plan_id)
    open_plan(robin, base, plan_id)

    type_at_end(casey, "Kick-off call on Monday")
    expect(robin.locator("#editor .ProseMirror")).to_contain_text("Kick-off call on Monday")
    type_at_end(robin, "We will invite our IT lead")

    for page in (casey, robin):
        expect(page.locator("#editor .ProseMirror")).to_contain_text("Kick-off call on Monday")
        expect(page.locator("#editor .ProseMirror")).to_contain_text("We will invite our IT lead")
    # Each sees the other's caret, labelled with the other's (server-known) name.
    expect(casey.locator(".collaboration-carets__label", has_text="Robin Customer")).to_be_visible()
    expect(robin.locator(".collaboration-carets__label", has_text="Casey Vendor")).to_be_visible()
    # And each is listed in the other's presence strip.
    expect(casey.locator("#presence")).to_contain_text("Robin Customer")
    expect(robin.locator("#presence")).to_contain_text("Casey Vendor")

    # Casey opens the plan in a second tab: still one Casey in everyone's strip, in two tabs.
    casey_tab = casey.context.new_page()
    open_plan(casey_tab, base, plan_id)
    casey_tab.locator("#editor .ProseMirror").click()
    expect(robin.locator(".collaboration-carets__label", has_text="Casey Vendor")).to_have_count(2)
    for page in (robin, casey, casey_tab):
        strip = page.locator("#presence .presence-person")
        expect(strip).to_have_count(2)
        expect(strip.filter(has_text="Casey Vendor")).to_have_attribute("data-tabs", "2")
    expect(casey_tab.locator('#presence [data-self="true"]')).to_contain_text("Casey Vendor")
    casey_tab.close()
    expect(robin.locator('#presence [data-name="Casey Vendor"]')).to_have_attribute(
        "data-tabs", "1"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    casey.screenshot(path=str(ARTIFACTS / "two-people-casey.png"))

    # However wide the window, the top bar keeps the account menu and who is here inside it:
    # names give way to avatars, and narrower still, who is here moves to a second row.
    for width in (1440, 1280, 1100, 900, 760, 390):
        casey.set_viewport_size({"width": width, "height": 800})
        expect(casey.get_by_role("button", name="Sign out")).to_be_in_viewport(ratio=1)
        expect(casey.locator("#presence")).to_be_in_viewport(ratio=1)
        expect(casey.locator("#connection")).to_be_in_viewport(ratio=1)
        # Never wider than the window once the strip has fitted itself (names give way to
        # avatars as it measures): on a phone the tabs scroll in their own row instead.
        casey.wait_for_function("document.documentElement.scrollWidth <= innerWidth")
        # The customer pill says enough to read ("Robin's Co" or most of it), or it steps
        # aside for the title; never a letter and an ellipsis.
        pill = casey.locator(".topbar .plan-customer")
        if pill.is_visible():
            assert (pill.bounding_box() or {"width": 0})["width"] >= 72, width
        casey.screenshot(path=str(ARTIFACTS / f"two-people-casey-{width}.png"))


def test_offline_edits_merge_when_the_connection_returns(
    browser: Browser, web_server: Server
) -> None:
    base = web_server.http
    proxy = CuttableProxy(web_server.port)
    try:
        casey = sign_in(browser, base, "casey@vendor.example").new_page()
        # Robin reaches the server through a link the test can cut: a real network outage.
        robin = sign_in(browser, proxy.http, "robin@customer.example").new_page()
        plan_id = create_plan_in_ui(casey, base, "Renewal plan", "Robin's Co")
        # Robin joins directly (cookies ignore the port), so the proxy carries the same traffic
        # as before plans became members-only.
        add_member(
            casey, robin, plan_id, "robin@customer.example", owner_base=base, member_base=base
        )
        open_plan(casey, base, plan_id)
        open_plan(robin, proxy.http, plan_id)
        type_at_end(casey, "Shared before the outage")
        expect(robin.locator("#editor .ProseMirror")).to_contain_text("Shared before the outage")

        proxy.cut()
        expect(robin.locator("#connection")).not_to_have_attribute("data-state", "connected")
        type_at_end(robin, "Written while offline")
        expect(robin.locator("#connection")).to_contain_text("unsent")
        type_at_end(casey, "Written online meanwhile")
        expect(casey.locator("#editor .ProseMirror")).not_to_contain_text("Written while offline")

        proxy.restore()
        expect(robin.locator("#connection")).to_have_attribute(
            "data-state", "connected", timeout=15_000
        )
        for page in (casey, robin):
            expect(page.locator("#editor .ProseMirror")).to_contain_text("Written while offline")
            expect(page.locator("#editor .ProseMirror")).to_contain_text("Written online meanwhile")
        assert editor_json(casey) == editor_json(robin)
    finally:
        proxy.close()


def test_reload_shows_the_saved_content(browser: Browser, web_server: Server) -> None:
    base = web_server.http
    page = sign_in(browser, base, "casey@vendor.example").new_page()
    plan_id = create_plan_in_ui(page, base, "QBR plan", "Acme")
    open_plan(page, base, plan_id)
    type_at_end(page, "Agreed: 90-day plan with owners")
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    page.reload()
    open_plan(page, base, plan_id)
    expect(page.locator("#editor .ProseMirror")).to_contain_text("Agreed: 90-day plan with owners")
    # The server agrees: the saved document, as Markdown.
    md = page.request.get(f"{base}/api/plans/{plan_id}/document?format=markdown").text()
    assert "Agreed: 90-day plan with owners" in md

"""Everyday layout in Chromium: a phone (390x844) and a wide window (1440x900) with two people in
a plan, and the plan, dashboard and history printed."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import add_member, sign_in
from tests.browser.test_editor import ARTIFACTS, open_plan, type_at_end
from tests.browser.test_plan_data import END_OF_TASK
from tests.support.servers import Server

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1440, "height": 900}
A4 = {"width": 703, "height": 1000}
FITS = "document.documentElement.scrollWidth <= innerWidth"

# Every word in the plan's tables on one line: a word broken over lines has line boxes at more
# than one height. Returns the broken words.
BROKEN_WORDS = """() => {
  const broken = []
  for (const cell of document.querySelectorAll('.tandem-doc td, .tandem-doc th')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT)
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange()
        range.setStart(node, m.index)
        range.setEnd(node, m.index + m[0].length)
        const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)))
        if (tops.size > 1) broken.push(m[0])
      }
    }
  }
  return broken
}"""


@dataclass
class Plan:
    base: str
    id: str
    casey: Page
    robin: Page


def plan_with_two_people(browser: Browser, server: Server, customer: str) -> Plan:
    """Casey's plan from the onboarding template, Robin a customer-side member, both in it, and
    an invitation still pending (so Share lists an invitation link)."""
    base = server.http
    casey = sign_in(browser, base, "casey@vendor.example").new_page()
    robin = sign_in(browser, base, "robin@customer.example").new_page()
    casey.goto(f"{base}/")
    casey.fill("#title", "Onboarding 2027 for the whole company")
    casey.fill("#customer", customer)
    casey.select_option("#template", "onboarding-roadmap")
    casey.click("form.form button[type=submit]")
    casey.wait_for_url(f"{base}/plans/*")
    plan_id = casey.url.rsplit("/", 1)[1]
    add_member(casey, robin, plan_id, "robin@customer.example", owner_base=base, member_base=base)
    casey.fill("#invite-email", "dana.longname@customer-company.example")
    casey.click("#invite button[type=submit]")
    open_plan(casey, base, plan_id)
    open_plan(robin, base, plan_id)
    # A change, so the history has rows; and Robin's caret is in the document.
    type_at_end(robin, "Robin was here")
    expect(casey.locator("#editor .ProseMirror")).to_contain_text("Robin was here")
    expect(casey.locator("#presence .presence-person")).to_have_count(2)
    return Plan(base, plan_id, casey, robin)


# The element's box, after scrolling the page (only the page, only down) to bring it into view;
# and whether any box around it has been scrolled sideways to show it.
BOX_IN_PAGE = """(e) => {
  const top = e.getBoundingClientRect().top
  window.scrollBy(0, top - innerHeight / 3)
  const r = e.getBoundingClientRect()
  let sideways = false
  for (let p = e.parentElement; p; p = p.parentElement) {
    const scrolls = getComputedStyle(p).overflowX !== 'visible'
    if (p.scrollLeft > 0 || (scrolls && p.scrollWidth > p.clientWidth + 1)) sideways = true
  }
  return { left: r.left, right: r.right, sideways }
}"""


class Problems(list[str]):
    """Every defect found on the way, reported together (each page is its own story)."""

    def check(self, ok: object, what: str) -> None:
        if not ok:
            self.append(what)

    def expect(self, what: str, assertion: object) -> None:
        try:
            assertion()  # type: ignore[operator]
        except AssertionError as e:
            self.append(f"{what}: {str(e).splitlines()[0]}")

    def fits(self, page: Page, what: str) -> None:
        width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        self.check(width[0] <= width[1], f"{what}: page is {width[0]} px wide in {width[1]}")

    def on_screen(self, page: Page, target: Locator, what: str) -> None:
        """``target`` is wholly inside the window's width, with no sideways scrolling."""
        box = target.evaluate(BOX_IN_PAGE)
        width = page.evaluate("innerWidth")
        inside = box["left"] >= 0 and box["right"] <= width + 0.5 and not box["sideways"]
        self.check(inside, f"{what}: {box} in {width} px")


def test_on_a_phone_no_page_is_wider_than_the_screen_and_its_controls_are_in_reach(
    browser: Browser, web_server: Server
) -> None:
    plan = plan_with_two_people(browser, web_server, "Globex")
    base, page = plan.base, plan.casey
    page.set_viewport_size(PHONE)
    ARTIFACTS.mkdir(exist_ok=True)
    problems = Problems()

    # The plan list: every column of a row is on the screen.
    page.goto(f"{base}/")
    problems.fits(page, "plan list")
    cells = page.locator(".plan-list table tbody tr").first.locator("td")
    for i in range(cells.count()):
        problems.on_screen(page, cells.nth(i), f"plan list column {i + 1}")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "phone-plans.png"))

    # The editor: the whole toolbar, Insert and undo included, is in view without scrolling it,
    # and the plan's tables keep their words whole.
    open_plan(page, base, plan.id)
    page.wait_for_function(FITS)
    for action in ("insert-section", "undo", "redo", "bold"):
        button = page.locator(f'.toolbar [data-action="{action}"]')
        problems.expect(f"toolbar {action}", lambda b=button: expect(b).to_be_in_viewport(ratio=1))
    page.locator(".tandem-doc table").first.scroll_into_view_if_needed()
    broken = page.evaluate(BROKEN_WORDS)
    problems.check(broken == [], f"words broken in plan tables: {broken[:5]}")
    page.screenshot(path=str(ARTIFACTS / "phone-editor-table.png"))
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "phone-editor.png"))

    # The history: each change on the screen, not a table running past its edge.
    page.goto(f"{base}/plans/{plan.id}/history")
    problems.fits(page, "history")
    rows = page.locator("table.history tbody tr")
    for r in range(3):
        cells = rows.nth(r).locator("td")
        for i in range(cells.count()):
            problems.on_screen(page, cells.nth(i), f"history row {r + 1} column {i + 1}")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "phone-history.png"))

    page.goto(f"{base}/plans/{plan.id}/dashboard")
    problems.fits(page, "dashboard")
    page.screenshot(path=str(ARTIFACTS / "phone-dashboard.png"))

    # Share: the side selectors and the invitation link are on the screen.
    page.goto(f"{base}/plans/{plan.id}/share")
    problems.fits(page, "share")
    robin = page.locator('tr[data-member="robin@customer.example"]')
    for what, target in (
        ("invite side", page.locator("#invite-side")),
        ("member side", robin.locator("select[name=side]")),
        ("remove member", robin.locator("button", has_text="Remove")),
        ("invitation link", page.locator("tr[data-invite] input.url")),
    ):
        problems.on_screen(page, target, f"share: {what}")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "phone-share.png"))

    # The internal plan: its badge is whole, in view, and clear of Sign out.
    page.goto(f"{base}/plans/{plan.id}/internal")
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    problems.fits(page, "internal plan")
    badge = page.locator("#internal-badge")
    sign_out = page.get_by_role("button", name="Sign out")
    problems.expect("badge", lambda: expect(badge).to_be_in_viewport(ratio=1))
    problems.expect("sign out", lambda: expect(sign_out).to_be_in_viewport(ratio=1))
    problems.check(badge.evaluate("e => e.scrollWidth <= e.clientWidth"), "badge truncated")
    a, b = badge.bounding_box(), sign_out.bounding_box()
    assert a and b
    apart = a["x"] + a["width"] <= b["x"] or a["y"] >= b["y"] + b["height"]
    problems.check(apart, f"badge {a} under Sign out {b}")
    page.screenshot(path=str(ARTIFACTS / "phone-internal.png"))

    assert problems == [], "\n".join(problems)


def test_a_wide_window_shows_the_customer_beside_the_title_with_two_people_present(
    browser: Browser, web_server: Server
) -> None:
    plan = plan_with_two_people(browser, web_server, "Northwind Traders")
    for page in (plan.casey, plan.robin):
        page.set_viewport_size(WIDE)
        page.wait_for_function(FITS)
        pill = page.locator(".topbar .plan-customer")
        expect(pill).to_be_visible()
        expect(pill).to_have_text("Northwind Traders")
        assert pill.evaluate("e => e.scrollWidth <= e.clientWidth"), "customer name truncated"
        expect(pill).to_be_in_viewport(ratio=1)
        expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport(ratio=1)
        expect(page.locator("#presence .presence-person")).to_have_count(2)
        # The title still reads as more than a stub.
        title = page.locator(".topbar .plan-title").bounding_box()
        assert title and title["width"] >= 120, title
    plan.casey.screenshot(path=str(ARTIFACTS / "wide-editor-two-people.png"))


# The open due-date list and the line being typed (the caret's line box), in window coordinates.
DUE_LIST_AND_LINE = """() => {
  const list = document.querySelector('.due-suggest:not([hidden])')
  const line = window.getSelection().getRangeAt(0).getBoundingClientRect()
  const box = list && list.getBoundingClientRect()
  const clear = !!box && (box.top >= line.bottom || box.bottom <= line.top) &&
    box.top >= 0 && box.bottom <= innerHeight
  return { clear, list: box && box.toJSON(), line: line.toJSON(), height: innerHeight }
}"""


def test_the_due_date_list_never_covers_the_line_being_typed(
    browser: Browser, web_server: Server
) -> None:
    base = web_server.http
    page = sign_in(browser, base, "casey@vendor.example").new_page()
    page.goto(f"{base}/")
    page.fill("#title", "Onboarding")
    page.fill("#customer", "Globex")
    page.select_option("#template", "onboarding-roadmap")
    page.click("form.form button[type=submit]")
    page.wait_for_url(f"{base}/plans/*")
    page.set_viewport_size(PHONE)
    open_plan(page, base, page.url.rsplit("/", 1)[1])

    start = "Walk through this roadmap"
    task = page.locator("#editor li[data-checked]", has_text=start)
    task.evaluate("e => e.scrollIntoView({ block: 'center' })")
    task.click()
    page.evaluate(END_OF_TASK, start)
    page.keyboard.press("Enter")
    page.keyboard.type("Call the bank due:", delay=15)
    expect(page.locator(".due-suggest")).to_be_visible()

    def clear_of_the_line(what: str) -> None:
        # The list moves on the scroll event, a frame after the scroll: wait for it.
        try:
            page.wait_for_function(f"() => ({DUE_LIST_AND_LINE})().clear", timeout=5_000)
        except PlaywrightTimeout:
            pytest.fail(f"{what}: {page.evaluate(DUE_LIST_AND_LINE)}")

    clear_of_the_line("as it opens")
    page.screenshot(path=str(ARTIFACTS / "phone-due-list.png"))
    # The page scrolls under the open list, as a phone's does when its keyboard comes up.
    for dy in (-160, 240, -120):
        page.evaluate("dy => window.scrollBy(0, dy)", dy)
        clear_of_the_line(f"after scrolling {dy}px")
    # A window shortened by the keyboard: the list fits in what is left, scrolling inside.
    page.set_viewport_size({"width": 390, "height": 380})
    page.evaluate(
        "() => { const r = window.getSelection().getRangeAt(0).getBoundingClientRect();"
        " window.scrollBy(0, r.top - innerHeight / 2) }"
    )
    clear_of_the_line("in a short window")
    page.screenshot(path=str(ARTIFACTS / "phone-due-list-short.png"))


def test_printing_leaves_out_toolbars_tabs_and_carets(browser: Browser, web_server: Server) -> None:
    plan = plan_with_two_people(browser, web_server, "Globex")
    base, page = plan.base, plan.casey
    # Robin's caret is in Casey's document on screen...
    caret = page.locator(".collaboration-carets__label", has_text="Robin Customer")
    expect(caret).to_be_visible()
    # An A4 page less its margins is about 700 CSS px: as narrow as the screen rules for phones.
    page.set_viewport_size(A4)
    page.emulate_media(media="print")
    # ...and not on paper, nor the toolbar, the tabs, who is here or Sign out.
    for hidden in (
        caret,
        page.locator(".collaboration-carets__caret"),
        page.locator("#toolbar"),
        page.locator(".topbar .plan-nav"),
        page.locator("#presence"),
        page.locator("#connection"),
        page.get_by_role("button", name="Sign out"),
    ):
        expect(hidden.first).to_be_hidden()
    expect(page.locator(".topbar .plan-title")).to_be_visible()
    expect(page.locator(".topbar .plan-customer")).to_have_text("Globex")
    expect(page.locator(".topbar .plan-customer")).to_be_visible()
    expect(page.locator("#editor .ProseMirror")).to_contain_text("Robin was here")
    page.screenshot(path=str(ARTIFACTS / "print-editor.png"), full_page=True)
    page.pdf(path=str(ARTIFACTS / "print-editor.pdf"), format="A4")

    for tab in ("dashboard", "history"):
        page.goto(f"{base}/plans/{plan.id}/{tab}")
        for hidden in (
            page.locator(".topbar .plan-nav"),
            page.get_by_role("button", name="Sign out"),
            page.locator("form").first,
        ):
            expect(hidden).to_be_hidden()
        expect(page.locator(".topbar .plan-title")).to_be_visible()
        expect(page.locator(".topbar .plan-customer")).to_be_visible()
        expect(page.locator(".card").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / f"print-{tab}.png"), full_page=True)
        page.pdf(path=str(ARTIFACTS / f"print-{tab}.pdf"), format="A4")
    expect(page.locator("table.history")).to_be_visible()

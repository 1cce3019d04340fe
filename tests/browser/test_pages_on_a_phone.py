"""Every server-rendered page a person reaches, on a phone (390x844), with names that have no
space to break at: user content never makes a page wider than the screen, and cards are spaced
once (screenshots at 390 and 1440 in test-artifacts/ to look at)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.browser.conftest import PASSWORD, sign_in
from tests.browser.test_editor import ARTIFACTS
from tests.browser.test_layout import PHONE, WIDE
from tests.support.servers import Database, Server

pytestmark = pytest.mark.browser

# Sixty characters and not one place to break a line.
TITLE = "Onboarding2027GlobexInternationalHoldingsWorldwideRolloutPla"
CUSTOMER = "GlobexInternationalHoldingsAndSubsidiariesOfTheNorthernHemis"
PERSON = "Maximiliana-Konstantinopoulou-Wolfeschlegelsteinhausenberger"
EMAIL = "maximiliana.konstantinopoulou-wolfeschlegelstein@customer-company.example"

# Cards spaced by both a grid's gap and ``.card + .card``'s margin: the gaps between cards
# that are siblings in a grid or flex container whose gap is not zero, yet have a top margin.
DOUBLED = """() => [...document.querySelectorAll('.card + .card')].filter((card) => {
  const parent = getComputedStyle(card.parentElement)
  const gap = parseFloat(parent.rowGap) || 0
  const margin = parseFloat(getComputedStyle(card).marginTop)
  return /grid|flex/.test(parent.display) && gap > 0 && margin > 0
}).map((card) => card.id || card.className)"""

# Visible buttons, links styled as buttons, fields and selects less than 32 px high (not the
# document's own task chips and check boxes, which are the editor's).
SMALL = """() => [...document.querySelectorAll(
  'main button, main .btn, main select,'
  + 'main input:not([type=hidden]):not([type=checkbox]):not([type=radio])'
)].filter((e) => {
  const r = e.getBoundingClientRect()
  return r.width > 0 && r.height > 0 && r.height < 32 && !e.closest('#editor')
}).map((e) => e.id || e.name || e.textContent.trim().slice(0, 30))"""

# Text and email fields in a row of fields that take less than their card's content width (the
# input's default 20 characters, where a phone has room for the whole width).
NARROW = """() => [...document.querySelectorAll(
  '.grid-form input[type=text], .grid-form input[type=email]'
)].filter((input) => {
  const card = input.closest('.card')
  const style = getComputedStyle(card)
  const inner = card.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight)
  return input.getBoundingClientRect().width < 0.99 * inner
}).map((input) => input.id || input.name)"""

# Cards something sticks out of (a table or a word wider than the card, even where the page is
# wide enough to hold it).
SPILLED = """() => [...document.querySelectorAll('.card')]
  .filter((card) => card.scrollWidth > card.clientWidth + 1)
  .map((card) => card.id || card.className)"""


@dataclass
class World:
    base: str
    plan_id: str
    casey: BrowserContext
    stranger: BrowserContext
    # Page name -> (address, signed in?).
    pages: dict[str, tuple[str, bool]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One server and one plan from a template, every name in it a long word; Casey signed in
    and a stranger (not signed in) for the pages reached from a link."""
    tmp: Path = tmp_path_factory.mktemp("pages")
    db = Database("sqlite", tmp, at_head=True)
    srv = Server(data_dir=tmp, database_url=db.url).start()
    srv.create_user("casey@vendor.example", "Casey Vendor", PASSWORD)
    base = srv.http
    casey = sign_in(browser, base, "casey@vendor.example")
    page = casey.new_page()
    page.goto(f"{base}/")
    page.fill("#title", TITLE)
    page.fill("#customer", CUSTOMER)
    page.select_option("#template", "onboarding-roadmap")
    page.click("form.form button[type=submit]")
    page.wait_for_url(f"{base}/plans/*")
    plan_id = page.url.rsplit("/", 1)[1]

    # An invitation still pending, to a person with no account, and a share link with a label.
    page.goto(f"{base}/plans/{plan_id}/share")
    page.fill("#invite-email", EMAIL)
    page.click("#invite button[type=submit]")
    invite = page.locator(f'tr[data-invite="{EMAIL}"] input.url').input_value()
    page.fill("#link-label", PERSON)
    page.click("#links button[type=submit]")
    link = page.locator("#link-list input.url").first.input_value()
    # A staff member invited by name: their invitation is a password-reset link.
    page.goto(f"{base}/workspace/people")
    page.fill("#staff-email", "sam." + EMAIL.replace("customer-company", "vendor"))
    page.fill("#staff-name", PERSON)
    page.click("#invite button[type=submit]")
    reset = page.locator('input[aria-label="Staff invitation link"]').input_value()
    page.close()

    stranger = browser.new_context()
    w = World(base, plan_id, casey, stranger)
    plan = f"/plans/{plan_id}"
    w.pages = {
        "plans": ("/", True),
        "editor": (plan, True),
        "people": ("/workspace/people", True),
        "share": (f"{plan}/share", True),
        "settings": (f"{plan}/settings", True),
        "dashboard": (f"{plan}/dashboard", True),
        "history": (f"{plan}/history", True),
        "brief": (f"/api{plan}/brief?format=html", True),
        "notifications": ("/settings/notifications", True),
        "access-log": (f"{plan}/access", True),
        "not-found": ("/plans/no-such-plan", True),
        "invitation": ("/" + invite.split("://", 1)[1].split("/", 1)[1], False),
        "share-link": ("/" + link.split("://", 1)[1].split("/", 1)[1], False),
        "login": ("/login", False),
        "reset-request": ("/password-reset", False),
        "reset": ("/" + reset.split("://", 1)[1].split("/", 1)[1], False),
    }
    yield w
    stranger.close()
    casey.close()
    srv.stop()


PAGES = [
    "plans",
    "editor",
    "people",
    "share",
    "settings",
    "dashboard",
    "history",
    "brief",
    "notifications",
    "access-log",
    "not-found",
    "invitation",
    "share-link",
    "login",
    "reset-request",
    "reset",
]


@pytest.mark.parametrize("name", PAGES)
def test_no_page_is_wider_than_a_phone_or_spaces_its_cards_twice(world: World, name: str) -> None:
    path, signed_in = world.pages[name]
    page: Page = (world.casey if signed_in else world.stranger).new_page()
    try:
        page.set_viewport_size(PHONE)
        page.goto(world.base + path)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"page-{name}-390.png"), full_page=True)
        width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        doubled = page.evaluate(DOUBLED)
        small = page.evaluate(SMALL)
        narrow = page.evaluate(NARROW)
        spilled = page.evaluate(SPILLED)
        page.set_viewport_size(WIDE)
        page.screenshot(path=str(ARTIFACTS / f"page-{name}-1440.png"), full_page=True)
        wide = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        spilled_wide = page.evaluate(SPILLED)
    finally:
        page.close()
    assert width[0] <= width[1], f"{name}: {width[0]} px wide in {width[1]}"
    assert wide[0] <= wide[1], f"{name}, wide: {wide[0]} px wide in {wide[1]}"
    assert not doubled, f"{name}: cards spaced twice: {doubled}"
    assert not small, f"{name}: controls under 32 px high: {small}"
    assert not narrow, f"{name}: fields narrower than their card: {narrow}"
    assert not spilled, f"{name}: content wider than its card: {spilled}"
    assert not spilled_wide, f"{name}, wide: content wider than its card: {spilled_wide}"

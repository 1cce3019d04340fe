"""The plan settings page in Chromium, on a phone (390x844) and a wide window (1440x900): the
owner connects the plan to a Slack channel, sees it connected (the webhook masked), is told
beside the field why a bad URL was refused, and disconnects; and no form is cramped or wider
than the screen (screenshots in test-artifacts/ to look at)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import PASSWORD, sign_in
from tests.browser.test_editor import ARTIFACTS, create_plan_in_ui
from tests.browser.test_layout import PHONE, WIDE
from tests.support.servers import Database, Server

pytestmark = pytest.mark.browser

# Nothing is sent to it when connecting; listed so the guard lets a test address through.
WEBHOOK = "http://127.0.0.1:9/services/T000/B000/XXXXsecretpart"

# Each visible field of the page and how much of its card's content width it takes.
FIELD_SHARES = """() => [...document.querySelectorAll('.grid-form input:not([type=hidden])')]
  .map((input) => {
    const card = input.closest('.card')
    const style = getComputedStyle(card)
    const inner = card.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight)
    return [input.id, input.getBoundingClientRect().width / inner]
  })"""


@pytest.fixture
def slack_server(tmp_path: Path) -> Iterator[Server]:
    """``web_server``'s Casey, on a server whose guard lets 127.0.0.1 through."""
    db = Database("sqlite", tmp_path, at_head=True)
    srv = Server(data_dir=tmp_path, database_url=db.url)
    srv.extra_env["TANDEM_WEBHOOK_ALLOW_HOSTS"] = "127.0.0.1"
    srv.start()
    srv.create_user("casey@vendor.example", "Casey Vendor", PASSWORD)
    yield srv
    srv.stop()


def shot(page: Page, name: str) -> None:
    """The whole page, from the top (a form posted back to #slack leaves it scrolled, and a
    full-page shot would draw the sticky top bar over the middle)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def fits(page: Page, what: str) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], f"{what}: the page is {width[0]} px wide in {width[1]}"


def test_an_owner_connects_slack_is_told_why_a_url_is_refused_and_disconnects_on_a_phone(
    browser: Browser, slack_server: Server
) -> None:
    base = slack_server.http
    page = sign_in(browser, base, "casey@vendor.example").new_page()
    # A title with no space to break at: quoted in the heading and in Delete's label.
    title = "Onboarding_2027_Globex_International_Holdings"
    plan_id = create_plan_in_ui(page, base, title, "Globex")
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size(PHONE)
    page.goto(f"{base}/plans/{plan_id}/settings")
    fits(page, "settings")
    # Every field takes its card's width on a phone, its button on the line below.
    shares = page.evaluate(FIELD_SHARES)
    assert shares and all(share > 0.99 for _, share in shares), shares
    shot(page, "settings-390.png")
    state, field = page.locator("#slack-state"), page.locator("#slack-webhook")
    expect(state).to_contain_text("Not connected")

    # A private address: the guard's reason beside the field, the URL still in it.
    bad = "https://10.1.2.3/services/T000/B000/typed-by-hand"
    field.fill(bad)
    page.click("#slack-connect")
    error = page.locator("#webhook_url-error")
    expect(error).to_contain_text("10.1.2.3, a private address")
    expect(field).to_have_value(bad)
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_be_in_viewport()
    expect(state).to_contain_text("Not connected")
    fits(page, "settings with an error")
    shot(page, "settings-390-slack-error.png")

    # Connected: the host and a masked tail, never the whole URL.
    field.fill(WEBHOOK)
    page.click("#slack-connect")
    expect(state).to_contain_text("Connected")
    expect(page.locator("#slack-masked")).to_have_text("http://127.0.0.1/…part")
    expect(error).to_have_count(0)
    expect(field).to_have_value("")
    assert "XXXXsecretpart" not in page.content()
    expect(page.locator("#slack-connect")).to_have_text("Replace")
    fits(page, "settings, connected")
    shot(page, "settings-390-slack-connected.png")

    page.set_viewport_size(WIDE)
    fits(page, "settings, wide")
    shot(page, "settings-1440-slack-connected.png")

    page.click("#slack-disconnect")
    expect(state).to_contain_text("Not connected")
    expect(page.locator("#slack-disconnect")).to_have_count(0)
    page.context.close()

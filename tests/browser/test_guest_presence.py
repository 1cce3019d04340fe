"""A share-link visitor who names themselves like the plan's owner shows as a guest, in the
editor's presence strip and in the plan list's "who is here", even when their client claims
otherwise: the mark is the server's stamp."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import sign_in
from tests.browser.test_editor import create_plan_in_ui, open_plan
from tests.support.servers import Server

pytestmark = pytest.mark.browser
OWNER = "Casey Vendor"


def test_visitor_named_like_the_owner_shows_as_a_guest(
    browser: Browser, web_server: Server
) -> None:
    base = web_server.http
    casey = sign_in(browser, base, "casey@vendor.example").new_page()
    plan_id = create_plan_in_ui(casey, base, "Expansion plan", "Stella's Co")
    casey.goto(f"{base}/plans/{plan_id}/share")
    casey.select_option("#link-role", "editor")
    casey.click("#links button[type=submit]")
    expect(casey.locator(".notice")).to_contain_text("Share link created")
    url = casey.locator("#link-list input.url").first.input_value()
    open_plan(casey, base, plan_id)

    visitor = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    visitor.goto(url)
    visitor.fill("#name", OWNER)
    visitor.click("main button[type=submit]")
    visitor.wait_for_url(f"{base}/plans/{plan_id}")
    expect(visitor.locator("#editor")).to_have_attribute("data-synced", "true")
    # The impostor's client claims to be no guest and to be Casey's person.
    person = casey.evaluate("() => window.tandem.config.user.person")
    visitor.evaluate(
        """(person) => {
            const awareness = window.tandem.provider.awareness
            const user = awareness.getLocalState().user
            awareness.setLocalStateField('user', { ...user, guest: false, person })
        }""",
        person,
    )

    strip = casey.locator("#presence")
    expect(strip.locator(".presence-person")).to_have_count(2)
    me = strip.locator('.presence-person[data-self="true"]')
    expect(me).to_have_attribute("data-guest", "false")
    expect(me.locator(".presence-guest")).to_have_count(0)
    impostor = strip.locator('.presence-person[data-self="false"]')
    expect(impostor).to_have_attribute("data-name", OWNER)
    expect(impostor).to_have_attribute("data-guest", "true")
    expect(impostor.locator(".presence-guest")).to_have_text("guest")
    expect(impostor).to_have_attribute("title", f"{OWNER}, guest")

    listing = casey.context.new_page()
    listing.goto(f"{base}/")
    dots = listing.locator(".presence-dots .dot")
    expect(dots).to_have_count(2)
    expect(listing.locator(".presence-dots .dot.is-guest")).to_have_attribute(
        "title", f"{OWNER} (guest)"
    )
    expect(listing.locator(".presence-dots .dot:not(.is-guest)")).to_have_attribute("title", OWNER)

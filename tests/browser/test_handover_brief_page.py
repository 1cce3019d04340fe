"""The handover brief from the plan's top bar in Chromium: the button opens the page, the page
offers the Markdown and the PDF, and the downloads are the brief (screenshots in
test-artifacts/)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import sign_in
from tests.browser.test_editor import ARTIFACTS
from tests.support.servers import Server

pytestmark = pytest.mark.browser


def test_the_brief_button_opens_the_brief_with_its_downloads(
    browser: Browser, web_server: Server
) -> None:
    base = web_server.http
    context = sign_in(browser, base, "casey@vendor.example")
    page = context.new_page()
    page.goto(f"{base}/")
    page.fill("#title", "Globex rollout")
    page.fill("#customer", "Globex <Europe> & Co")
    page.select_option("#template", "joint-success-plan")
    page.click("form.form button[type=submit]")
    page.wait_for_url(f"{base}/plans/*")
    plan_id = page.url.rsplit("/", 1)[1]
    page.goto(f"{base}/plans/{plan_id}/history")

    page.click("#brief-link")
    page.wait_for_url(f"{base}/api/plans/{plan_id}/brief?format=html")
    expect(page.locator("h1.b-title")).to_have_text("Globex rollout")
    expect(page.locator(".b-sub")).to_contain_text("Globex <Europe> & Co")
    for section in ("Customer and key contacts", "Objectives", "Key results", "Milestones"):
        expect(page.locator(".b-section h2", has_text=section)).to_be_visible()
    # Casey is vendor side: her copy carries the (empty) internal plan, marked as such.
    expect(page.locator("#internal h2")).to_contain_text("Internal account plan")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "handover-brief.png"), full_page=True)

    with page.expect_download() as md:
        page.click("#brief-markdown")
    assert md.value.suggested_filename == "Handover brief - Globex rollout.md"
    assert md.value.path().read_text().startswith("# Handover brief: Globex rollout")
    with page.expect_download() as pdf:
        page.click("#brief-pdf")
    assert pdf.value.suggested_filename == "Handover brief - Globex rollout.pdf"
    assert pdf.value.path().read_bytes().startswith(b"%PDF-")

    # On a phone the page reads top to bottom, nothing wider than the screen but its tables.
    phone = context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.goto(f"{base}/api/plans/{plan_id}/brief?format=html")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.screenshot(path=str(ARTIFACTS / "handover-brief-phone.png"), full_page=True)
    context.close()

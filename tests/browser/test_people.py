"""The workspace owner's People page in Chromium: invite staff, deactivate a guest."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.browser.conftest import sign_in
from tests.support.servers import Server

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_owner_invites_staff_and_deactivates_a_guest(browser: Browser, web_server: Server) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    base = web_server.http
    robin = sign_in(browser, base, "robin@customer.example")
    robin_page = robin.new_page()
    robin_page.goto(f"{base}/")
    # A guest is offered no new plan, and no People page.
    expect(robin_page.locator("h1")).to_have_text("Success plans")
    expect(robin_page.get_by_text("New plan")).to_have_count(0)
    expect(robin_page.locator('a[href="/workspace/people"]')).to_have_count(0)

    casey = sign_in(browser, base, "casey@vendor.example").new_page()
    casey.goto(f"{base}/")
    casey.click('a[href="/workspace/people"]')
    row = casey.locator('tr[data-person="robin@customer.example"]')
    expect(row).to_contain_text("Guest")
    casey.fill("#staff-email", "sam@vendor.example")
    casey.fill("#staff-name", "Sam Staff")
    casey.click("#invite button[type=submit]")
    expect(casey.locator(".notice")).to_contain_text("Staff invitation sent")
    link = casey.locator('input[aria-label="Staff invitation link"]').input_value()
    assert "/password-reset/tdr_" in link
    expect(casey.locator('tr[data-person="sam@vendor.example"]')).to_contain_text("Staff")

    row.get_by_role("button", name="Deactivate Robin Customer").click()
    expect(casey.locator(".notice")).to_contain_text("Account deactivated")
    expect(row).to_contain_text("deactivated")
    casey.screenshot(path=str(ARTIFACTS / "people-page.png"), full_page=True)
    # Robin's session has ended: the next page asks her to sign in.
    robin_page.goto(f"{base}/")
    expect(robin_page).to_have_url(f"{base}/login?next=/")
    robin.close()

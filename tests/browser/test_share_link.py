"""A stakeholder opens a share link in a fresh browser: live, read-only, with presence; revoking
the link disconnects them; the internal plan is out of reach."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import sign_in
from tests.browser.test_editor import create_plan_in_ui, open_plan, type_at_end
from tests.support.servers import Server

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def internal_socket_close(page: Page, base: str, plan_id: str) -> int:
    ws = base.replace("http", "ws") + f"/ws/plans/{plan_id}/internal"
    return page.evaluate(
        """(url) => new Promise((resolve) => {
            const ws = new WebSocket(url)
            ws.onclose = (event) => resolve(event.code)
        })""",
        ws,
    )


def test_share_link_visitor_is_live_read_only_and_cut_off_on_revoke(
    browser: Browser, web_server: Server
) -> None:
    base = web_server.http
    ARTIFACTS.mkdir(exist_ok=True)
    casey = sign_in(browser, base, "casey@vendor.example").new_page()
    plan_id = create_plan_in_ui(casey, base, "Expansion plan", "Stella's Co")
    open_plan(casey, base, plan_id)
    type_at_end(casey, "Goal: 200 seats by March")

    # The vendor writes in the internal plan; the stakeholder must never see it.
    casey.click("#internal-link")
    expect(casey.locator("#editor")).to_have_attribute("data-synced", "true")
    type_at_end(casey, "Internal: budget is at risk")
    casey.screenshot(path=str(ARTIFACTS / "internal-plan.png"))
    # Whatever the width, the page says in full that it is the internal plan (the badge used
    # to truncate on a laptop and vanish below 960 px).
    badge = casey.locator("#internal-badge")
    for width in (1440, 1280, 1000, 760):
        casey.set_viewport_size({"width": width, "height": 800})
        expect(badge).to_be_in_viewport(ratio=1)
        assert badge.evaluate("e => e.scrollWidth <= e.clientWidth"), width
    casey.set_viewport_size({"width": 1280, "height": 900})
    casey.goto(f"{base}/plans/{plan_id}/share")
    casey.select_option("#link-role", "viewer")
    casey.fill("#link-label", "Steering committee")
    casey.click("#links button[type=submit]")
    expect(casey.locator(".notice")).to_contain_text("Share link created")
    url = casey.locator("#link-list input.url").first.input_value()
    casey.screenshot(path=str(ARTIFACTS / "share-page.png"), full_page=True)

    visitor_context = browser.new_context(viewport={"width": 1280, "height": 900})
    stella = visitor_context.new_page()
    stella.goto(url)
    stella.fill("#name", "Stella Stakeholder")
    stella.click("main button[type=submit]")
    stella.wait_for_url(f"{base}/plans/{plan_id}")
    expect(stella.locator("#connection")).to_have_attribute("data-state", "connected")
    expect(stella.locator("#editor")).to_have_attribute("data-synced", "true")
    expect(stella.locator("#editor .ProseMirror")).to_contain_text("Goal: 200 seats by March")
    expect(stella.locator("#editor")).to_have_attribute("data-editable", "false")
    expect(stella.locator("#read-only-badge")).to_be_visible()
    expect(stella.locator("#editor .ProseMirror")).to_have_attribute("contenteditable", "false")
    expect(stella.locator("#share-link")).to_have_count(0)
    expect(stella.locator("#internal-link")).to_have_count(0)

    # Live, with presence both ways.
    open_plan(casey, base, plan_id)
    type_at_end(casey, "Next review in April")
    expect(stella.locator("#editor .ProseMirror")).to_contain_text("Next review in April")
    expect(casey.locator("#presence")).to_contain_text("Stella Stakeholder")
    expect(stella.locator("#presence")).to_contain_text("Casey Vendor")
    stella.screenshot(path=str(ARTIFACTS / "share-link-visitor.png"))

    # The internal plan: not through any URL or socket from this context.
    assert "budget is at risk" not in stella.content()
    response = stella.goto(f"{base}/plans/{plan_id}/internal")
    assert response is not None and response.status == 404
    assert "budget is at risk" not in stella.content()
    assert internal_socket_close(stella, base, plan_id) == 4403
    for path in ("/internal/document", "/document?format=markdown"):
        body = stella.request.get(f"{base}/api/plans/{plan_id}{path}").text()
        assert "budget is at risk" not in body
    stella.goto(f"{base}/plans/{plan_id}")
    expect(stella.locator("#connection")).to_have_attribute("data-state", "connected")

    # Revoking the link ends the visit within seconds.
    casey.goto(f"{base}/plans/{plan_id}/share")
    casey.click("#link-list button:has-text('Revoke')")
    expect(casey.locator(".notice")).to_contain_text("Link revoked")
    expect(stella.locator("#connection")).to_have_attribute("data-state", "closed", timeout=5000)
    expect(stella.locator("#connection")).to_have_attribute("data-close-code", "4403")
    stella.screenshot(path=str(ARTIFACTS / "share-link-revoked.png"))
    stella.goto(url)
    expect(stella.locator("main")).to_contain_text("not valid any more")
    visitor_context.close()

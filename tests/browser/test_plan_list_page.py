"""The plan list and a plan's life cycle in Chromium: search, filter, archive then restore,
delete with the typed title; screenshots at 1440 and 390 px."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Browser, expect

from tests.browser.conftest import sign_in
from tests.support.servers import Server

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def make_plan(server: Server, token: str, title: str, customer: str, **extra: str) -> str:
    r = httpx.post(
        f"{server.http}/api/plans",
        json={"title": title, "customer": customer, **extra},
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_search_filter_archive_restore_delete(browser: Browser, web_server: Server) -> None:
    base = web_server.http
    token = web_server.create_token("casey@vendor.example")
    make_plan(web_server, token, "Alpha rollout", "Acme Corp", template="onboarding-roadmap")
    beta = make_plan(web_server, token, "Beta pilot", "Globex")
    gamma = make_plan(web_server, token, "Gamma renewal", "Initech")
    context = sign_in(browser, base, "casey@vendor.example")
    page = context.new_page()
    rows = page.locator("table.overview-table tbody tr")

    page.goto(f"{base}/")
    expect(rows).to_have_count(3)
    expect(rows.first.locator(".rag-chip")).to_be_visible()

    # Search: a plain GET form.
    page.fill("#list-q", "globex")
    page.click("#list-apply")
    expect(page).to_have_url(f"{base}/?q=globex&customer=&status=&archived=false&sort=updated")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Beta pilot")
    page.click("#list-clear")
    expect(rows).to_have_count(3)

    # Filter and sort.
    page.select_option("#list-sort", "title")
    page.click("#list-apply")
    expect(rows.first).to_contain_text("Alpha rollout")
    expect(rows.last).to_contain_text("Gamma renewal")
    page.select_option("#list-status", "red")
    page.click("#list-apply")
    expect(page.locator("#list-empty")).to_contain_text("No plan matches")
    page.goto(f"{base}/")

    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_function("document.documentElement.scrollWidth <= innerWidth")
        expect(page.locator("#list-apply")).to_be_in_viewport()
        page.screenshot(path=str(ARTIFACTS / f"plan-list-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    # Archive Beta from its settings: it leaves the list, and shows under Archived plans.
    page.click(f"tr[data-plan='{beta}'] a.ov-settings")
    expect(page).to_have_url(f"{base}/plans/{beta}/settings")
    page.click("#archive-plan")
    expect(page).to_have_url(f"{base}/")
    expect(rows).to_have_count(2)
    expect(page.locator(f"tr[data-plan='{beta}']")).to_have_count(0)
    page.select_option("#list-archived", "true")
    page.click("#list-apply")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Archived")

    # The archived plan opens read-only with a banner; Restore brings it back.
    page.click(f"tr[data-plan='{beta}'] td.ov-plan a >> nth=0")
    expect(page.locator("#archived-banner")).to_be_visible()
    expect(page.locator("#editor")).to_have_attribute("data-synced", "true")
    expect(page.locator("#editor")).to_have_attribute("data-editable", "false")
    page.screenshot(path=str(ARTIFACTS / "plan-archived-1280.png"))
    page.click("#restore-plan")
    expect(page).to_have_url(f"{base}/plans/{beta}")
    expect(page.locator("#archived-banner")).to_have_count(0)
    expect(page.locator("#editor")).to_have_attribute("data-editable", "true")

    # Delete Gamma: a wrong title is refused, the exact title deletes it.
    page.goto(f"{base}/plans/{gamma}/settings")
    page.set_viewport_size({"width": 390, "height": 900})
    page.wait_for_function("document.documentElement.scrollWidth <= innerWidth")
    page.screenshot(path=str(ARTIFACTS / "plan-settings-390.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.fill("#delete-confirm", "gamma")
    page.click("#delete-plan")
    expect(page.locator("#settings-error")).to_contain_text("type its title exactly")
    page.fill("#delete-confirm", "Gamma renewal")
    page.click("#delete-plan")
    expect(page).to_have_url(f"{base}/")
    expect(rows).to_have_count(2)
    expect(page.locator(f"tr[data-plan='{gamma}']")).to_have_count(0)
    assert page.goto(f"{base}/plans/{gamma}").status == 404
    context.close()

"""What a CSM meets in the first hour with a template plan: owners, sample data, small things.

Real server, real Chromium, at a desktop width and a phone's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import sign_in
from tests.browser.test_editor import editor_json, open_plan
from tests.browser.test_editor_structure import nodes
from tests.support.servers import Server

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WIDTHS = [(1440, 900), (390, 844)]


def create_from_template(page: Page, base: str, template: str) -> str:
    page.goto(f"{base}/")
    page.fill("#title", "Acme onboarding")
    page.fill("#customer", "Acme")
    page.select_option("#template", template)
    page.click("form.form button[type=submit]")
    page.wait_for_url(f"{base}/plans/*")
    return page.url.rsplit("/", 1)[1]


def task_owners(page: Page, text: str) -> list[str]:
    """The owner chips' labels of the first task whose text starts with ``text``."""
    for item in nodes(editor_json(page), "taskItem"):
        words = "".join(n.get("text", "") for n in nodes(item["content"][0], "text"))
        if words.startswith(text):
            return [m["attrs"]["label"] for m in nodes(item["content"][0], "mention")]
    raise AssertionError(f"no task {text!r}")


@pytest.mark.parametrize("size", WIDTHS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_choosing_an_owner_replaces_the_placeholder_and_the_chip_opens_the_menu(
    browser: Browser, web_server: Server, size: tuple[int, int]
) -> None:
    base = web_server.http
    context = sign_in(browser, base, "casey@vendor.example")
    page = context.new_page()
    page.set_viewport_size({"width": size[0], "height": size[1]})
    plan_id = create_from_template(page, base, "joint-success-plan")
    open_plan(page, base, plan_id)
    task = "Agree the key results"
    assert task_owners(page, task) == ["CSM"]

    # The toolbar's "Assign an owner" in a task that has one: the new owner takes its place.
    item = page.locator("#editor li.task-item", has_text=task)
    item.locator("p").click(position={"x": 4, "y": 4})
    page.keyboard.press("End")
    page.locator("#toolbar [data-action=task-owner]").click()
    page.keyboard.type("Casey", delay=20)
    expect(page.locator(".owner-suggest [role=option]").first).to_contain_text("Casey Vendor")
    page.keyboard.press("Enter")
    expect(item.locator(".mention")).to_have_count(1)
    assert task_owners(page, task) == ["Casey Vendor"]
    expect(item.locator(".mention")).to_have_text("@Casey Vendor")

    # A click on the chip opens the owner menu; a choice replaces the owner.
    item.locator(".mention").click()
    menu = page.locator("#owner-menu")
    expect(menu).to_be_visible()
    expect(menu.locator("[aria-checked=true]")).to_contain_text("Casey Vendor")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"owner-menu-{size[0]}.png"))
    menu.get_by_role("menuitemradio", name="Customer champion").click()
    expect(menu).to_have_count(0)
    expect(item.locator(".mention")).to_have_text("@Customer champion")
    assert task_owners(page, task) == ["Customer champion"]

    # The server reads the same one owner.
    def api_owner() -> str | None:
        rows = page.request.get(f"{base}/api/plans/{plan_id}/tasks").json()["tasks"]
        [row] = [t for t in rows if t["text"].startswith(task)]
        return (row["owner"] or {}).get("label")

    for _ in range(100):  # the projection follows the document a moment later
        if api_owner() == "Customer champion":
            break
        page.wait_for_timeout(100)
    assert api_owner() == "Customer champion"

    # "No owner" removes the chip.
    item.locator(".mention").click()
    menu.get_by_role("menuitemradio", name="No owner").click()
    expect(item.locator(".mention")).to_have_count(0)
    context.close()


@pytest.mark.parametrize("size", WIDTHS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_too_long_title_is_refused_whole_and_focus_goes_to_it(
    browser: Browser, web_server: Server, size: tuple[int, int]
) -> None:
    base = web_server.http
    context = sign_in(browser, base, "casey@vendor.example")
    page = context.new_page()
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto(f"{base}/")
    page.fill("#title", "T" * 5000)  # as a paste does: not cut at 200 in the form
    assert len(page.input_value("#title")) == 5000
    page.fill("#customer", "")
    page.click("form.form button[type=submit]")
    expect(page.locator("#title-error")).to_contain_text("Keep it to 200 characters")
    expect(page.locator("#title-error")).to_contain_text("5,000")
    expect(page.locator("#title")).to_be_focused()  # the first invalid field, not the page top
    expect(page.locator("#title")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#customer")).to_have_attribute("aria-describedby", "customer-error")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"long-title-{size[0]}.png"))
    # The product's own page for an address that does not exist, and for a milestone-less plan.
    page.goto(f"{base}/invite/")
    expect(page.locator("main h1")).to_have_text("There is no page at this address.")
    page.screenshot(path=str(ARTIFACTS / f"not-found-{size[0]}.png"))
    context.close()

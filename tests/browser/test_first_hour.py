"""What a CSM meets in the first hour with a template plan: owners, sample data, small things.

Real server, real Chromium, at a desktop width and a phone's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import sign_in
from tests.browser.test_editor import editor_json, open_plan
from tests.browser.test_editor_structure import keys, nodes
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


@pytest.mark.parametrize("size", WIDTHS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_task_checkbox_shows_a_focus_ring_from_the_keyboard(  # a guard: it passed before too
    browser: Browser, web_server: Server, size: tuple[int, int]
) -> None:
    base = web_server.http
    context = sign_in(browser, base, "casey@vendor.example")
    page = context.new_page()
    page.set_viewport_size({"width": size[0], "height": size[1]})
    plan_id = create_from_template(page, base, "success-plan-canvas")
    open_plan(page, base, plan_id)
    page.locator("#editor .ProseMirror").focus()
    box = page.locator("#editor li.task-item input[type=checkbox]").first
    for _ in range(40):  # Tab on from the editor until the first checkbox has the focus
        page.keyboard.press("Tab")
        if box.evaluate("el => el === document.activeElement"):
            break
    focused = page.evaluate("document.activeElement.outerHTML.slice(0, 120)")
    ring = box.evaluate(
        "el => { const s = getComputedStyle(el); return [el === document.activeElement,"
        " s.outlineStyle, s.outlineWidth, s.boxShadow] }"
    )
    assert ring[0], focused
    assert ring[1] != "none" or ring[3] != "none", ring
    context.close()


@pytest.mark.parametrize("size", WIDTHS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_done_task_strikes_its_words_not_the_spaces_by_its_chips(
    browser: Browser, web_server: Server, size: tuple[int, int]
) -> None:
    base = web_server.http
    context = sign_in(browser, base, "casey@vendor.example")
    page = context.new_page()
    page.set_viewport_size({"width": size[0], "height": size[1]})
    plan_id = create_from_template(page, base, "success-plan-canvas")
    open_plan(page, base, plan_id)
    item = page.locator("#editor li.task-item", has_text="Confirm objectives")
    item.locator("input[type=checkbox]").click()
    expect(item).to_have_attribute("data-checked", "true")
    struck = item.locator(".task-done-text")
    expect(struck).to_have_text("Confirm objectives and success criteria")
    # Nothing else in the line is struck: not the paragraph, so not the spaces by the chips.
    lines = item.evaluate(
        "li => [...li.querySelectorAll('p, p *')].filter(el => !el.closest('.task-done-text'))"
        ".map(el => getComputedStyle(el).textDecorationLine)"
    )
    assert set(lines) == {"none"}, lines
    item.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    box = item.bounding_box()
    assert box
    clip = {"x": 0, "y": max(0, box["y"] - 40), "width": size[0], "height": box["height"] + 80}
    page.screenshot(path=str(ARTIFACTS / f"done-task-{size[0]}.png"), clip=clip)
    context.close()


@pytest.mark.parametrize("size", WIDTHS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_an_empty_plan_hints_at_the_shortcuts(
    browser: Browser, web_server: Server, size: tuple[int, int]
) -> None:
    base = web_server.http
    context = sign_in(browser, base, "casey@vendor.example")
    page = context.new_page()
    page.set_viewport_size({"width": size[0], "height": size[1]})
    plan_id = create_from_template(page, base, "")
    open_plan(page, base, plan_id)
    hint = page.locator("#editor .is-editor-empty")
    expect(hint).to_have_attribute("data-placeholder", re.compile(r"\[ \].*@.*due:"))
    shown = hint.evaluate("el => getComputedStyle(el, '::before').content")
    assert "[ ] for a task" in shown and "due: for its date" in shown
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"empty-plan-{size[0]}.png"))
    # Typing the first shortcut makes a task, and the hint goes.
    page.locator("#editor .ProseMirror").click()
    page.keyboard.type("[ ] ")
    expect(page.locator("#editor li.task-item")).to_have_count(1)
    expect(hint).to_have_count(0)
    context.close()


@pytest.mark.parametrize("size", WIDTHS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_links_are_added_in_a_dialog_not_window_prompt(
    browser: Browser, web_server: Server, size: tuple[int, int]
) -> None:
    base = web_server.http
    context = sign_in(browser, base, "casey@vendor.example")
    page = context.new_page()
    page.set_viewport_size({"width": size[0], "height": size[1]})
    prompts: list[str] = []
    page.on("dialog", lambda d: (prompts.append(d.message), d.dismiss()))
    plan_id = create_from_template(page, base, "")
    open_plan(page, base, plan_id)
    page.locator("#editor .ProseMirror").click()
    page.keyboard.type("See the runbook")
    keys(page, *["Shift+ArrowLeft"] * 7)  # "runbook"
    page.keyboard.press("Control+k")
    dialog = page.locator("#link-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#link-dialog-url")).to_be_focused()
    page.keyboard.type("javascript:alert(1)")
    page.keyboard.press("Enter")
    expect(page.locator("#link-dialog-error")).to_have_text(
        "Only web (http, https) and email (mailto) links can be added."
    )
    expect(dialog).to_be_visible()  # what was typed stays, to correct
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"link-dialog-{size[0]}.png"))
    page.fill("#link-dialog-url", "example.com/runbook")
    page.keyboard.press("Enter")
    expect(dialog).to_have_count(0)
    link = page.locator("#editor a[href]")
    expect(link).to_have_text("runbook")
    expect(link).to_have_attribute("href", "https://example.com/runbook")
    # On the link: the dialog shows its address and can remove it.
    link.click()
    page.keyboard.press("Control+k")
    expect(page.locator("#link-dialog-url")).to_have_value("https://example.com/runbook")
    dialog.locator("[data-action=remove]").click()
    expect(page.locator("#editor a[href]")).to_have_count(0)
    # Escape closes it and puts the focus back in the plan.
    page.keyboard.press("Control+k")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.locator("#editor .ProseMirror")).to_be_focused()
    assert prompts == []
    context.close()

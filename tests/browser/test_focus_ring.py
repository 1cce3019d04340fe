"""A task's checkbox reached with the Tab key shows a focus ring a person can see: the pixels
around the box change when it takes the focus, and it keeps the focus while it is looked at.

The computed style alone said "outline: 2px solid" all along, yet a screenshot showed no ring:
taking it set a style on every input and contenteditable element (Playwright hides the caret so),
the editor took that for an edit inside the task list, drew the list again and the focused
checkbox went with it. Password managers and other extensions touch inputs' styles the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import PASSWORD, sign_in
from tests.browser.test_editor import open_plan
from tests.browser.test_first_hour import create_from_template
from tests.support import png
from tests.support.firefox import Firefox
from tests.support.servers import Server

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WIDTHS = [(1440, 900), (390, 844)]
BOX = "#editor li.task-item input[type=checkbox]"
RING = 6  # px around the box where a ring (2px wide, 2px off the box) must show


def ring_pixels_changed(before: png.Image, after: png.Image, rect: dict[str, float]) -> int:
    """How many pixels in the band just outside the box differ between the two screenshots."""
    x0, y0 = int(rect["x"]) - 1, int(rect["y"]) - 1
    x1, y1 = int(rect["x"] + rect["width"]) + 1, int(rect["y"] + rect["height"]) + 1
    changed = 0
    for y in range(max(0, y0 - RING), min(before.height, y1 + RING + 1)):
        for x in range(max(0, x0 - RING), min(before.width, x1 + RING + 1)):
            if x0 <= x <= x1 and y0 <= y <= y1:
                continue  # the box itself: a ring is outside it
            if before.rgb(x, y) != after.rgb(x, y):
                changed += 1
    return changed


def box_rect(page: Page) -> dict[str, float]:
    rect = page.locator(BOX).first.bounding_box()
    assert rect is not None
    return rect


def is_focused(page: Page) -> bool:
    return bool(page.locator(BOX).first.evaluate("el => el === document.activeElement"))


@pytest.mark.parametrize("size", WIDTHS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_task_checkbox_reached_by_tab_shows_a_visible_focus_ring(
    browser: Browser, web_server: Server, size: tuple[int, int]
) -> None:
    base = web_server.http
    context = sign_in(browser, base, "casey@vendor.example")
    page = context.new_page()
    page.set_viewport_size({"width": size[0], "height": size[1]})
    plan_id = create_from_template(page, base, "success-plan-canvas")
    open_plan(page, base, plan_id)
    # The caret in the plan, where a person starts tabbing from.
    page.locator("#editor .ProseMirror").focus()
    for _ in range(40):  # Tab on, as a person does, until the first checkbox has the focus
        page.keyboard.press("Tab")
        if is_focused(page):
            break
    assert is_focused(page), page.evaluate("document.activeElement.outerHTML.slice(0, 120)")
    assert page.locator(BOX).first.evaluate("el => el.matches(':focus-visible')")
    rect = box_rect(page)
    ARTIFACTS.mkdir(exist_ok=True)
    focused = page.screenshot(path=str(ARTIFACTS / f"focus-ring-on-{size[0]}.png"))
    # Looking at it must not take the focus away (the list was drawn again, the box replaced).
    kept = is_focused(page)

    # The same place without the focus, to compare with.
    page.evaluate("document.activeElement.blur()")
    moved = box_rect(page)
    unfocused = page.screenshot(path=str(ARTIFACTS / f"focus-ring-off-{size[0]}.png"))
    changed = ring_pixels_changed(png.read(focused), png.read(unfocused), rect)
    # A ring around a 17px box is more than one line of pixels all round it.
    assert changed >= 2 * (rect["width"] + rect["height"]), (changed, kept, rect, moved)
    assert kept
    assert moved == rect
    context.close()


@pytest.mark.parametrize("size", WIDTHS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_style_set_on_a_task_checkbox_does_not_redraw_the_list(
    browser: Browser, web_server: Server, size: tuple[int, int]
) -> None:
    """What a password manager or a screenshot tool does to an input: the box stays, focused."""
    base = web_server.http
    context = sign_in(browser, base, "casey@vendor.example")
    page = context.new_page()
    page.set_viewport_size({"width": size[0], "height": size[1]})
    plan_id = create_from_template(page, base, "success-plan-canvas")
    open_plan(page, base, plan_id)
    box = page.locator(BOX).first
    box.focus()
    box.evaluate("el => { window.__box = el; el.style.setProperty('caret-color', 'transparent') }")
    box.evaluate("el => el.closest('label').style.setProperty('caret-color', 'transparent')")
    # The editor's mutation observer has run by the next call (a microtask after the last one).
    assert page.evaluate("window.__box.isConnected && window.__box === document.activeElement")
    context.close()


@pytest.fixture(scope="module")
def firefox() -> Iterator[Firefox]:
    ff = Firefox()
    yield ff
    ff.close()


def test_firefox_shows_the_ring_too(firefox: Firefox, web_server: Server) -> None:
    """The same look in Firefox (its screenshots touch no style: a guard, it passed before too)."""
    base = web_server.http
    page = firefox.page("focus-ring")
    page.goto(f"{base}/login")
    page.fill("#email", "casey@vendor.example")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]", navigates=True)
    page.fill("#title", "Acme onboarding")
    page.fill("#customer", "Acme")
    page.eval(
        "(() => { const s = document.querySelector('#template');"
        " s.value = 'success-plan-canvas'; s.dispatchEvent(new Event('change')) })()"
    )
    page.click("form.form button[type=submit]", navigates=True)
    page.wait_for("document.querySelector('#editor')?.dataset.synced === 'true'")
    box = f"document.querySelector({BOX!r})"
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in WIDTHS:
        page.set_viewport(width, height)
        page.eval("document.querySelector('#editor .ProseMirror').focus()")
        for _ in range(40):
            page.press("Tab")
            if page.eval(f"{box} === document.activeElement"):
                break
        assert page.eval(f"{box}.matches(':focus-visible')")
        rect = page.eval(f"JSON.parse(JSON.stringify({box}.getBoundingClientRect()))")
        on, off = (
            ARTIFACTS / f"focus-ring-ff-on-{width}.png",
            ARTIFACTS / f"focus-ring-ff-off-{width}.png",
        )
        page.screenshot(on)
        assert page.eval(f"{box} === document.activeElement")
        page.eval("document.activeElement.blur()")
        page.screenshot(off)
        changed = ring_pixels_changed(png.read(on.read_bytes()), png.read(off.read_bytes()), rect)
        assert changed >= 2 * (rect["width"] + rect["height"]), (width, changed, rect)

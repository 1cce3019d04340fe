"""The plan as data from a real editor session: a task typed in Chromium reaches /tasks and the
dashboard, and a write-back through the API ticks it in the open editor."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import sign_in
from tests.browser.test_editor import ARTIFACTS, open_plan
from tests.support.servers import Server

pytestmark = pytest.mark.browser


END_OF_TASK = """(start) => {
  const editor = window.tandem.editor
  let at = null
  editor.state.doc.descendants((node, pos) => {
    if (node.type.name === 'taskItem' && node.textContent.startsWith(start)) {
      at = pos + 1 + node.firstChild.nodeSize - 1
    }
  })
  editor.chain().focus().setTextSelection(at).run()
}"""


SELECTION_AT_END = """(start) => {
  const { state } = window.tandem.editor
  const { $from, empty } = state.selection
  const atEnd = $from.parentOffset === $from.parent.content.size
  return empty && atEnd && $from.parent.textContent.startsWith(start)
}"""


def poll_tasks(page: Page, base: str, plan_id: str, pred: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = page.request.get(f"{base}/api/plans/{plan_id}/tasks").json()["tasks"]
        found = pred(got)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_task_typed_in_the_editor_is_tracked(browser: Browser, web_server: Server) -> None:
    base = web_server.http
    page = sign_in(browser, base, "casey@vendor.example").new_page()
    page.goto(f"{base}/")
    page.fill("#title", "Onboarding 2027")
    page.fill("#customer", "Globex")
    page.select_option("#template", "onboarding-roadmap")
    page.click("form.form button[type=submit]")
    page.wait_for_url(f"{base}/plans/*")
    plan_id = page.url.rsplit("/", 1)[1]
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    open_plan(page, base, plan_id)
    expect(page.locator("#editor .ProseMirror")).to_contain_text("Knowledge transfer")

    before = page.request.get(f"{base}/api/plans/{plan_id}/tasks").json()["tasks"]
    retro = next(t for t in before if t["text"].startswith("Onboarding retrospective"))

    # Type a new task at the end of the last stage's task list, like a CSM during a call.
    # (The caret goes after the item's due-date chip, at the very end of its paragraph.)
    page.locator("#editor li[data-checked]", has_text="Onboarding retrospective").click()
    page.evaluate(END_OF_TASK, "Onboarding retrospective")
    expect(page.locator("#editor .ProseMirror")).to_be_focused()
    page.wait_for_function(SELECTION_AT_END, arg="Onboarding retrospective")
    page.keyboard.press("Enter")
    page.keyboard.type("Send the security questionnaire", delay=15)

    def typed(tasks: list[dict[str, Any]]) -> Any:
        return next((t for t in tasks if t["text"].startswith("Send the security q")), None)

    task = poll_tasks(page, base, plan_id, typed, timeout=20)
    assert task is not None
    assert task["status"] == "todo"
    assert task["section"][-1] == "11. Wrap-up and feedback"
    # Enter split the item, copying its attrs: the original keeps its id, the new one gets its own.
    after = page.request.get(f"{base}/api/plans/{plan_id}/tasks").json()["tasks"]
    assert next(t for t in after if t["id"] == retro["id"])["text"] == retro["text"]
    assert task["id"] != retro["id"] and len(after) == len(before) + 1

    # Write-back: the open editor sees the checkbox tick live.
    headers = {"X-CSRF-Token": csrf or ""}
    url = f"{base}/api/plans/{plan_id}/tasks/{task['id']}"
    r = page.request.patch(url, data={"checked": True}, headers=headers)
    assert r.status == 200, r.text()
    item = page.locator("#editor li[data-checked]", has_text="Send the security questionnaire")
    expect(item).to_have_attribute("data-checked", "true")

    # Owner and due date through the API (typing them as chips comes with the editor work):
    # the open editor shows them live and keeps them.
    due = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    body = {"checked": False, "owner": {"id": "name:Dana IT", "side": "customer"}, "due": due}
    r = page.request.patch(url, data=body, headers=headers)
    assert r.status == 200, r.text()
    got = poll_tasks(page, base, plan_id, typed)
    assert got["owner"] == {"id": "name:Dana IT", "label": "Dana IT", "side": "customer"}
    assert got["due"] == due and got["status"] == "todo"
    expect(item.locator("[data-type=mention]")).to_have_text("@Dana IT")
    expect(item.locator(f'.due-chip[data-date="{due}"]')).to_be_visible()
    expect(item).to_have_attribute("data-checked", "false")
    # The template's own owners and dates survived the editor session.
    tasks = page.request.get(f"{base}/api/plans/{plan_id}/tasks").json()["tasks"]
    assert all(t["due"] for t in tasks), [t for t in tasks if not t["due"]]
    assert sum(1 for t in tasks if t["owner"]) >= 10

    page.goto(f"{base}/plans/{plan_id}/dashboard")
    soon = page.locator("section", has=page.locator("#court-h"))
    expect(soon).to_contain_text("Send the security questionnaire @Dana IT")
    expect(page.locator(".rag")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "plan-dashboard.png"), full_page=True)

    # An owner overrides the status with a reason; everyone sees it and the computed one.
    page.select_option("#rag", "red")
    page.fill("#reason", "Sponsor <left> the company")
    page.click("button[name=action][value=set]")
    expect(page.locator(".rag")).to_have_attribute("data-rag", "red")
    expect(page.locator(".dash-status")).to_contain_text("Sponsor <left> the company")
    page.click("button[name=action][value=clear]")
    expect(page.locator(".rag")).not_to_have_attribute("data-rag", "red")

    page.goto(f"{base}/plans/{plan_id}/history")
    expect(page.locator("table.history")).to_contain_text("Send the security questionnaire")
    expect(page.locator("table.history")).to_contain_text("completed the task")

    # The dashboard and history carry the editor's tabs, Share included, and at any width
    # every tab and Sign out stay in the window without being drawn over the plan's title.
    for tab in ("dashboard", "history"):
        page.goto(f"{base}/plans/{plan_id}/{tab}")
        for width in (1440, 1280, 1000, 760):
            page.set_viewport_size({"width": width, "height": 800})
            links = page.locator(".topbar .plan-nav a")
            expect(links).to_have_count(5)  # Editor, Dashboard, History, Internal plan, Share
            for i in range(5):
                expect(links.nth(i)).to_be_in_viewport(ratio=1)
            expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport(ratio=1)
            title = page.locator(".topbar .plan-title").bounding_box()
            first = links.first.bounding_box()
            assert title and first, (tab, width)
            side_by_side = title["x"] + title["width"] <= first["x"] + 1
            assert side_by_side or first["y"] >= title["y"] + title["height"] - 1, (tab, width)
            page.wait_for_function("document.documentElement.scrollWidth <= innerWidth")
            page.screenshot(path=str(ARTIFACTS / f"plan-{tab}-{width}.png"))
        # A phone: the page is never wider than the screen; the tabs scroll sideways in their
        # own row, and Share is there at the end of it.
        page.set_viewport_size({"width": 390, "height": 800})
        page.wait_for_function("document.documentElement.scrollWidth <= innerWidth")
        expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport(ratio=1)
        links.last.scroll_into_view_if_needed()
        expect(links.last).to_be_in_viewport(ratio=1)
        page.wait_for_function("document.documentElement.scrollWidth <= innerWidth")
        page.screenshot(path=str(ARTIFACTS / f"plan-{tab}-390.png"))

"""Version history in Chromium: two people edit a plan, one names a version, the other moves a
due date, reassigns a task and ticks another; the history page shows the sessions and exactly
those three changes with their author, the plan as it was at the version, and a restore that
both open editors show; the first person, opening the plan again, gets the banner."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import add_member, sign_in
from tests.browser.test_editor import ARTIFACTS, open_plan, type_at_end
from tests.support.servers import Server

pytestmark = pytest.mark.browser


CHECKED = """(() => {
  let checked = null
  window.tandem.editor.state.doc.descendants((node) => {
    if (node.type.name === 'taskItem' && node.attrs.id === id) checked = node.attrs.checked
  })
  return checked
})()"""


def csrf_of(page: Page) -> str:
    return page.locator("input[name=csrf]").first.get_attribute("value") or ""


def task_attrs(page: Page, task_id: str) -> Any:
    return page.evaluate(
        """(id) => {
          let found = null
          window.tandem.editor.state.doc.descendants((node) => {
            if (node.type.name === 'taskItem' && node.attrs.id === id) found = node.attrs
          })
          return found
        }""",
        task_id,
    )


def test_history_page_versions_changes_restore_and_banner(
    browser: Browser, web_server: Server
) -> None:
    base = web_server.http
    casey = sign_in(browser, base, "casey@vendor.example").new_page()
    robin = sign_in(browser, base, "robin@customer.example").new_page()
    casey.goto(f"{base}/")
    casey.fill("#title", "Rollout")
    casey.fill("#customer", "Robin's Co")
    casey.select_option("#template", "onboarding-roadmap")
    casey.click("form.form button[type=submit]")
    casey.wait_for_url(f"{base}/plans/*")
    plan_id = casey.url.rsplit("/", 1)[1]
    add_member(casey, robin, plan_id, "robin@customer.example", owner_base=base, member_base=base)

    # Both type; Robin's first visit is remembered.
    open_plan(casey, base, plan_id)
    open_plan(robin, base, plan_id)
    type_at_end(casey, "Casey was here")
    expect(robin.locator("#editor .ProseMirror")).to_contain_text("Casey was here")
    type_at_end(robin, "Robin too")
    expect(casey.locator("#editor .ProseMirror")).to_contain_text("Robin too")
    expect(robin.locator("#since-banner")).to_have_count(0)

    # Robin names the plan as it stands on the history page.
    tasks = robin.request.get(f"{base}/api/plans/{plan_id}/tasks").json()["tasks"]
    plain = [t for t in tasks if t["status"] != "done" and not t["milestone"] and t["due"]]
    t1, t2, t3 = plain[:3]
    was = robin.request.get(f"{base}/api/plans/{plan_id}/document?format=markdown").text()
    history = robin.context.new_page()
    history.goto(f"{base}/plans/{plan_id}/history")
    history.fill("#version-name", "Signed at kick-off")
    history.click("#version-form button[type=submit]")
    expect(history.locator("#versions")).to_contain_text("Signed at kick-off")
    version = robin.request.get(f"{base}/api/plans/{plan_id}/versions").json()["versions"][0]
    assert version["name"] == "Signed at kick-off"

    # Casey moves a due date, reassigns a task and ticks another.
    headers = {"X-CSRF-Token": csrf_of(casey)}
    url = f"{base}/api/plans/{plan_id}/tasks/"
    moved = "2031-03-17"
    for task, body in (
        (t1, {"due": moved}),
        (t2, {"owner": {"id": "name:Dana", "side": "customer"}}),
        (t3, {"checked": True}),
    ):
        r = casey.request.patch(url + task["id"], data=body, headers=headers)
        assert r.status == 200, r.text()
    expect(robin.locator(f'#editor .due-chip[data-date="{moved}"]')).to_be_visible()

    # The history page: the sessions, and exactly the three changes since the version, Casey's.
    history.goto(f"{base}/plans/{plan_id}/history?from=v{version['id']}")
    expect(history.locator("#sessions li.session").first).to_contain_text("Casey Vendor")
    expect(history.locator("#sessions")).to_contain_text("Robin Customer")
    expect(history.locator("#sessions .version-tag", has_text="Signed at kick-off")).to_be_visible()
    changes = history.locator("#changes ul.changes li")
    expect(changes).to_have_count(3)
    kinds = [changes.nth(i).get_attribute("data-kind") for i in range(3)]
    assert sorted(kinds) == ["due_moved", "owner_changed", "task_completed"]
    for i in range(3):
        expect(changes.nth(i)).to_contain_text("Casey Vendor")
    expect(history.locator("#changes")).to_contain_text(moved)
    # Changed blocks are highlighted in Casey's colour, with her name on them.
    expect(history.locator("#history-doc ins.blk").first).to_have_attribute("title", "Casey Vendor")
    ARTIFACTS.mkdir(exist_ok=True)
    history.screenshot(path=str(ARTIFACTS / "history-page.png"), full_page=True)

    # The plan at the named version is what it was then.
    history.goto(f"{base}/plans/{plan_id}/history?version={version['id']}&from=v{version['id']}")
    shown = history.locator("#history-doc pre.blk").all_inner_texts()
    assert shown == [line for line in was.split("\n") if line.strip()]
    expect(history.locator("#history-doc ins.blk, #history-doc del.blk")).to_have_count(0)

    # Robin restores it: both open editors show the old content at once.
    history.click("#restore")
    expect(history.locator("#restored-notice")).to_be_visible()
    for page in (casey, robin):
        expect(page.locator(f'#editor .due-chip[data-date="{t1["due"]}"]').first).to_be_visible()
        page.wait_for_function(
            "(id) => window.tandem && TASK_CHECKED(id) === false".replace(
                "TASK_CHECKED(id)", CHECKED
            ),
            arg=t3["id"],
        )
    assert task_attrs(casey, t2["id"]) is not None
    after = robin.request.get(f"{base}/api/plans/{plan_id}/document?format=markdown").text()
    assert after == was

    # Robin opens it again: Casey's three changes, by Casey, linked to the comparison.
    open_plan(robin, base, plan_id)
    banner = robin.locator("#since-banner")
    expect(banner).to_contain_text("Casey Vendor")
    expect(banner).to_contain_text("3 commitments")
    robin.click("#since-link")
    expect(robin.locator("#changes")).to_be_visible()

"""Structure in the editor: owners, due dates, status, milestones, stable ids, Insert menu.

Real server, real Chromium, driven the way a CSM on a call would: keyboard first.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import add_member, sign_in
from tests.browser.test_editor import create_plan_in_ui, editor_json, open_plan
from tests.support.servers import Server

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TASK_ID = re.compile(r"^t_[A-Za-z0-9_-]{10}$")
ROW_ID = re.compile(r"^r_[A-Za-z0-9_-]{10}$")


def nodes(node: Any, kind: str) -> list[dict[str, Any]]:
    """Every node of type ``kind`` in a ProseMirror JSON tree, in document order."""
    found = []
    if isinstance(node, dict):
        if node.get("type") == kind:
            found.append(node)
        for child in node.get("content") or []:
            found.extend(nodes(child, kind))
    return found


def tasks(page: Page) -> list[dict[str, Any]]:
    return nodes(editor_json(page), "taskItem")


def task_text(task: dict[str, Any]) -> str:
    return "".join(n.get("text", "") for n in nodes(task["content"][0], "text"))


def start_task_list(page: Page) -> None:
    page.locator("#editor .ProseMirror").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("[ ] ")  # Tiptap's input rule for a task list
    expect(page.locator("#editor li.task-item")).to_have_count(1)


def tomorrow(page: Page) -> str:
    return page.evaluate(
        "(() => { const d = new Date(); d.setDate(d.getDate() + 1);"
        " return d.getFullYear() + '-' + String(d.getMonth() + 1).padStart(2, '0') + '-'"
        " + String(d.getDate()).padStart(2, '0') })()"
    )


def keys(page: Page, *names: str) -> None:
    """Press keys one by one, unhurried: keys pressed faster than Chromium reports selection
    changes to ProseMirror can be lost (the selection is re-set from the older state)."""
    for name in names:
        page.keyboard.press(name)
        page.wait_for_timeout(60)


def wait_for_ids(page: Page, count: int) -> list[str]:
    page.wait_for_function(
        "n => { const ids = [...document.querySelectorAll('#editor li.task-item')]"
        ".map(li => li.dataset.id); return ids.length === n && ids.every(Boolean) }",
        arg=count,
    )
    return [t["attrs"]["id"] for t in tasks(page)]


def test_owner_and_due_date_typed_in_a_task_reach_the_other_side(
    browser: Browser, web_server: Server
) -> None:
    base = web_server.http
    casey = sign_in(browser, base, "casey@vendor.example").new_page()
    robin = sign_in(browser, base, "robin@customer.example").new_page()
    plan_id = create_plan_in_ui(casey, base, "Onboarding plan", "Robin's Co")
    add_member(casey, robin, plan_id, "robin@customer.example", owner_base=base, member_base=base)
    open_plan(casey, base, plan_id)
    open_plan(robin, base, plan_id)

    start_task_list(casey)
    casey.keyboard.type("Kick-off call with @Rob", delay=15)
    option = casey.locator(".owner-suggest [role=option]").first
    expect(option).to_contain_text("Robin Customer")
    listbox_id = casey.locator(".owner-suggest [role=listbox]").get_attribute("id")
    doc_el = casey.locator("#editor .ProseMirror")
    expect(doc_el).to_have_attribute("aria-controls", listbox_id)
    expect(doc_el).to_have_attribute("aria-activedescendant", re.compile(r".+-0$"))
    casey.keyboard.press("Enter")
    casey.keyboard.type("due:", delay=15)
    expect(casey.locator(".due-suggest [role=option][data-key=tomorrow]")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    casey.screenshot(path=str(ARTIFACTS / "structure-due-suggest.png"))
    casey.locator(".due-suggest [role=option][data-key=tomorrow]").click()
    expect(casey.locator(".due-suggest")).to_have_count(0)

    due = tomorrow(casey)
    [task] = tasks(casey)
    assert TASK_ID.match(task["attrs"]["id"])
    assert task["attrs"]["checked"] is False
    [owner] = nodes(task, "mention")
    assert owner["attrs"]["label"] == "Robin Customer"
    assert re.fullmatch(r"user:\d+", owner["attrs"]["id"])
    # The owner picker knows each member's side.
    assert owner["attrs"]["side"] == "customer"
    assert nodes(task, "dueDate") == [{"type": "dueDate", "attrs": {"date": due}}]
    assert task_text(task).startswith("Kick-off call with")

    # Robin sees the same task, with the same id, and the chips.
    robin_editor = robin.locator("#editor")
    expect(robin_editor.locator(".mention")).to_have_text("@Robin Customer")
    chip = robin_editor.locator(".due-chip")
    expect(chip).to_have_attribute("data-date", due)
    expect(chip).to_have_attribute("data-state", "soon")  # tomorrow: within 7 days
    expect(chip).to_contain_text("Due ")
    assert wait_for_ids(robin, 1) == [task["attrs"]["id"]]
    robin.screenshot(path=str(ARTIFACTS / "structure-robin-sees-chips.png"))

    # Robin adds a task after it while Casey keeps typing in hers: both editors agree on
    # every id, the first task keeps its id, and the ids stay put (no flip-flop).
    robin.locator("#editor li.task-item p").first.click(position={"x": 4, "y": 6})
    keys(robin, "End", "Enter")
    robin.keyboard.type("Send the agenda", delay=10)
    casey.keyboard.type("today", delay=10)
    expect(casey.locator("#editor li.task-item")).to_have_count(2)
    ids = wait_for_ids(casey, 2)
    assert ids[0] == task["attrs"]["id"] and TASK_ID.match(ids[1]) and ids[1] != ids[0]
    casey.wait_for_timeout(1000)
    assert wait_for_ids(casey, 2) == wait_for_ids(robin, 2) == ids
    assert [task_text(t) for t in tasks(robin)] == [task_text(t) for t in tasks(casey)]

    # The Markdown export still reads as who does what by when.
    md = casey.request.get(f"{base}/api/plans/{plan_id}/document?format=markdown")
    assert md.status == 200
    assert f"- [ ] Kick-off call with @Robin Customer (due {due}) today" in md.text()
    assert "- [ ] Send the agenda" in md.text()


def test_task_ids_survive_split_undo_and_get_renewed_on_paste(
    browser: Browser, web_server: Server
) -> None:
    base = web_server.http
    context = sign_in(browser, base, "casey@vendor.example")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    casey = context.new_page()
    plan_id = create_plan_in_ui(casey, base, "Renewal plan", "Robin's Co")
    open_plan(casey, base, plan_id)

    start_task_list(casey)
    casey.keyboard.type("Alpha Beta", delay=10)
    [original] = wait_for_ids(casey, 1)
    assert TASK_ID.match(original)

    # Enter in the middle: the first half keeps the id, the second gets a new one.
    casey.wait_for_timeout(700)  # past Yjs' undo capture time: the split is its own undo step
    keys(casey, *["ArrowLeft"] * len("Beta"), "Enter")
    first, second = wait_for_ids(casey, 2)
    assert first == original
    assert TASK_ID.match(second) and second != original
    assert [task_text(t) for t in tasks(casey)] == ["Alpha ", "Beta"]

    # Undo joins them again under the original id; redo splits them again.
    casey.keyboard.press("Control+z")
    assert wait_for_ids(casey, 1) == [original]
    assert task_text(tasks(casey)[0]) == "Alpha Beta"
    casey.keyboard.press("Control+Shift+z")
    assert wait_for_ids(casey, 2)[0] == original

    # Typing in a task keeps its id.
    casey.keyboard.type("and more ")
    ids = wait_for_ids(casey, 2)
    assert ids[0] == original

    # Copy both tasks and paste them at the end: the copies get new ids, the originals keep theirs.
    keys(casey, "Control+Home", "Shift+ArrowDown", "Shift+End", "Control+c")
    keys(casey, "Control+End", "Enter", "Control+v")
    after = wait_for_ids(casey, 4)
    assert len(set(after)) == 4
    assert after[:2] == ids
    assert all(TASK_ID.match(i) for i in after)
    assert [task_text(t) for t in tasks(casey)][2:] == [task_text(t) for t in tasks(casey)][:2]

    # Cut a whole task and paste it at the top (a move): it keeps its id.
    moved = after[3]
    text = task_text(tasks(casey)[3])
    casey.evaluate(
        """id => {
        const { editor } = window.tandem
        let at = null
        editor.state.doc.descendants((n, p) => { if (n.attrs.id === id) at = p })
        editor.chain().focus().setNodeSelection(at).run()
    }""",
        moved,
    )
    keys(casey, "Control+x")
    wait_for_ids(casey, 3)
    keys(casey, "Control+Home", "Control+v")
    final = wait_for_ids(casey, 4)
    assert len(set(final)) == 4
    assert moved in final
    assert task_text(next(t for t in tasks(casey) if t["attrs"]["id"] == moved)) == text


def test_status_milestone_and_insert_menu_from_the_keyboard(
    browser: Browser, web_server: Server
) -> None:
    base = web_server.http
    casey = sign_in(browser, base, "casey@vendor.example").new_page()
    plan_id = create_plan_in_ui(casey, base, "Expansion plan", "Robin's Co")
    open_plan(casey, base, plan_id)
    casey.locator("#editor .ProseMirror").click()

    # Insert > Key contacts, by keyboard: the toolbar is one tab stop, arrows move within it.
    insert = casey.locator("#toolbar [data-action=insert-section]")
    insert.focus()
    expect(insert).to_have_attribute("aria-haspopup", "menu")
    casey.keyboard.press("Enter")
    menu = casey.locator("#insert-menu[role=menu]")
    expect(menu).to_be_visible()
    expect(insert).to_have_attribute("aria-expanded", "true")
    expect(menu.locator("[role=menuitem]")).to_have_count(4)
    casey.keyboard.press("Enter")  # the first: Key contacts
    expect(menu).to_have_count(0)
    casey.keyboard.type("Dana Buyer")
    casey.keyboard.press("Tab")
    casey.keyboard.type("VP Operations")

    # Insert > Risks and Insert > Milestones with the mouse, for good measure.
    for value in ("key-results", "risks", "milestones"):
        casey.locator("#editor .ProseMirror").press("Control+End")
        insert.click()
        casey.locator(f"#insert-menu [data-value={value}]").click()
    doc = editor_json(casey)
    headings = [task_text({"content": [h]}) for h in nodes(doc, "heading")]
    assert headings == ["Key contacts", "Key results", "Risks", "Milestones"]
    tables = nodes(doc, "table")
    header_rows = [
        [task_text({"content": [c["content"][0]]}) for c in t["content"][0]["content"]]
        for t in tables
    ]
    assert header_rows == [
        ["Name", "Role", "Email", "Side"],
        ["Metric", "Baseline", "Target", "Current", "Unit", "Date"],  # as in the templates
        ["Risk", "Severity", "Owner", "Mitigation"],
    ]
    rows = [r for t in tables for r in t["content"]]
    assert all(ROW_ID.match(r["attrs"]["id"]) for r in rows)
    assert len({r["attrs"]["id"] for r in rows}) == len(rows)
    [milestone] = tasks(casey)
    assert milestone["attrs"]["milestone"] is True

    # The cursor is in the new milestone: type it, with a key contact as owner.
    casey.keyboard.type("Go live @Dana", delay=15)
    option = casey.locator(".owner-suggest [role=option]").first
    expect(option).to_contain_text("Dana Buyer")
    expect(option.locator(".side-badge")).to_have_text("Customer")
    casey.keyboard.press("Enter")
    casey.keyboard.type("due:+3d ", delay=15)  # parsed as typed, no list needed
    [milestone] = tasks(casey)
    [owner] = nodes(milestone, "mention")
    contacts_row = tables[0]["content"][1]
    assert owner["attrs"] == {
        "id": f"contact:{contacts_row['attrs']['id']}",
        "label": "Dana Buyer",
        "side": "customer",
    }
    [chip] = nodes(milestone, "dueDate")
    # Clicking the chip changes the date.
    casey.locator("#editor .due-chip").click()
    casey.locator(
        "#due-date-menu [role=menuitemradio]", has_text="In a week"
    ).click()  # never the same day as +3d
    expect(casey.locator("#due-date-menu")).to_have_count(0)
    [changed] = nodes(tasks(casey)[0], "dueDate")
    assert changed["attrs"]["date"] != chip["attrs"]["date"]
    expect(casey.locator("#editor .due-chip")).to_have_attribute(
        "data-date", changed["attrs"]["date"]
    )
    expect(casey.locator("#editor li.is-milestone .task-milestone-mark")).to_be_visible()

    # Typing another due date in the task replaces the chip: a task has one due date.
    keys(casey, "End")
    casey.keyboard.type("due:tomorrow ", delay=15)
    assert nodes(tasks(casey)[0], "dueDate") == [
        {"type": "dueDate", "attrs": {"date": tomorrow(casey)}}
    ]
    expect(casey.locator("#editor .due-chip")).to_have_count(1)

    # Status from the keyboard: Ctrl+Alt+S, arrows, Enter.
    casey.keyboard.press("Control+Alt+s")
    status_menu = casey.locator("#task-status-menu[role=menu]")
    expect(status_menu.locator("[role=menuitemradio][aria-checked=true]")).to_have_text("To do")
    casey.keyboard.press("ArrowDown")
    casey.keyboard.press("ArrowDown")
    casey.keyboard.press("Enter")  # Blocked
    expect(status_menu).to_have_count(0)
    li = casey.locator("#editor li.task-item").first
    expect(li).to_have_attribute("data-status", "blocked")
    assert tasks(casey)[0]["attrs"]["status"] == "blocked"
    # Done through the menu checks the box; unchecking the box makes it "to do" again.
    casey.keyboard.press("Control+Alt+s")
    casey.keyboard.press("d")  # type-ahead
    casey.keyboard.press("Enter")
    attrs = tasks(casey)[0]["attrs"]
    assert (attrs["status"], attrs["checked"]) == ("done", True)
    li.locator("input[type=checkbox]").click()
    expect(li).to_have_attribute("data-checked", "false")
    attrs = tasks(casey)[0]["attrs"]
    assert (attrs["status"], attrs["checked"]) == (None, False)
    li.locator("input[type=checkbox]").click()
    attrs = tasks(casey)[0]["attrs"]
    assert (attrs["status"], attrs["checked"]) == ("done", True)

    # Ctrl+Enter toggles done in a task (a hard break elsewhere).
    casey.locator("#editor .ProseMirror").press("Control+Enter")
    attrs = tasks(casey)[0]["attrs"]
    assert (attrs["status"], attrs["checked"]) == (None, False)
    casey.keyboard.press("Control+Enter")
    attrs = tasks(casey)[0]["attrs"]
    assert (attrs["status"], attrs["checked"]) == ("done", True)

    # Milestone flag toggles from the keyboard.
    casey.locator("#editor .ProseMirror").press("Control+Alt+m")
    assert tasks(casey)[0]["attrs"]["milestone"] is False
    casey.keyboard.press("Control+Alt+m")
    assert tasks(casey)[0]["attrs"]["milestone"] is True

    # The due chip: Ctrl+Alt+D opens its picker; remove it.
    casey.keyboard.press("Control+Alt+d")
    due_menu = casey.locator("#due-date-menu")
    expect(due_menu).to_be_visible()
    casey.keyboard.press("End")
    casey.keyboard.press("Enter")  # the last item: Remove due date
    assert nodes(tasks(casey)[0], "dueDate") == []
    ARTIFACTS.mkdir(exist_ok=True)
    casey.screenshot(path=str(ARTIFACTS / "structure-sections.png"), full_page=True)


# A change made by another Yjs client (a script, an older editor): a second Y.Doc in the page
# whose update is applied to the editor's document, exactly as if it came from the server.
REMOTE_EDIT = """([bareText, dupText]) => {
    const { ydoc, Y } = window.tandem
    const other = new Y.Doc()
    Y.applyUpdate(other, Y.encodeStateAsUpdate(ydoc))
    const list = other.getXmlFragment('default').toArray().find((n) => n.nodeName === 'taskList')
    const task = (text, attrs) => {
        const item = new Y.XmlElement('taskItem')
        for (const [k, v] of Object.entries(attrs)) item.setAttribute(k, v)
        const p = new Y.XmlElement('paragraph')
        p.insert(0, [new Y.XmlText(text)])
        item.insert(0, [p])
        return item
    }
    const first = list.get(0)
    // a bare task at the end, and a task that repeats the first task's id, put before it
    list.insert(list.length, [task(bareText, {})])
    list.insert(0, [task(dupText, { id: first.getAttribute('id') })])
    Y.applyUpdate(ydoc, Y.encodeStateAsUpdate(other, Y.encodeStateVector(ydoc)), 'remote')
}"""


def test_remote_changes_are_not_rewritten_until_a_local_edit(
    browser: Browser, web_server: Server
) -> None:
    base = web_server.http
    casey = sign_in(browser, base, "casey@vendor.example").new_page()
    plan_id = create_plan_in_ui(casey, base, "Plan with scripts", "Robin's Co")
    open_plan(casey, base, plan_id)
    start_task_list(casey)
    casey.keyboard.type("Mine", delay=10)
    [mine] = wait_for_ids(casey, 1)

    casey.evaluate(REMOTE_EDIT, ["From a script", "Copied by a script"])
    expect(casey.locator("#editor li.task-item")).to_have_count(3)
    casey.wait_for_timeout(300)
    # Left as they came: no id for the bare task, the duplicate still duplicated.
    assert [t["attrs"]["id"] for t in tasks(casey)] == [mine, mine, None]

    # The next local edit fixes both: the first in document order keeps the id.
    casey.locator("#editor li.task-item p").nth(1).click()
    keys(casey, "End")
    casey.keyboard.type("!")
    ids = wait_for_ids(casey, 3)
    assert ids[0] == mine
    assert len(set(ids)) == 3 and all(TASK_ID.match(i) for i in ids)
    assert [task_text(t) for t in tasks(casey)] == ["Copied by a script", "Mine!", "From a script"]

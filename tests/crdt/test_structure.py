"""Reading structure out of the plan document, ids, write-back, diffs and templates."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pycrdt import Doc, UndoManager, XmlElement, XmlText

from crdt import new_doc, to_prosemirror, write_prosemirror
from crdt.changes import Entity, Kind, changed_ids, diff, new_mentions
from crdt.reader import StructureReader, read_structure
from crdt.schema import fragment
from crdt.structure import (
    Owner,
    Structure,
    TaskNotFound,
    assign_ids,
    missing_ids,
    parse_number,
    set_task_checked,
    set_task_due,
    set_task_owner,
    set_task_status,
)
from crdt.templates import BUILT_IN, due, h, owner, p, table, task, tasks
from tests.crdt.tiptap import tiptap


def written(pm: dict[str, Any]) -> Doc:
    doc = new_doc()
    write_prosemirror(doc, pm)
    return doc


def plan() -> dict[str, Any]:
    return {
        "type": "doc",
        "content": [
            p("Intro text outside any section"),
            h(2, "Actions"),
            tasks(
                task("Send the SOW", owner("Ann Lee", "vendor"), due(date(2027, 1, 15))),
                task("Invite IT", checked=True),
            ),
            h(2, "Milestones"),
            h(3, "Phase 1"),
            tasks(task("Go-live", due(date(2027, 3, 1)))),
            h(2, "KPIs"),
            table(
                ["Unit", "Metric", "Baseline", "Target", "Current"],
                ["USD", "Revenue", "$10M", "$15M", "$11M"],
                ["", "", "", "", ""],
            ),
            h(1, "Risks"),
            table(
                ["Risk", "Severity", "Owner", "Mitigation"], ["Sponsor leaves", "high", "Ann", "x"]
            ),
            h(2, "Stakeholders"),
            table(
                ["Email", "Name", "Role", "Side"], ["bo@acme.example", "Bo", "Sponsor", "customer"]
            ),
            h(1, "Notes"),
            table(["Risk", "Severity"], ["not a risk: outside the section", "low"]),
        ],
    }


def test_reads_tasks_milestones_and_rows_whatever_the_order() -> None:
    doc = written(plan())
    assert assign_ids(doc) is True
    assert assign_ids(doc) is False and not missing_ids(doc)
    s = read_structure(doc)
    sow, invite, golive = s.tasks.values()
    assert sow.text == "Send the SOW @Ann Lee" and sow.due == "2027-01-15"
    assert sow.owner == Owner("name:Ann Lee", "Ann Lee", "vendor")
    assert sow.status == "todo" and not sow.milestone and sow.section == ("Actions",)
    assert invite.status == "done" and invite.checked
    assert golive.milestone and golive.section == ("Milestones", "Phase 1")
    (kr,) = s.of("key_results")
    assert dict(kr.fields) == {
        "unit": "USD",
        "metric": "Revenue",
        "baseline": "$10M",
        "target": "$15M",
        "current": "$11M",
    }
    (risk,) = s.of("risks")
    assert risk.get("severity") == "high" and risk.section == ("Risks",)
    (contact,) = s.of("contacts")
    assert contact.get("email") == "bo@acme.example" and contact.get("side") == "customer"
    assert all(t.id.startswith("t_") and len(t.id) == 12 for t in s.tasks.values())


def test_checked_wins_over_status_and_plain_clients_make_tasks() -> None:
    doc = new_doc()
    with doc.transaction():
        lst = fragment(doc).children.append(XmlElement("taskList"))
        el = lst.children.append(XmlElement("taskItem", {"checked": False, "status": "done"}))
        el.children.append(XmlElement("paragraph", {}, [XmlText("bare task")]))
    assign_ids(doc)
    (t,) = read_structure(doc).tasks.values()
    assert t.text == "bare task" and t.status == "todo"
    el.attributes["checked"] = True
    assert read_structure(doc).tasks[t.id].status == "done"


def test_duplicate_ids_the_first_keeps_its_id() -> None:
    doc = written(plan())
    assign_ids(doc)
    first = next(iter(read_structure(doc).tasks))
    lst = fragment(doc).children[2]
    copy = lst.children.append(XmlElement("taskItem", {"id": first, "checked": False}))
    copy.children.append(XmlElement("paragraph", {}, [XmlText("pasted copy")]))
    assert missing_ids(doc)
    assert assign_ids(doc)
    ids = list(read_structure(doc).tasks)
    assert ids[0] == first and len(set(ids)) == len(ids) == 4


def test_ids_survive_undo_and_redo() -> None:
    doc = written(plan())
    assign_ids(doc)
    before = read_structure(doc).tasks
    undo = UndoManager(scopes=[fragment(doc)], capture_timeout_millis=0)
    lst = fragment(doc).children[2]
    del lst.children[0]
    assert set(read_structure(doc).tasks) == set(before) - {next(iter(before))}
    undo.undo()
    assert read_structure(doc).tasks == before
    assert not missing_ids(doc)


def test_write_back_and_its_events() -> None:
    doc = written(plan())
    assign_ids(doc)
    old = read_structure(doc)
    sow = next(iter(old.tasks))
    set_task_checked(doc, sow, True)
    set_task_owner(doc, sow, Owner("user:7", "Bo", "customer"))
    set_task_due(doc, sow, "2027-02-01")
    new = read_structure(doc)
    events = {e.kind: e for e in diff(old, new)}
    # A new owner is a reassignment, not also a rewording of the text around the chip.
    assert set(events) == {Kind.COMPLETED, Kind.REASSIGNED, Kind.DUE_MOVED}
    assert events[Kind.DUE_MOVED].old == "2027-01-15" and events[Kind.DUE_MOVED].new == "2027-02-01"
    assert events[Kind.REASSIGNED].new == {"id": "user:7", "label": "Bo", "side": "customer"}
    set_task_status(doc, sow, "in_progress")
    assert [e.kind for e in diff(new, read_structure(doc))] == [Kind.REOPENED]
    set_task_owner(doc, sow, None)
    set_task_due(doc, sow, None)
    t = read_structure(doc).tasks[sow]
    assert t.owner is None and t.due is None and t.text == "Send the SOW"
    with pytest.raises(TaskNotFound):
        set_task_checked(doc, "t_nope", True)


def test_a_task_with_two_owner_chips_has_one_owner_the_first() -> None:
    # Two people assigning at once (or an older client) can leave two chips in one task.
    two = task("Kick-off", owner("CSM", "vendor"), owner("Ann Lee", "customer"))
    doc = written({"type": "doc", "content": [h(2, "Actions"), tasks(two)]})
    assign_ids(doc)
    [t] = read_structure(doc).tasks.values()
    assert t.owner == Owner("name:CSM", "CSM", "vendor")
    # Setting the owner leaves one chip, not the new one next to the stale second one ...
    set_task_owner(doc, t.id, Owner("user:7", "Bo", "customer"))
    para = to_prosemirror(doc)["content"][1]["content"][0]["content"][0]
    assert [n["attrs"]["label"] for n in para["content"] if n["type"] == "mention"] == ["Bo"]
    # ... and removing it leaves none, rather than promoting the second.
    set_task_owner(doc, t.id, Owner("user:8", "Cy", None))
    para_el = next(e for e in fragment(doc).children if e.tag == "taskList")
    item = para_el.children[0].children[0]
    item.children.append(XmlElement("mention", {"id": "name:X", "label": "X"}))
    set_task_owner(doc, t.id, None)
    assert read_structure(doc).tasks[t.id].owner is None


def test_blank_tasks_and_rows_are_not_in_the_history() -> None:
    def structure(*items: dict[str, Any], rows: list[list[str]]) -> Doc:
        kr = table(["Metric", "Baseline", "Target", "Current"], *rows)
        doc = written(
            {"type": "doc", "content": [h(2, "Actions"), tasks(*items), h(2, "KPIs"), kr]}
        )
        assign_ids(doc)
        return doc

    doc = structure(task("Send the SOW"), rows=[["Revenue", "1", "2", "1"]])
    old = read_structure(doc)
    # Enter at the end of a task, and a new table row: blank, no events (a blank row is not read).
    para = next(e for e in fragment(doc).children if e.tag == "taskList")
    para.children.append(XmlElement("taskItem", {"checked": False}, [XmlElement("paragraph")]))
    tbl = next(e for e in fragment(doc).children if e.tag == "table")
    cells = [XmlElement("tableCell", {}, [XmlElement("paragraph")]) for _ in range(4)]
    tbl.children.append(XmlElement("tableRow", {}, cells))
    assign_ids(doc)
    blank = read_structure(doc)
    assert len(blank.tasks) == 2
    assert diff(old, blank) == []
    # Written in: created, with what was written.
    para.children[1].children[0].children.append(XmlText("Invite IT"))
    cells[0].children[0].children.append(XmlText("Seats"))
    typed = read_structure(doc)
    kinds = [(e.entity, e.kind) for e in diff(blank, typed)]
    assert kinds == [(Entity.TASK, Kind.CREATED), (Entity.KEY_RESULT, Kind.CREATED)]
    # Blank ones deleted: nothing.
    assert diff(blank, old) == []


def test_row_events() -> None:
    doc = written(plan())
    assign_ids(doc)
    old = read_structure(doc)
    write_prosemirror(doc, to_prosemirror(doc))  # same content, same ids (ids are attrs)
    assert diff(old, read_structure(doc)) == []
    pm = to_prosemirror(doc)
    kpis = pm["content"][7]["content"][1]["content"]
    kpis[4]["content"][0]["content"][0]["text"] = "$12M"
    risks = pm["content"][9]["content"][1]["content"]
    risks[1]["content"][0]["content"][0]["text"] = "medium"
    write_prosemirror(doc, pm)
    kinds = [(e.entity, e.kind, e.old, e.new) for e in diff(old, read_structure(doc))]
    assert kinds == [
        (Entity.KEY_RESULT, Kind.KR_VALUE_CHANGED, "$11M", "$12M"),
        (Entity.RISK, Kind.RISK_SEVERITY_CHANGED, "high", "medium"),
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [("$10M", 10e6), ("1,200", 1200), ("45%", 45), ("3.5 days", 3.5), ("", None), ("n/a", None)],
)
def test_parse_number(text: str, value: float | None) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize("template_id", sorted(BUILT_IN))
def test_templates_are_valid_editor_content_with_structure(template_id: str) -> None:
    pm = BUILT_IN[template_id].build(date(2027, 1, 4))
    _, as_tiptap = tiptap().encode(pm)  # fails when the editor's schema would reject it
    doc = written(pm)
    assert assign_ids(doc)
    s = read_structure(doc)
    assert len(s.tasks) >= 3 and any(t.milestone for t in s.tasks.values())
    assert to_prosemirror(written(as_tiptap))["content"] == as_tiptap["content"]
    # Samples are prompts to fill in: no invented figure, no rating that would drive the status.
    for row in s.of("key_results"):
        assert [parse_number(row.get(n)) for n in ("baseline", "target", "current")] == [None] * 3
        assert row.get("metric").startswith("e.g. ") or not row.get("metric")
    for row in s.of("risks"):
        assert row.get("severity").lower() not in ("high", "medium", "low")
    if template_id == "executive-business-review":
        ninety = [t for t in s.tasks.values() if t.section[-1:] == ("90-day plan",)]
        assert len(ninety) >= 5 and all(t.owner and t.due for t in ninety)


def test_incremental_reading_matches_a_full_read_through_random_edits() -> None:
    import random

    rnd = random.Random(3)
    doc = written(plan())
    assign_ids(doc)
    reader = StructureReader(doc)
    assert reader.read() == read_structure(doc)
    for step in range(150):
        items = [e for e in _elements(doc) if e.tag == "taskItem"]
        choice = step % 6
        el = rnd.choice(items)
        para = el.children[0]
        if choice == 0:
            el.attributes["checked"] = not el.attributes.get("checked")
        elif choice == 1:
            texts = [c for c in para.children if isinstance(c, XmlText)]
            texts[0].insert(0, rnd.choice("abc "))
        elif choice == 2:
            set_task_due(
                doc, el.attributes["id"], f"2027-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)}"
            )
        elif choice == 3:
            lst = fragment(doc).children[rnd.choice([2, 5])]
            new = lst.children.append(XmlElement("taskItem", {"checked": False}))
            new.children.append(XmlElement("paragraph", {}, [XmlText(f"new {step}")]))
            assign_ids(doc)
        elif choice == 4 and len(items) > 3:
            parent = next(
                p for p in _elements(doc) if p.tag == "taskList" and el in list(p.children)
            )
            del parent.children[list(parent.children).index(el)]
        elif choice == 5:
            heading = fragment(doc).children[3]
            heading.children[0].insert(len(heading.children[0]), "")  # no-op
            cells = [e for e in _elements(doc) if e.tag == "tableCell"]
            text = rnd.choice(cells).children[0]
            text.children.append(XmlText("9")) if not text.children else text.children[0].insert(
                0, "9"
            )
        assert reader.read() == read_structure(doc), step


def _elements(doc: Doc) -> list[XmlElement]:
    out = []

    def walk(parent: Any) -> None:
        for child in parent.children:
            if isinstance(child, XmlElement):
                out.append(child)
                walk(child)

    walk(fragment(doc))
    return out


def test_blocks_added_and_removed_at_the_top_level_are_read_alone_and_stay_exact() -> None:
    """Enter in a paragraph, a pasted task list, a block deleted, a heading added: the
    incremental reader splices what it can and falls back to a full read for headings, and
    after every step it agrees with a full read, and with ``missing_ids``."""
    import random

    rnd = random.Random(11)
    doc = written(plan())
    assign_ids(doc)
    reader = StructureReader(doc)
    reader.read()
    top = fragment(doc).children
    for step in range(200):
        n = len(top)
        choice = step % 7
        at = rnd.randint(0, n)
        with doc.transaction():
            if choice in (0, 1):
                top.insert(at, XmlElement("paragraph", {}, [XmlText(f"para {step}")]))
            elif choice == 2:  # a task list pasted, one task without an id yet
                lst = top.insert(at, XmlElement("taskList"))
                item = lst.children.append(XmlElement("taskItem", {"checked": False}))
                item.children.append(XmlElement("paragraph", {}, [XmlText(f"pasted {step}")]))
            elif choice == 3 and n > 4:
                victim = rnd.randrange(n)
                del top[victim]
            elif choice == 4:  # two top-level changes in one transaction, and a text edit
                top.insert(at, XmlElement("paragraph", {}, [XmlText("a")]))
                top.insert(0, XmlElement("paragraph", {}, [XmlText("b")]))
                items = [e for e in _elements(doc) if e.tag == "taskItem"]
                if items:
                    rnd.choice(items).attributes["checked"] = True
            elif choice == 5 and step % 3 == 0:
                top.insert(at, XmlElement("heading", {"level": 2}, [XmlText("Risks")]))
            elif choice == 6:
                assign_ids(doc)
        if step % 4 == 3:  # sometimes several transactions between two reads
            continue
        assert reader.read() == read_structure(doc), step
        assert reader.needs_ids() == missing_ids(doc), step


def test_needs_ids_sees_duplicates_and_rows_of_tables_it_does_not_read() -> None:
    doc = written(plan())
    assign_ids(doc)
    reader = StructureReader(doc)
    reader.read()
    assert not reader.needs_ids()
    items = [e for e in _elements(doc) if e.tag == "taskItem"]
    items[1].attributes["id"] = items[0].attributes["id"]  # a copy-paste duplicate
    reader.read()
    assert reader.needs_ids() and missing_ids(doc)
    assign_ids(doc)
    reader.read()
    assert not reader.needs_ids()
    notes_table = [e for e in _elements(doc) if e.tag == "table"][-1]  # outside the sections
    row = notes_table.children.append(XmlElement("tableRow"))
    row.children.append(XmlElement("tableCell", {}, [XmlElement("paragraph")]))
    reader.read()
    assert reader.needs_ids() and missing_ids(doc)


@pytest.mark.parametrize("heading", ["Risks.", "Risks :", "risks::", "RISKS"])
def test_a_heading_with_trailing_punctuation_still_names_its_section(heading: str) -> None:
    # As the editor reads it (web/src/lib/sections.js sectionKind; tests/test_contracts.py).
    doc = written(
        {
            "type": "doc",
            "content": [
                h(2, heading),
                table(["Risk", "Severity"], ["Sponsor leaves", "high"]),
            ],
        }
    )
    assign_ids(doc)
    assert [r.get("risk") for r in read_structure(doc).of("risks")] == ["Sponsor leaves"]


def test_mentions_outside_owner_chips_and_when_one_is_new() -> None:
    ann, bo = (
        owner("Ann Lee", "vendor"),
        {"type": "mention", "attrs": {"id": "user:7", "label": "Bo"}},
    )
    doc = written(
        {
            "type": "doc",
            "content": [
                p("Notes: ", bo, " to check"),
                h(2, "Actions"),
                # The task's first chip is its owner; a second one is a mention in the task.
                tasks(task("Send the SOW", ann, due(date(2027, 1, 15)))),
                h(2, "Risks"),
                table(["Risk", "Severity", "Owner"], ["Sponsor leaves", "high", "Ann"]),
            ],
        }
    )
    assign_ids(doc)
    reader = StructureReader(doc)
    before = reader.read()
    [t] = before.tasks.values()
    assert [(m.ref, m.anchor, m.section, m.text) for m in before.mentions] == [
        ("user:7", "", (), "Notes: @Bo to check")
    ]
    # Bo mentioned in the task (after its owner) and in the risk's owner cell.
    item = next(e for e in _elements(doc) if e.tag == "taskItem")
    item.children[0].children.append(XmlElement("mention", {"id": "user:7", "label": "Bo"}))
    cell = [e for e in _elements(doc) if e.tag == "tableCell"][-1]
    cell.children[0].children.append(XmlElement("mention", {"id": "user:7", "label": "Bo"}))
    after = reader.read()
    assert after == read_structure(doc)
    row = next(iter(after.rows))
    assert t.owner == Owner("name:Ann Lee", "Ann Lee", "vendor")
    events = new_mentions(before, after)
    assert [(e.entity, e.kind, e.entity_id, e.old) for e in events] == [
        (Entity.MENTION, Kind.MENTIONED, "user:7", 0),
        (Entity.MENTION, Kind.MENTIONED, "user:7", 0),
    ]
    assert [(e.new["anchor"], e.new["count"], e.new["section"]) for e in events] == [
        (t.id, 1, ["Actions"]),
        (row, 1, ["Risks"]),
    ]
    # Text typed around a mention, a mention deleted: nothing. Written again: the same
    # identity as the first (anchor, person, count 1), which the outbox has seen already.
    notes = fragment(doc).children[0]
    notes.children[0].insert(0, "More ")
    typed = reader.read()
    assert new_mentions(after, typed) == [] and typed.mentions[0].text.startswith("More Notes")
    del notes.children[1]
    gone = reader.read()
    assert new_mentions(typed, gone) == []
    notes.children.append(XmlElement("mention", {"id": "user:7", "label": "Bo"}))
    [same] = new_mentions(gone, reader.read())
    assert (same.new["anchor"], same.new["count"]) == ("", 1)
    # A second mention of Bo in the notes is new: count 2.
    notes.children.append(XmlElement("mention", {"id": "user:7", "label": "Bo"}))
    [again] = new_mentions(typed, reader.read())
    assert again.new["count"] == 2 and again.new["anchor"] == ""
    assert reader.read() == read_structure(doc)


def _read_and_check(reader: StructureReader, doc: Doc, prev: Structure, step: int) -> Structure:
    """The incremental read equals a full read, and what the reader says it touched gives
    the same events, mentions and changed ids as comparing everything."""
    new = reader.read()
    assert new == read_structure(doc), step
    assert reader.needs_ids() == missing_ids(doc), step
    touched = reader.touched if reader.previous is prev else None
    assert diff(prev, new, touched) == diff(prev, new), step
    assert new_mentions(prev, new, touched) == new_mentions(prev, new), step
    assert changed_ids(prev, new, touched) == changed_ids(prev, new), step
    return new


def _table_row(*texts: str, row_id: str | None = None) -> XmlElement:
    cells = [
        XmlElement("tableCell", {}, [XmlElement("paragraph", {}, [XmlText(t)] if t else [])])
        for t in texts
    ]
    return XmlElement("tableRow", {"id": row_id} if row_id else {}, cells)


def test_tables_read_a_row_at_a_time_match_a_full_read_through_random_edits() -> None:
    """Keys typed in cells, values replaced, rows added, removed and copied, the header row
    changed, mentions written in cells, several edits in one transaction or several
    transactions between reads: the reader re-reads a row at a time (the whole table when
    the header row changes) and always agrees with a full read, diffs included."""
    import random

    rnd = random.Random(5)
    doc = written(
        {
            "type": "doc",
            "content": [
                p("Intro"),
                h(2, "Key results"),
                table(
                    ["Metric", "Baseline", "Target", "Current"],
                    *[[f"KR {i}", "0", "100", str(i)] for i in range(12)],
                ),
                p("Between ", {"type": "mention", "attrs": {"id": "user:5", "label": "Al"}}),
                h(2, "Risks"),
                table(
                    ["Risk", "Severity", "Owner"], *[[f"Risk {i}", "high", "Ann"] for i in range(6)]
                ),
                h(2, "Actions"),
                tasks(*[task(f"Task {i}") for i in range(6)]),
            ],
        }
    )
    assign_ids(doc)
    reader = StructureReader(doc)
    prev = _read_and_check(reader, doc, Structure(), -1)

    def tables() -> list[XmlElement]:
        return [e for e in _elements(doc) if e.tag == "table"]

    def cell_text(row: XmlElement, col: int) -> XmlText:
        para = row.children[min(col, len(row.children) - 1)].children[0]
        if not para.children:
            para.children.append(XmlText(""))
        text = para.children[0]
        assert isinstance(text, XmlText)
        return text

    for step in range(400):
        choice = step % 10
        tbl = rnd.choice(tables())
        rows = list(tbl.children)
        at = rnd.randrange(len(rows)) if rows else 0
        body = rnd.randrange(1, len(rows)) if len(rows) > 1 else None
        with doc.transaction():
            if choice in (0, 1) and body is not None:  # a key typed in a cell
                text = cell_text(rows[body], rnd.randrange(4))
                text.insert(rnd.randint(0, len(text)), rnd.choice("ab9 "))
            elif choice == 2 and body is not None:  # a value replaced
                text = cell_text(rows[body], 3)
                del text[0 : len(text)]
                text.insert(0, str(rnd.randrange(100)))
            elif choice == 3:  # a row added (no id yet), blank or not, anywhere
                texts = [rnd.choice(["", "x", "new"]) for _ in range(4)]
                tbl.children.insert(rnd.randint(1 if rows else 0, len(rows)), _table_row(*texts))
            elif choice == 4 and len(rows) > 3:  # a row removed, the header now and then
                del tbl.children[at if step % 40 == 4 else (body or at)]
            elif choice == 5:
                assign_ids(doc)
            elif choice == 6 and rows:  # the header changed: its columns, then back
                text = cell_text(rows[0], 0)
                if "Risk" in str(text) or "Metric" in str(text):
                    text.insert(0, "No ")
                elif str(text).startswith("No "):
                    del text[0:3]
            elif choice == 7 and body is not None:  # a mention in a cell
                para = rows[body].children[0].children[0]
                para.children.append(XmlElement("mention", {"id": "user:7", "label": "Bo"}))
            elif choice == 8 and body is not None:  # a row copied with its id, and typed in
                row = rows[body]
                copy = _table_row("copied", "1", "2", "3", row_id=row.attributes.get("id"))
                tbl.children.insert(len(rows), copy)
                cell_text(rows[body], 1).insert(0, "7")
            elif choice == 9:  # a task ticked and a plain paragraph typed in
                item = rnd.choice([e for e in _elements(doc) if e.tag == "taskItem"])
                item.attributes["checked"] = not item.attributes.get("checked")
                for para in (fragment(doc).children[0], fragment(doc).children[3]):
                    para.children[0].insert(0, "z")  # plain text, and text beside a mention
        if step % 5 == 4:  # sometimes several transactions between two reads
            continue
        prev = _read_and_check(reader, doc, prev, step)


def test_task_lists_spliced_and_ticked_give_the_same_events_as_full_reads() -> None:
    """The random task edits of the test above, with the events compared as well."""
    import random

    rnd = random.Random(9)
    doc = written(plan())
    assign_ids(doc)
    reader = StructureReader(doc)
    prev = _read_and_check(reader, doc, Structure(), -1)
    for step in range(200):
        items = [e for e in _elements(doc) if e.tag == "taskItem"]
        el = rnd.choice(items)
        lists = [e for e in _elements(doc) if e.tag == "taskList"]
        lst = rnd.choice(lists)
        choice = step % 6
        if choice == 0:
            el.attributes["checked"] = not el.attributes.get("checked")
        elif choice == 1:
            texts = [c for c in el.children[0].children if isinstance(c, XmlText)]
            if texts:
                texts[0].insert(0, rnd.choice("abc "))
            else:
                el.children[0].children.append(XmlText("abc"))
        elif choice == 2:  # Enter: a blank task without an id, anywhere in a list
            new = XmlElement("taskItem", {"checked": False}, [XmlElement("paragraph", {})])
            lst.children.insert(rnd.randint(0, len(lst.children)), new)
        elif choice == 3:
            assign_ids(doc)
            blank = [e for e in _elements(doc) if e.tag == "taskItem"]
            para = rnd.choice(blank).children[0]
            para.children.append(XmlText("typed"))
        elif choice == 4 and len(items) > 3 and len(lst.children) > 1:
            del lst.children[rnd.randrange(len(lst.children))]
        elif choice == 5:
            el.children[0].children.append(XmlElement("mention", {"id": "user:8", "label": "Cy"}))
        if step % 4 == 3:
            continue
        prev = _read_and_check(reader, doc, prev, step)


class _NoWalk(dict):  # type: ignore[type-arg]
    """A structure's tasks or rows that may be looked up but not walked."""

    def __iter__(self) -> Any:
        raise AssertionError("walked every task or row")

    keys = values = items = __iter__


def test_with_what_was_touched_the_comparisons_look_up_only_that() -> None:
    doc = written(plan())
    assign_ids(doc)
    reader = StructureReader(doc)
    before = reader.read()
    task = next(e for e in _elements(doc) if e.tag == "taskItem")
    task.attributes["checked"] = not task.attributes.get("checked")
    after = reader.read()
    touched = reader.touched
    assert touched is not None and touched.tasks == (task.attributes["id"],)
    walled = [Structure(_NoWalk(s.tasks), _NoWalk(s.rows), s.mentions) for s in (before, after)]
    events = diff(*walled, touched)
    assert events == diff(before, after) and len(events) == 1
    assert changed_ids(*walled, touched) == changed_ids(before, after)
    assert new_mentions(*walled, touched) == []

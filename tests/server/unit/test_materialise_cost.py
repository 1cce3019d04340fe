"""What the materialiser's computation costs for one edit, counted, not timed: the rows and
tasks read and the tasks and rows compared stay the same however big the plan is (issue 16,
"cost in proportion to the change")."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pycrdt import Doc, XmlElement, XmlText

import crdt
import crdt.changes
import crdt.reader
from crdt.structure import Row, Task, assign_ids
from crdt.templates import due, h, owner, p, table, task, tasks
from server.plan.projection import Shadow, advance

NOW = datetime(2026, 12, 6, tzinfo=UTC)
BO = {"type": "mention", "attrs": {"id": "user:7", "label": "Bo"}}


def plan(n: int, mentions: int = 3) -> dict[str, Any]:
    """n tasks in lists of 25, a key results table of n rows, a long paragraph with
    ``mentions`` mentions, a long plain paragraph."""
    items = [
        task(f"Task {i} text", owner("CSM", "vendor"), due(date(2027, 1, 1))) for i in range(n)
    ]
    content: list[dict[str, Any]] = [
        p(*[part for _ in range(mentions) for part in ("Notes about the call ", BO)]),
        p("A long paragraph of plain text. " * 200),
    ]
    for start in range(0, n, 25):
        content += [h(2, f"Workstream {start}"), tasks(*items[start : start + 25])]
    content += [
        h(2, "Key results"),
        table(["Metric", "Target", "Current"], *[[f"KR {i}", "100", "1"] for i in range(n)]),
    ]
    return {"type": "doc", "content": content}


def elements(doc: Doc, tag: str) -> list[XmlElement]:
    out: list[XmlElement] = []

    def walk(parent: Any) -> None:
        for child in parent.children:
            if isinstance(child, XmlElement):
                if child.tag == tag:
                    out.append(child)
                walk(child)

    walk(crdt.fragment(doc))
    return out


@contextmanager
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    seen: Counter[str] = Counter()

    def count(owner: Any, name: str, label: str | None = None) -> None:
        original = getattr(owner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            seen[label or name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)

    with monkeypatch.context() as m:
        monkeypatch = m
        count(crdt.reader, "block_text")  # per table cell read
        count(crdt.reader, "inline_text")  # per task or paragraph with mentions read
        count(crdt.reader, "_walk")  # per element walked
        count(crdt.changes, "_blank_task")  # per task compared by ``diff``
        count(Task, "__eq__", "task==")  # tasks compared (``diff``, ``changed_ids``)
        count(Row, "__eq__", "row==")
        yield seen


def cost(
    monkeypatch: pytest.MonkeyPatch, n: int, edit: Callable[[Doc], None], mentions: int = 3
) -> tuple[Counter[str], list[dict[str, Any]]]:
    doc = crdt.new_doc()
    crdt.write_prosemirror(doc, plan(n, mentions))
    assign_ids(doc)
    shadow = Shadow.replayed([(1, NOW, None, doc.get_update())], upto=1)
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(e.update))
    edit(doc)
    assert updates
    entries = [(2 + i, NOW, None, u) for i, u in enumerate(updates)]
    with counting(monkeypatch) as seen:
        step = advance(shadow, entries)
    assert shadow.structure == crdt.read_structure(doc)
    return seen, step.events + step.mentions


def tick(doc: Doc) -> None:
    items = elements(doc, "taskItem")
    items[len(items) // 2].attributes["checked"] = True


def type_in_task(doc: Doc) -> None:
    items = elements(doc, "taskItem")
    text = items[len(items) // 2].children[0].children[0]
    assert isinstance(text, XmlText)
    text.insert(len(text), "x")


def type_in_cell(doc: Doc) -> None:
    rows = elements(doc, "tableRow")
    text = rows[len(rows) // 2].children[2].children[0].children[0]
    assert isinstance(text, XmlText)
    text.insert(0, "4")


def type_in_notes(doc: Doc) -> None:
    text = crdt.fragment(doc).children[0].children[0]
    assert isinstance(text, XmlText)
    text.insert(0, "x")


def type_in_plain_paragraph(doc: Doc) -> None:
    text = crdt.fragment(doc).children[1].children[0]
    assert isinstance(text, XmlText)
    text.insert(100, "x")


@pytest.mark.parametrize(
    ("edit", "kind"),
    [(tick, "completed"), (type_in_task, "text_changed"), (type_in_cell, "kr_value_changed")],
)
def test_one_edit_reads_and_compares_as_much_in_a_big_plan_as_in_a_small_one(
    monkeypatch: pytest.MonkeyPatch, edit: Callable[[Doc], None], kind: str
) -> None:
    small, events = cost(monkeypatch, 100, edit)
    assert [e["kind"] for e in events] == [kind]
    big, events = cost(monkeypatch, 1000, edit)
    assert [e["kind"] for e in events] == [kind]
    assert big == small
    # One task or row read and compared, not the plan's hundreds.
    assert sum(small.values()) < 20, small


def test_a_keystroke_in_a_paragraph_reads_its_text_once_and_plain_text_not_at_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    few, events = cost(monkeypatch, 100, type_in_notes, mentions=3)
    assert events == []  # a mention's paragraph changed, no mention is new
    many, _ = cost(monkeypatch, 100, type_in_notes, mentions=200)
    assert few["inline_text"] == many["inline_text"] == 1  # not once per mention
    plain, _ = cost(monkeypatch, 1000, type_in_plain_paragraph)
    assert sum(plain.values()) == 0, plain  # nothing read: no structure in or from it


def test_a_mention_typed_into_a_plain_paragraph_is_still_seen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def mention(doc: Doc) -> None:
        para = crdt.fragment(doc).children[1]
        para.children.insert(1, XmlElement("mention", {"id": "user:9", "label": "Cy"}))

    _, events = cost(monkeypatch, 100, mention)
    assert [(e["kind"], e["entity_id"]) for e in events] == [("mentioned", "user:9")]


def add_row_near_the_end(doc: Doc) -> None:
    table_el = elements(doc, "table")[-1]
    cells = [
        XmlElement("tableCell", {}, [XmlElement("paragraph", {}, [XmlText(text)])])
        for text in ("KR new", "50", "5")
    ]
    table_el.children.insert(
        len(table_el.children) - 2, XmlElement("tableRow", {"id": "r_new"}, cells)
    )


def test_a_row_added_costs_what_follows_it_not_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """A row added moves the rows after it (their positions change, so they are compared and
    written): near the end of a long table, that is two rows whatever the plan's size."""
    small, events = cost(monkeypatch, 100, add_row_near_the_end)
    assert [(e["kind"], e["entity_id"]) for e in events] == [("created", "r_new")]
    big, _ = cost(monkeypatch, 1000, add_row_near_the_end)
    assert big == small
    assert sum(small.values()) < 30, small

"""Materialisation cost per change on plans of several sizes: p50/p99, wall and CPU.

Run by hand:
  .venv/bin/python bench/materialise.py [--sizes 100,1000,5000] [--plan tasks|tables|added|all]
                                        [--changes 300] [--write]

Each change is one logged update like an editor sends, taken in alone, as the materialiser does
when edits arrive one at a time. Plans:
  tasks   - N tasks in task lists of 25 under workstream headings, and a 10-row key results
            table; changes: a tick, a date moved, a key typed in a task
  tables  - a key results table of N rows and a risks table of N/10 rows, a few tasks;
            changes: a key typed in a cell, a cell's value replaced (the current value)
  added   - the tables plan; changes: a filled-in row (with its id) added two rows before
            the end of the key results table: the rows after it move, and are written
Measured:
  compute  - apply the update to the shadow document, read the structure, diff
             (server/plan/projection.py ``advance``): wall (perf_counter) and CPU
             (process_time) per change
  write    - with --write, the one-transaction write of rows and audit events (SQLite)
A flat compute column across sizes is what "cost in proportion to the change" means.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pycrdt import Doc, XmlElement, XmlText  # noqa: E402

import crdt  # noqa: E402
import persistence  # noqa: E402
from crdt.structure import assign_ids  # noqa: E402
from crdt.templates import due, h, owner, table, task, tasks  # noqa: E402
from server.plan.materialise import write_step  # noqa: E402
from server.plan.projection import Shadow, advance  # noqa: E402


def task_plan(n: int) -> dict:
    items = [
        task(
            f"Task number {i} with a sentence of text",
            owner("CSM", "vendor"),
            due(date(2027, 1, 1 + i % 28)),
        )
        for i in range(n)
    ]
    content = []
    for start in range(0, n, 25):
        content += [h(2, f"Workstream {start // 25 + 1}"), tasks(*items[start : start + 25])]
    content += [
        h(2, "Key results"),
        table(
            ["Metric", "Baseline", "Target", "Current"],
            *[[f"KR {i}", "0", "100", "10"] for i in range(10)],
        ),
    ]
    return {"type": "doc", "content": content}


def table_plan(n: int) -> dict:
    return {
        "type": "doc",
        "content": [
            h(2, "Actions"),
            tasks(*[task(f"Task {i}", owner("CSM", "vendor")) for i in range(5)]),
            h(2, "Key results"),
            table(
                ["Metric", "Baseline", "Target", "Current"],
                *[[f"KR {i} of the plan", "0", "100", str(i % 90)] for i in range(n)],
            ),
            h(2, "Risks"),
            table(
                ["Risk", "Severity", "Owner", "Mitigation"],
                *[[f"Risk {i}", "high", "Ann", "Weekly check-in"] for i in range(max(1, n // 10))],
            ),
        ],
    }


def elements(parent: Any, tag: str) -> list[XmlElement]:
    out: list[XmlElement] = []

    def walk(el: Any) -> None:
        for c in el.children:
            if isinstance(c, XmlElement):
                if c.tag == tag:
                    out.append(c)
                walk(c)

    walk(parent)
    return out


def cell_text(row: XmlElement, col: int) -> XmlText:
    para = row.children[col].children[0]
    if not para.children:
        para.children.append(XmlText(""))
    text = para.children[0]
    assert isinstance(text, XmlText)
    return text


def task_change(editor: Doc, rnd: random.Random, i: int, items: list[XmlElement]) -> None:
    el = items[rnd.randrange(len(items))]
    kind = i % 3
    if kind == 0:
        el.attributes["checked"] = not el.attributes.get("checked")
    elif kind == 1:
        chip = next(
            c for c in el.children[0].children if isinstance(c, XmlElement) and c.tag == "dueDate"
        )
        chip.attributes["date"] = f"2027-02-{1 + i % 28:02d}"
    else:
        text = el.children[0].children[0]
        assert isinstance(text, XmlText)
        text.insert(len(text), "x")


def table_change(editor: Doc, rnd: random.Random, i: int, rows: list[XmlElement]) -> None:
    row = rows[rnd.randrange(len(rows))]
    if i % 2 == 0:
        text = cell_text(row, 0)
        text.insert(len(text), "x")
    else:
        text = cell_text(row, 3)
        with editor.transaction():
            del text[0 : len(text)]
            text.insert(0, str(rnd.randrange(100)))


def add_row(editor: Doc, rnd: random.Random, i: int, rows: list[XmlElement]) -> None:
    table_el = rows[0].parent
    assert isinstance(table_el, XmlElement)
    cells = [
        XmlElement("tableCell", {}, [XmlElement("paragraph", {}, [XmlText(text)])])
        for text in (f"KR added {i}", "0", "100", "1")
    ]
    row = XmlElement("tableRow", {"id": f"r_added{i}"}, cells)
    table_el.children.insert(len(table_el.children) - 2, row)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run(kind: str, n: int, changes: int, write: bool) -> dict[str, list[float]]:
    editor = crdt.new_doc()
    crdt.write_prosemirror(editor, task_plan(n) if kind == "tasks" else table_plan(n))
    assign_ids(editor)
    updates: list[bytes] = []
    editor.observe(lambda e: updates.append(e.update))

    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite:///{tmp / 'bench.db'}"
    persistence.upgrade(url)
    factory = persistence.make_sessionmaker(persistence.make_engine(url))
    # The server writes materialised rows as derived data (no fsync at commit): so does this.
    derived = persistence.make_sessionmaker(persistence.make_engine(url, durable=False))
    with persistence.transaction(factory) as s:
        plan_id = persistence.create_plan(
            session=s, title="bench", customer="bench", created_by=None
        ).id
        (first,) = persistence.append_updates(
            session=s, plan_id=plan_id, entries=[(None, editor.get_update())]
        )

    shadow = Shadow.empty()
    step = advance(shadow, [(first, datetime.now(UTC), None, editor.get_update())])
    with persistence.transaction(factory) as s:
        write_step(s, plan_id, step)

    rnd = random.Random(7)
    if kind == "tasks":
        targets = elements(crdt.fragment(editor), "taskItem")
        change = task_change
    else:
        big = elements(crdt.fragment(editor), "table")[0]
        targets = [r for r in big.children if isinstance(r, XmlElement)][1:]
        change = table_change if kind == "tables" else add_row
    out: dict[str, list[float]] = {"compute": [], "cpu": [], "write": []}
    for i in range(changes):
        change(editor, rnd, i, targets)
        update = updates.pop()
        log_id = first + 1 + i
        if write:
            with persistence.transaction(factory) as s:
                (log_id,) = persistence.append_updates(
                    session=s, plan_id=plan_id, entries=[(None, update)]
                )
        c0, t0 = time.process_time(), time.perf_counter()
        step = advance(shadow, [(log_id, datetime.now(UTC), None, update)])
        t1, c1 = time.perf_counter(), time.process_time()
        if write:
            with persistence.transaction(derived) as s:
                assert write_step(s, plan_id, step)
        t2 = time.perf_counter()
        out["compute"].append((t1 - t0) * 1000)
        out["cpu"].append((c1 - c0) * 1000)
        out["write"].append((t2 - t1) * 1000)
    assert shadow.structure == crdt.read_structure(editor)  # the incremental read is exact
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,5000", help="plan sizes (tasks or table rows)")
    ap.add_argument("--tasks", type=int, help="one size (as before --sizes)")
    ap.add_argument("--plan", choices=("tasks", "tables", "added", "all"), default="all")
    ap.add_argument("--changes", type=int, default=300)
    ap.add_argument("--write", action="store_true", help="also time the SQLite write")
    args = ap.parse_args()
    sizes = [args.tasks] if args.tasks else [int(s) for s in args.sizes.split(",")]
    kinds = ("tasks", "tables", "added") if args.plan == "all" else (args.plan,)
    print(f"{args.changes} changes per plan, one update per materialisation; ms per change")
    print(
        "| plan | size | compute wall p50 | p99 | compute CPU p50 | p99 |"
        + (" write p50 | p99 |" if args.write else "")
    )
    print("|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if args.write else ""))
    for kind in kinds:
        for n in sizes:
            r = run(kind, n, args.changes, args.write)
            line = f"| {kind} | {n} |"
            for name in ("compute", "cpu") + (("write",) if args.write else ()):
                line += f" {statistics.median(r[name]):.3f} | {pct(r[name], 99):.3f} |"
            print(line, flush=True)


if __name__ == "__main__":
    main()

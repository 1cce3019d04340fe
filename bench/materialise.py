"""Materialisation cost per change on a plan with N tasks (default 500): p50/p99.

Run by hand: .venv/bin/python bench/materialise.py [--tasks 500] [--changes 300]

Each change is one logged update like an editor sends (a tick, a date moved, a key typed in a
task), taken in alone, as the materialiser does when edits arrive one at a time. Measured:
  compute  - apply the update to the shadow document, read the structure, diff
             (server/plan/projection.py)
  write    - the one-transaction write of rows and audit events (SQLite file, WAL, fsync on)
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pycrdt import XmlElement, XmlText  # noqa: E402

import crdt  # noqa: E402
import persistence  # noqa: E402
from crdt.structure import assign_ids  # noqa: E402
from crdt.templates import due, h, owner, table, task, tasks  # noqa: E402
from server.plan.materialise import write_step  # noqa: E402
from server.plan.projection import Shadow, advance  # noqa: E402


def plan(n: int) -> dict:
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


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=500)
    ap.add_argument("--changes", type=int, default=300)
    args = ap.parse_args()

    editor = crdt.new_doc()
    crdt.write_prosemirror(editor, plan(args.tasks))
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
    items = []

    def walk(el: object) -> None:
        for c in el.children:  # type: ignore[attr-defined]
            if isinstance(c, XmlElement):
                if c.tag == "taskItem":
                    items.append(c)
                walk(c)

    walk(crdt.fragment(editor))
    compute: list[float] = []
    write: list[float] = []
    for i in range(args.changes):
        el = items[rnd.randrange(len(items))]
        kind = i % 3
        if kind == 0:
            el.attributes["checked"] = not el.attributes.get("checked")
        elif kind == 1:
            chip = next(
                c
                for c in el.children[0].children
                if isinstance(c, XmlElement) and c.tag == "dueDate"
            )
            chip.attributes["date"] = f"2027-02-{1 + i % 28:02d}"
        else:
            text = el.children[0].children[0]
            assert isinstance(text, XmlText)
            text.insert(len(text), "x")
        update = updates.pop()
        with persistence.transaction(factory) as s:
            (log_id,) = persistence.append_updates(
                session=s, plan_id=plan_id, entries=[(None, update)]
            )
        t0 = time.perf_counter()
        step = advance(shadow, [(log_id, datetime.now(UTC), None, update)])
        t1 = time.perf_counter()
        with persistence.transaction(derived) as s:
            assert write_step(s, plan_id, step)
        t2 = time.perf_counter()
        compute.append((t1 - t0) * 1000)
        write.append((t2 - t1) * 1000)

    total = [a + b for a, b in zip(compute, write, strict=True)]
    print(f"plan with {args.tasks} tasks, {args.changes} changes, one update per materialisation")
    for name, values in (("compute", compute), ("write", write), ("total", total)):
        print(
            f"  {name:8s} p50 {statistics.median(values):7.2f} ms   p99 {pct(values, 99):7.2f} ms"
        )


if __name__ == "__main__":
    main()

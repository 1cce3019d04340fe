"""The plan at a moment and the timeline's first page, in process, on a copy of a kept bench
database: to compare two versions of Tandem's code on the same plan under the same load.

    .venv/bin/python bench/history.py --updates 100000 --rounds 1 --keep   # keeps its data dir
    cp <data dir>/tandem-data/tandem.db /tmp/a.db; cp /tmp/a.db /tmp/b.db
    git archive <old commit> | tar -x -C /tmp/old
    (cd /tmp/old && python /path/to/bench/history_inprocess.py /tmp/old /tmp/a.db old 1)
    python bench/history_inprocess.py . /tmp/b.db new 1

Alternate the two, round after round (the seed draws the moments): the machine's load moves.
Each run deletes the derived history first (segments or snapshots, cached sessions), then
reads 40 random moments as GET /document?format=json does without HTTP (the document, its
ProseMirror JSON, serialised), cold and again warm, then the timeline's first page twice.
"""

import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import time

tree, db, label = sys.argv[1], sys.argv[2], sys.argv[3]
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 7
sys.path.insert(0, os.path.abspath(tree))

import crdt  # noqa: E402
from server import plan as domain  # noqa: E402
from server.plan import history  # noqa: E402
from server.store import Store  # noqa: E402


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def main() -> None:
    con = sqlite3.connect(db)
    plan_id, first, last = con.execute(
        "SELECT plan_id, min(id), max(id) FROM plan_updates WHERE doc = 'plan'"
        " GROUP BY plan_id ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()
    con.execute("DELETE FROM history_snapshots")
    con.execute("DELETE FROM history_sessions")
    con.commit()
    store = Store.from_url(f"sqlite:///{db}")
    rnd = random.Random(seed)
    moments = [rnd.randint(first, last) for _ in range(40)]
    segmented = hasattr(history, "keep_segments")

    async def one(m: int) -> float:
        t0 = time.perf_counter()
        if segmented:
            d = await domain.doc_at(store, plan_id, m)
        else:
            d = crdt.doc_from_updates([await domain.state_at(store, plan_id, m)])
        json.dumps(crdt.to_prosemirror(d))
        return (time.perf_counter() - t0) * 1e3

    cold = [await one(m) for m in moments]
    warm = [await one(m) for m in moments]
    t0 = time.perf_counter()
    await domain.sessions_page(store, plan_id, limit=20)
    h1 = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    await domain.sessions_page(store, plan_id, limit=20)
    h2 = (time.perf_counter() - t0) * 1e3
    rows, stored = con.execute(
        "SELECT count(*), coalesce(sum(length(state)), 0) FROM history_snapshots WHERE plan_id = ?",
        (plan_id,),
    ).fetchone()
    log_bytes = con.execute(
        "SELECT sum(length(data)) FROM plan_updates WHERE plan_id = ?", (plan_id,)
    ).fetchone()[0]
    print(
        f"{label}: load {os.getloadavg()[0]:.1f} | cold first {cold[0]:.0f}, "
        f"p50 {statistics.median(cold):.0f}, p95 {pct(cold, 95):.0f}, max {max(cold):.0f} ms "
        f"| warm p50 {statistics.median(warm):.0f}, p95 {pct(warm, 95):.0f} ms "
        f"| timeline first page {h1:.0f} ms, again {h2:.0f} ms "
        f"| stored {stored:,} B in {rows} rows = {stored / log_bytes:.0%} of the log",
        flush=True,
    )


asyncio.run(main())

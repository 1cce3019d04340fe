"""Version history on big plans: the plan at a random moment, a whole-life comparison, the
timeline's first page, the handover brief in PDF, and the storage history adds.

Run by hand: .venv/bin/python bench/history.py --updates 20000,100000 --rounds 3

For each plan size: Tandem starts fresh (`python -m server serve` in its own process group, a
temporary data directory, users and API tokens through its CLI and invitations). The owner
creates a plan from the joint success plan template (tasks with owners and due dates,
milestones, key results, risks) and invites three editors, two vendor-side and one on the
customer's side. Then the four of them, each a pycrdt client over the websocket, take turns
editing it in bursts until the log holds the number of updates asked for: mostly typing (one
update per keystroke batch of 1-8 characters, a new paragraph now and then, a new section
heading every few hundred edits), and about one edit in 40 a structured change: a task ticked
or reopened, a due date moved, a task added. Named versions are made along the way. Each burst
waits until the server has logged all of it before the next author starts, so the server is
never flooded. The log is exactly what those clients sent: nothing is written behind the
server's back.

Then, in each round, the server is stopped, the history it derived so far is deleted (the log's
history segments and cached sessions: derived data, see README "Version history"), and it is
started again. Over HTTP with the owner's token:

  cold     - GET /document?upto=<random log id>&format=json, each moment read once, in order
             of drawing; the first read of a round merges the log into segments up to its
             moment (a live server's worker keeps them as the log grows, so this is the worst
             case: reported on its own), the later ones find them there
  warm     - the same moments read again
  changes  - GET /changes?from=u<first>&to=u<last> (the whole life), first call and repeats
  history  - GET /history (first page), first call (works out that page's sessions and caches
             them) and repeats
  brief    - GET /brief?format=pdf, first call and repeats

Storage, at the end: the bytes of the plan's update log against those of the history tables
(history_snapshots, which holds the segments, history_sessions, plan_versions), both as the
payload of their columns and, when SQLite has dbstat, as the pages the tables use.

Every request has a time limit; the server is killed as a group and its temporary directory
removed however the run ends. Load average is printed with each round: the figures move with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx
import websockets
from pycrdt import Doc, Provider, XmlElement, XmlFragment, XmlText

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import Tandem, log  # noqa: E402

from crdt.prosemirror import _write_children  # noqa: E402
from crdt.structure import new_id  # noqa: E402
from crdt.templates import due, owner, task  # noqa: E402

PASSWORD = "correct horse battery"
AUTHORS = [  # (email, name, side); the first one owns the plan
    ("bench@example.com", "Bench Owner", "vendor"),
    ("dana@vendor.example", "Dana Vendor", "vendor"),
    ("ravi@vendor.example", "Ravi Vendor", "vendor"),
    ("cora@customer.example", "Cora Customer", "customer"),
]
REQUEST_TIMEOUT = 300.0
SENTENCE = (
    "the customer agreed to roll out the new workflow to the regional teams once the pilot "
    "shows adoption above target and the data migration is signed off by their IT lead"
)
WORDS = SENTENCE.split()


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


# --- the clients -------------------------------------------------------------------------------


class Channel:
    """pycrdt's Channel protocol over a `websockets` client connection."""

    def __init__(self, ws: websockets.ClientConnection, path: str) -> None:
        self.ws = ws
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> Channel:
        return self

    async def __anext__(self) -> bytes:
        try:
            message = await self.ws.recv()
        except websockets.ConnectionClosed:
            raise StopAsyncIteration from None
        assert isinstance(message, bytes)
        return message

    async def send(self, message: bytes) -> None:
        await self.ws.send(message)

    async def recv(self) -> bytes:
        return await self.__anext__()


@asynccontextmanager
async def connect(ws_base: str, plan_id: str, token: str) -> AsyncIterator[Doc]:
    doc = Doc()
    url = f"{ws_base}/{plan_id}?token={token}"
    async with (
        websockets.connect(url, max_size=None, compression=None) as ws,
        Provider(doc, Channel(ws, url)) as provider,
    ):
        await asyncio.wait_for(provider.synced.wait(), 30)
        yield doc


def fragment(doc: Doc) -> XmlFragment:
    return doc.get("default", type=XmlFragment)


def _elements(el: XmlFragment | XmlElement, tag: str, out: list[XmlElement]) -> list[XmlElement]:
    for c in el.children:
        if isinstance(c, XmlElement):
            if c.tag == tag:
                out.append(c)
            _elements(c, tag, out)
    return out


@dataclass
class Author:
    doc: Doc
    name: str
    side: str
    text: XmlText | None = None
    words: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def _count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def edit(self, rnd: random.Random, n: int) -> None:
        """One transaction, as an editor sends one: mostly typing, now and then a structured
        change to the plan's commitments."""
        frag = fragment(self.doc)
        if rnd.random() < 1 / 40:
            with self.doc.transaction():
                self._structured(rnd, frag, n)
            return
        with self.doc.transaction():
            if n % 400 == 0:
                _write_children(
                    frag,
                    [
                        {
                            "type": "heading",
                            "attrs": {"level": 2},
                            "content": [{"type": "text", "text": f"Notes {n // 400}"}],
                        }
                    ],
                )
                self._count("heading")
            if self.text is None or rnd.random() < 1 / 40:
                para = frag.children.append(XmlElement("paragraph", {}, [XmlText()]))
                self.text = para.children[0]  # type: ignore[assignment]
                self._count("paragraph")
            text = self.text
            assert text is not None
            word = WORDS[self.words % len(WORDS)]
            self.words += 1
            chunk = word[: rnd.randint(1, 8)] + " "
            text.insert(len(text), chunk)
            self._count("typing")

    def _structured(self, rnd: random.Random, frag: XmlFragment, n: int) -> None:
        items = _elements(frag, "taskItem", [])
        kind = rnd.random()
        if kind < 0.4 and items:
            el = rnd.choice(items)
            el.attributes["checked"] = not el.attributes.get("checked")
            self._count("tick")
        elif kind < 0.8:
            chips = _elements(frag, "dueDate", [])
            if chips:
                chip = rnd.choice(chips)
                old = date.fromisoformat(str(chip.attributes.get("date")))
                chip.attributes["date"] = (
                    old + timedelta(days=rnd.choice([-3, 7, 14]))
                ).isoformat()
                self._count("due moved")
        else:
            lists = _elements(frag, "taskList", [])
            if lists:
                side = rnd.choice(["vendor", "customer"])
                item = task(
                    f"Follow-up {n} from {self.name}",
                    owner(self.name, side),
                    due(date.today() + timedelta(days=rnd.randint(5, 60))),
                )
                item["attrs"]["id"] = new_id("t_")  # the editor gives each new task its id
                _write_children(rnd.choice(lists), [item])
                self._count("task added")


# --- the server --------------------------------------------------------------------------------


class HistoryTandem(Tandem):
    def db_path(self) -> str:
        return self.database_url.removeprefix("sqlite:///")

    def sql(self, query: str, *params: object) -> list[tuple]:
        with contextlib.closing(sqlite3.connect(self.db_path(), timeout=30)) as db:
            rows = db.execute(query, params).fetchall()
            db.commit()
            return rows

    def cli(self, args: list[str], stdin: str | None = None) -> str:
        return self._cli(args, stdin)


def invite(server: HistoryTandem, owner: httpx.Client, plan_id: str) -> dict[str, str]:
    tokens = {AUTHORS[0][0]: server.token}
    for email, name, side in AUTHORS[1:]:
        r = owner.post(
            f"/api/plans/{plan_id}/members", json={"email": email, "role": "editor", "side": side}
        )
        r.raise_for_status()
        path = "/" + r.json()["url"].split("://", 1)[1].split("/", 1)[1]
        with httpx.Client(base_url=server.http, timeout=30) as c:
            done = c.post(path, data={"name": name, "password": PASSWORD, "confirm": PASSWORD})
            if done.status_code != 303:
                raise RuntimeError(f"joining as {email}: {done.status_code} {done.text[:200]}")
        tokens[email] = server.cli(["tokens", "create", email]).strip().splitlines()[0]
    return tokens


async def build(
    server: HistoryTandem, owner: httpx.Client, plan_id: str, tokens: dict[str, str], n: int
) -> dict:
    rnd = random.Random(n)
    logged = lambda: server.persisted_updates(plan_id) or 0  # noqa: E731
    t0 = time.monotonic()
    versions = 0
    async with AsyncExitStack() as stack:
        authors = []
        for email, name, side in AUTHORS:
            doc = await stack.enter_async_context(connect(server.ws_url, plan_id, tokens[email]))
            authors.append(Author(doc, name, side))
        have = logged()
        turn = 0
        next_version = n // 4
        while have < n:
            a = authors[turn % len(authors)]
            turn += 1
            burst = min(rnd.randint(100, 400), n - have)
            for _ in range(burst):
                a.edit(rnd, have)
                have += 1
                await asyncio.sleep(0)  # let the provider send it
            deadline = time.monotonic() + 120
            while (seen := logged()) < have:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server logged {seen} of {have} updates after 120 s")
                await asyncio.sleep(0.02)
            have = seen
            if have >= next_version and versions < 3:
                r = owner.post(f"/api/plans/{plan_id}/versions", json={"name": f"Q{versions + 1}"})
                r.raise_for_status()
                versions += 1
                next_version += n // 4
                have = logged()
            if turn % 20 == 0:
                log(f"  {have:,} / {n:,} updates logged ({time.monotonic() - t0:.0f} s)")
        counts: dict[str, int] = {}
        for a in authors:
            for k, v in a.counts.items():
                counts[k] = counts.get(k, 0) + v
    return {"seconds": time.monotonic() - t0, "counts": counts, "versions": versions}


# --- measuring ---------------------------------------------------------------------------------


def timed(http: httpx.Client, url: str) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    r = http.get(url)
    ms = (time.perf_counter() - t0) * 1000
    if r.status_code != 200:
        raise RuntimeError(f"GET {url}: {r.status_code} {r.text[:300]}")
    return ms, r


def one_round(server: HistoryTandem, plan_id: str, moments: list[int], args) -> dict:
    server.stop()
    server.sql("DELETE FROM history_snapshots")
    server.sql("DELETE FROM history_sessions")
    server.start()
    out: dict = {"load": loadavg()}
    base = f"/api/plans/{plan_id}"
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.http, headers=headers, timeout=REQUEST_TIMEOUT) as http:
        first, last = server.sql(
            "SELECT min(id), max(id) FROM plan_updates WHERE plan_id = ? AND doc = 'plan'",
            plan_id,
        )[0]
        out["cold"] = [timed(http, f"{base}/document?format=json&upto={m}")[0] for m in moments]
        out["warm"] = [timed(http, f"{base}/document?format=json&upto={m}")[0] for m in moments]
        changes = [
            timed(http, f"{base}/changes?from=u{first}&to=u{last}") for _ in range(args.repeats)
        ]
        out["changes"] = [ms for ms, _ in changes]
        out["changes_body"] = changes[-1][1].json()
        hist = [timed(http, f"{base}/history") for _ in range(args.repeats)]
        out["history"] = [ms for ms, _ in hist]
        out["history_body"] = hist[-1][1].json()
        briefs = [timed(http, f"{base}/brief?format=pdf") for _ in range(args.repeats)]
        out["brief"] = [ms for ms, _ in briefs]
        out["brief_bytes"] = len(briefs[-1][1].content)
    return out


def storage(server: HistoryTandem, plan_id: str) -> dict:
    q = server.sql
    out = {
        "log": q(
            "SELECT coalesce(sum(length(data)), 0) FROM plan_updates WHERE plan_id = ?", plan_id
        )[0][0],
        "log_rows": q("SELECT count(*) FROM plan_updates WHERE plan_id = ?", plan_id)[0][0],
        "history_snapshots": q(
            "SELECT coalesce(sum(length(state)), 0), count(*) FROM history_snapshots"
        )[0],
        "checkpoints": q("SELECT coalesce(sum(length(state)), 0), count(*) FROM checkpoints")[0],
    }
    for table in ("history_sessions", "plan_versions"):
        cols = [r[1] for r in q(f"PRAGMA table_info({table})")]
        expr = " + ".join(f"coalesce(length({c}), 0)" for c in cols)
        out[table] = q(f"SELECT coalesce(sum({expr}), 0), count(*) FROM {table}")[0]
    try:
        pages = dict(
            q(
                "SELECT name, sum(pgsize) FROM dbstat WHERE name IN "
                "('plan_updates', 'history_snapshots', 'history_sessions', 'plan_versions') "
                "GROUP BY name"
            )
        )
        out["pages"] = pages
    except sqlite3.OperationalError:
        out["pages"] = None
    return out


def cell(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} / {pct(values, 95):.0f}"


def report(n: int, built: dict, rounds: list[dict], store: dict, args) -> None:
    print(f"\n### {n:,} updates\n")
    print(
        f"Built in {built['seconds']:.0f} s by {len(AUTHORS)} pycrdt clients over the websocket "
        f"({n / built['seconds']:.0f} updates/s); edits: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(built["counts"].items()))
        + f"; named versions {built['versions']}.\n"
    )
    print(
        f"| round | load avg (1/5/15 min) | at a moment, cold p50 / p95 ms ({args.moments}) "
        "| warm p50 / p95 ms | whole-life /changes first, then p50 ms "
        "| /history first page first, then p50 ms | brief PDF first, then p50 ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for i, r in enumerate(rounds, 1):
        rest = lambda v: statistics.median(v[1:]) if len(v) > 1 else v[0]  # noqa: E731
        print(
            f"| {i} | {r['load']} | {cell(r['cold'])} | {cell(r['warm'])} "
            f"| {r['changes'][0]:.0f}, {rest(r['changes']):.0f} "
            f"| {r['history'][0]:.0f}, {rest(r['history']):.0f} "
            f"| {r['brief'][0]:.0f}, {rest(r['brief']):.0f} |"
        )
    allcold = [x for r in rounds for x in r["cold"]]
    allwarm = [x for r in rounds for x in r["warm"]]
    print(
        "\nFirst cold read of each round (it merges the log into segments up to its moment): "
        + ", ".join(f"{r['cold'][0]:.0f} ms" for r in rounds)
    )
    print(
        f"\nAll rounds: cold p50 {statistics.median(allcold):.0f} ms, p95 "
        f"{pct(allcold, 95):.0f} ms, max {max(allcold):.0f} ms; warm p50 "
        f"{statistics.median(allwarm):.0f} ms, p95 {pct(allwarm, 95):.0f} ms."
    )
    body = rounds[-1]["changes_body"]
    summary = {k: len(v) for k, v in body.items() if isinstance(v, list)}
    print(f"Whole-life comparison lists: {summary}")
    hist = rounds[-1]["history_body"]
    sessions = hist.get("sessions") if isinstance(hist, dict) else None
    print(
        f"History first page: {len(sessions) if sessions is not None else '?'} sessions; "
        f"brief PDF {rounds[-1]['brief_bytes']:,} bytes."
    )
    log_bytes = store["log"]
    snap, nsnap = store["history_snapshots"]
    sess, nsess = store["history_sessions"]
    vers, nvers = store["plan_versions"]
    added = snap + sess + vers
    print(
        f"\nStorage: update log {log_bytes:,} bytes in {store['log_rows']:,} rows; history "
        f"{added:,} bytes ({added / log_bytes:.0%} of the log): segments {snap:,} ({nsnap}), "
        f"sessions {sess:,} ({nsess}), versions {vers:,} ({nvers}); room checkpoints "
        f"{store['checkpoints'][0]:,} ({store['checkpoints'][1]}), not history's."
    )
    if store["pages"]:
        print(f"Pages (dbstat): {store['pages']}")


def run_size(n: int, args) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="tandem-history-bench-"))
    server: HistoryTandem | None = None
    plan_id = "?"
    try:
        server = HistoryTandem(workdir)
        server.start()
        headers = {"Authorization": f"Bearer {server.token}"}
        with httpx.Client(base_url=server.http, headers=headers, timeout=60) as owner:
            r = owner.post(
                "/api/plans",
                json={
                    "title": "Acme rollout",
                    "customer": "Acme",
                    "template": "joint-success-plan",
                },
            )
            r.raise_for_status()
            plan_id = r.json()["id"]
            tokens = invite(server, owner, plan_id)
            log(f"{n:,} updates: building (load average {loadavg()})")
            built = asyncio.run(
                asyncio.wait_for(build(server, owner, plan_id, tokens, n), args.build_timeout)
            )
        last = server.sql("SELECT max(id) FROM plan_updates WHERE plan_id = ?", plan_id)[0][0]
        first = server.sql("SELECT min(id) FROM plan_updates WHERE plan_id = ?", plan_id)[0][0]
        rounds = []
        for i in range(args.rounds):
            rnd = random.Random(1000 * i + n)
            moments = [rnd.randint(first, last) for _ in range(args.moments)]
            log(f"{n:,} updates: round {i + 1} (load average {loadavg()})")
            rounds.append(one_round(server, plan_id, moments, args))
        report(n, built, rounds, storage(server, plan_id), args)
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            log(f"kept the data directory: {workdir} (plan {plan_id})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--updates", default="20000,100000", help="plan sizes, comma-separated")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--moments", type=int, default=40, help="random moments read per round")
    ap.add_argument("--repeats", type=int, default=3, help="calls of /changes, /history, brief")
    ap.add_argument("--build-timeout", type=float, default=3600)
    ap.add_argument(
        "--keep", action="store_true", help="keep the temporary data directory (to profile)"
    )
    args = ap.parse_args()
    # A SIGTERM unwinds through the finally blocks (server stopped, temp dir removed) as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"Load average at start: {loadavg()}")
    for n in [int(x) for x in args.updates.split(",")]:
        run_size(n, args)


if __name__ == "__main__":
    main()

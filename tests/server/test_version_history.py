"""Version history over a real server and real clients: the plan at a moment equals what the
clients held then, named versions, restore through the live room, commitment changes between
two points, "since your last visit", and who may read any of it."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa
from pycrdt import XmlElement, XmlText

import crdt
import persistence
from tests.server.test_node_client import node_client
from tests.support.access import PASSWORD, create_link, invite_and_join, sign_in, visit
from tests.support.access import api as client
from tests.support.servers import Database, Server
from tests.support.yclient import connect, fragment

pytestmark = pytest.mark.anyio


def api(server: Server, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(
        method, f"{server.http}{path}", headers={"Authorization": f"Bearer {token}"}, **kw
    )


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def fetched(r: httpx.Response) -> httpx.Response:
    assert r.status_code == 200, r.text
    return r


def join(server: Server, token: str, plan_id: str, email: str, name: str, role: str) -> str:
    with client(server, token) as owner:
        invite_and_join(server, owner, plan_id, email, name, role, "customer")
    return server.create_token(email)


def paragraphs_of(pm: dict[str, Any]) -> list[str]:
    out = []
    for node in pm.get("content", []):
        if node["type"] == "paragraph":
            out.append("".join(t.get("text", "") for t in node.get("content", [])))
    return out


def log_count(database: Database, plan_id: str) -> int:
    engine = persistence.make_engine(database.url)
    try:
        with persistence.make_sessionmaker(engine)() as s:
            return persistence.count_updates(session=s, plan_id=plan_id)
    finally:
        engine.dispose()


async def type_all(c: Any, texts: list[str]) -> None:
    for text in texts:  # one command at a time per client: it answers in order
        await c.call("paragraph", text=text)


async def test_the_plan_at_a_moment_is_what_the_clients_held(
    server: Server, token: str, plan_id: str
) -> None:
    """Two stock y-websocket clients and a pycrdt one type at once, round after round; after
    each round every client holds the same paragraphs, and the document at that moment (by
    time, and by the log point the answer names) is exactly those paragraphs."""
    rng = random.Random(13)
    nora = join(server, token, plan_id, "nora@customer.example", "Nora", "editor")
    nick = join(server, token, plan_id, "nick@customer.example", "Nick", "editor")
    moments: list[tuple[datetime, list[str]]] = []
    async with (
        node_client(server, plan_id, nora) as a,
        node_client(server, plan_id, nick) as b,
        connect(server.ws, plan_id, token) as (doc, _ws),
    ):
        await a.call("synced")
        await b.call("synced")
        typed: list[str] = []
        for round_ in range(12):
            batch: list[str] = []
            jobs = []
            for who, c in (("a", a), ("b", b)):
                mine = [f"{who}{round_}.{k}" for k in range(rng.randint(0, 3))]
                batch += mine
                jobs.append(type_all(c, mine))
            for k in range(rng.randint(1, 3)):
                text = f"py{round_}.{k}"
                batch.append(text)
                fragment(doc).children.append(XmlElement("paragraph", {}, [XmlText(text)]))
            await asyncio.gather(*jobs)
            typed += batch
            await a.call("waitParagraphs", texts=typed)
            await b.call("waitParagraphs", texts=typed)
            with anyio.fail_after(10):
                while len([c for c in fragment(doc).children]) < len(typed):
                    await anyio.sleep(0.02)
            held = (await a.call("state"))["paragraphs"]
            assert sorted(held) == sorted(typed)
            assert (await b.call("state"))["paragraphs"] == held
            moments.append((datetime.now(UTC), held))
    for at, held in rng.sample(moments, len(moments)):
        r = fetched(api(server, token, "GET", f"/api/plans/{plan_id}/document?at={at.isoformat()}"))
        assert paragraphs_of(r.json()) == held
        upto = r.headers["x-tandem-upto"]
        again = fetched(api(server, token, "GET", f"/api/plans/{plan_id}/document?upto={upto}"))
        assert paragraphs_of(again.json()) == held
        md = fetched(
            api(
                server,
                token,
                "GET",
                f"/api/plans/{plan_id}/document?format=markdown&upto={upto}",
            )
        ).text
        assert [line for line in md.split("\n") if line] == held


async def test_moments_that_are_not_there_are_clear_400s(
    server: Server, token: str, plan_id: str
) -> None:
    async with connect(server.ws, plan_id, token) as (doc, _ws):
        fragment(doc).children.append(XmlElement("paragraph", {}, [XmlText("hello")]))
        with anyio.fail_after(10):
            while not paragraphs_of(
                ok(api(server, token, "GET", f"/api/plans/{plan_id}/document"))
            ):
                await anyio.sleep(0.05)
    base = f"/api/plans/{plan_id}/document"
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for query, field in (
        (f"at={future}", "at"),
        ("at=2001-01-01T00:00:00Z", "at"),
        ("at=yesterday", "at"),
        ("upto=abc", "upto"),
        ("upto=1&at=2026-01-01T00:00:00Z", "at"),
        ("upto=999999999", "upto"),
        ("version=12345", "version"),
        ("format=pdf&upto=1", "format"),
    ):
        r = api(server, token, "GET", f"{base}?{query}")
        assert r.status_code in (400, 404), (query, r.text)
        assert r.json()["field"] == field, (query, r.json())
    assert "future" in api(server, token, "GET", f"{base}?at={future}").json()["error"]
    assert (
        "before the plan was created"
        in api(server, token, "GET", f"{base}?at=2001-01-01T00:00:00Z").json()["error"]
    )


async def test_versions_changes_restore_and_the_banner(
    server: Server, token: str, database: Database
) -> None:
    """Casey makes a plan from a template (its first version is named), Robin names another,
    then Robin moves a due date, reassigns a task and ticks another: the comparison lists
    exactly those three with Robin as their author. Restoring the named version is a new,
    attributed change that every open editor receives; the log only grows; a viewer may not
    restore; and Casey, opening the plan again, is told what Robin changed."""
    body = {"title": "Rollout", "customer": "Acme", "template": "onboarding-roadmap"}
    plan_id = ok(api(server, token, "POST", "/api/plans", json=body), 201)["id"]
    versions = ok(api(server, token, "GET", f"/api/plans/{plan_id}/versions"))["versions"]
    assert [v["name"] for v in versions] == ["Created from the template"]
    robin = join(server, token, plan_id, "robin@customer.example", "Robin", "editor")
    viewer = join(server, token, plan_id, "val@customer.example", "Val", "viewer")

    # Casey's first look at the plan: remembered, no banner yet.
    with httpx.Client(base_url=server.http, follow_redirects=False) as casey:
        signed_in = casey.post("/login", data={"email": "csm@vendor.example", "password": PASSWORD})
        assert signed_in.status_code == 303
        first = casey.get(f"/plans/{plan_id}")
        assert first.status_code == 200 and 'id="since-banner"' not in first.text

        named = ok(
            api(server, robin, "POST", f"/api/plans/{plan_id}/versions", json={"name": "Signed"}),
            201,
        )
        assert named["name"] == "Signed" and named["by"]["name"] == "Robin"
        before = ok(
            api(server, token, "GET", f"/api/plans/{plan_id}/document?version={named['id']}")
        )

        tasks = ok(api(server, token, "GET", f"/api/plans/{plan_id}/tasks"))["tasks"]
        plain = [t for t in tasks if t["status"] != "done" and not t["milestone"]]
        t1 = next(t for t in plain if t["due"])
        t2, t3 = [t for t in plain if t is not t1][:2]
        moved = "2031-03-17"
        ok(
            api(
                server,
                robin,
                "PATCH",
                f"/api/plans/{plan_id}/tasks/{t1['id']}",
                json={"due": moved},
            )
        )
        owner = {"id": "name:Dana", "label": "Dana", "side": "customer"}
        ok(
            api(
                server,
                robin,
                "PATCH",
                f"/api/plans/{plan_id}/tasks/{t2['id']}",
                json={"owner": owner},
            )
        )
        ok(
            api(
                server,
                robin,
                "PATCH",
                f"/api/plans/{plan_id}/tasks/{t3['id']}",
                json={"checked": True},
            )
        )

        changes = ok(api(server, token, "GET", f"/api/plans/{plan_id}/changes?from=v{named['id']}"))
        assert changes["count"] == 3, changes
        (due,) = changes["due_dates_moved"]
        assert due["id"] == t1["id"] and due["new"] == moved and due["old"] == t1["due"]
        assert due["times"] == 1 and due["by"]["name"] == "Robin"
        (reassigned,) = changes["owners_changed"]
        assert reassigned["id"] == t2["id"] and reassigned["new"]["label"] == "Dana"
        assert reassigned["new"]["side"] == "customer" and reassigned["by"]["name"] == "Robin"
        (done,) = changes["tasks_completed"]
        assert done["id"] == t3["id"] and done["by"]["name"] == "Robin"
        assert not changes["tasks_added"] and not changes["tasks_removed"]

        # The timeline: one session so far, Casey and Robin in it, its commitment account.
        history = ok(api(server, token, "GET", f"/api/plans/{plan_id}/history"))
        (session,) = history["sessions"]
        assert {p["name"] for p in session["people"]} >= {"Casey CSM", "Robin"}
        assert "Robin" in session["commitments"] and "done" in session["commitments"]
        assert {e["kind"] for e in history["events"]} >= {"due_moved", "reassigned", "completed"}

        # Casey opens the plan again: Robin's three changes, by Robin, linked to the comparison.
        again = casey.get(f"/plans/{plan_id}")
        assert 'id="since-banner"' in again.text and "Robin" in again.text
        assert "changed 3 commitments" in again.text
        # Seen now: the next visit has nothing new to say.
        assert 'id="since-banner"' not in casey.get(f"/plans/{plan_id}").text

    # Restore the named version while an editor is connected.
    count = log_count(database, plan_id)
    refused = api(
        server, viewer, "POST", f"/api/plans/{plan_id}/restore", json={"version": named["id"]}
    )
    assert refused.status_code == 403 and "viewers" in refused.json()["error"]
    async with connect(server.ws, plan_id, token) as (doc, _ws):
        restored = ok(
            api(
                server,
                robin,
                "POST",
                f"/api/plans/{plan_id}/restore",
                json={"version": named["id"]},
            )
        )
        assert restored["changed"] and restored["update_id"]
        with anyio.fail_after(10):
            while True:
                if crdt.to_prosemirror(doc) == before:
                    break
                await anyio.sleep(0.05)
    assert log_count(database, plan_id) == count + 1
    now = ok(api(server, token, "GET", f"/api/plans/{plan_id}/document"))
    assert now == before
    # Attributed: the commitment history has Robin undoing her own three changes.
    audit = ok(api(server, token, "GET", f"/api/plans/{plan_id}/audit"))["events"]
    newest = [e for e in audit if e["update_id"] == restored["update_id"]]
    assert newest and {e["author"]["name"] for e in newest} == {"Robin"}
    # Undone by restoring the moment before it.
    undo = ok(
        api(
            server,
            token,
            "POST",
            f"/api/plans/{plan_id}/restore",
            json={"upto": restored["undo"]["upto"]},
        )
    )
    assert undo["changed"]
    tasks_now = {
        t["id"]: t for t in ok(api(server, token, "GET", f"/api/plans/{plan_id}/tasks"))["tasks"]
    }
    assert tasks_now[t1["id"]]["due"] == moved and tasks_now[t3["id"]]["status"] == "done"
    assert log_count(database, plan_id) == count + 2
    bad = api(server, token, "POST", f"/api/plans/{plan_id}/restore", json={"version": "x"})
    assert bad.status_code == 400 and bad.json()["field"] == "version"
    both = api(
        server, token, "POST", f"/api/plans/{plan_id}/restore", json={"version": 1, "at": "x"}
    )
    assert both.status_code == 400


async def test_history_follows_the_plans_access_rules(
    server: Server, token: str, plan_id: str
) -> None:
    """Link visitors read history only through a link created with "history": true; the
    internal plan's history is the vendor side's."""
    async with connect(server.ws, plan_id, token) as (doc, _ws):
        fragment(doc).children.append(XmlElement("paragraph", {}, [XmlText("shared words")]))
    with client(server, token) as owner:
        plain = create_link(owner, plan_id, role="viewer")
        with_history = create_link(owner, plan_id, role="viewer", history=True)
        assert with_history["history"] is True and plain["history"] is False
        bad = owner.post(f"/api/plans/{plan_id}/links", json={"role": "viewer", "history": "yes"})
        assert bad.status_code == 400 and bad.json()["field"] == "history"
    lee = visit(server, plain["url"], "Lee")
    hana = visit(server, with_history["url"], "Hana")
    c = lee.client
    for path in (
        "/api/plans/{p}/history",
        "/api/plans/{p}/versions",
        "/api/plans/{p}/changes?from=u1",
        "/api/plans/{p}/document?upto=1",
        "/plans/{p}/history",
    ):
        r = c.get(path.format(p=plan_id))
        assert r.status_code == 403, (path, r.status_code)
    assert c.get(f"/api/plans/{plan_id}/document").status_code == 200
    assert 'href="/plans/' + plan_id + '/history"' not in c.get(f"/plans/{plan_id}").text
    c = hana.client
    assert c.get(f"/api/plans/{plan_id}/history").status_code == 200
    page = c.get(f"/plans/{plan_id}/history")
    assert page.status_code == 200 and "shared words" in page.text
    assert 'id="restore"' not in page.text  # visitors restore nothing
    assert c.get(f"/api/plans/{plan_id}/history?doc=internal").status_code == 404
    lee.client.close()
    hana.client.close()
    guest = join(server, token, plan_id, "gus@customer.example", "Gus", "editor")
    assert (
        api(server, guest, "GET", f"/api/plans/{plan_id}/history?doc=internal").status_code == 404
    )
    assert (
        api(server, token, "GET", f"/api/plans/{plan_id}/history?doc=internal").status_code == 200
    )


def test_the_share_page_creates_links_with_history(
    server: Server, token: str, plan_id: str
) -> None:
    casey = sign_in(server, "csm@vendor.example")  # the plan's owner
    c = casey.client
    form = {"csrf": casey.csrf or "", "action": "link", "role": "viewer", "days": "30"}
    assert c.post(f"/plans/{plan_id}/share", data={**form, "history": "on"}).status_code < 400
    assert c.post(f"/plans/{plan_id}/share", data={**form, "label": "plain"}).status_code < 400
    made = {
        link["label"]: link["history"]
        for link in c.get(
            f"/api/plans/{plan_id}/links", headers={"X-CSRF-Token": casey.csrf or ""}
        ).json()["links"]
    }
    assert made == {None: True, "plain": False}
    assert "with history" in c.get(f"/plans/{plan_id}/share").text
    c.close()


def sql(database: Database, query: str, **params: Any) -> list[Any]:
    engine = persistence.make_engine(database.url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(query), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def last_id(database: Database, plan_id: str) -> int:
    return sql(
        database,
        "SELECT max(id) FROM plan_updates WHERE plan_id = :p AND doc = 'plan'",
        p=plan_id,
    )[0][0]


async def type_rounds(
    server: Server, database: Database, token: str, plan_id: str, rounds: int, per_round: int
) -> list[tuple[int, int, list[str]]]:
    """A pycrdt client types ``per_round`` updates a round (one word each, a paragraph a
    round); after each round, once the server has logged it: (first id, last id, paragraphs)."""
    out: list[tuple[int, int, list[str]]] = []
    async with connect(server.ws, plan_id, token) as (doc, _ws):
        start = log_count(database, plan_id)
        for r in range(rounds):
            para = XmlElement("paragraph", {}, [XmlText()])
            fragment(doc).children.append(para)
            text = para.children[0]
            assert isinstance(text, XmlText)
            for k in range(per_round - 1):
                text.insert(len(text), f"r{r}w{k} ")
                if k % 50 == 0:
                    await anyio.sleep(0)  # let the provider send
            with anyio.fail_after(30):
                while log_count(database, plan_id) < start + (r + 1) * per_round:
                    await anyio.sleep(0.02)
            top = last_id(database, plan_id)
            first = out[-1][1] + 1 if out else top - per_round + 1
            held = [str(p.children[0]) for p in fragment(doc).children if p.tag == "paragraph"]
            out.append((first, top, held))
    return out


async def test_a_long_log_reads_back_through_segments(
    server: Server, database: Database, token: str, plan_id: str
) -> None:
    """Over 2,500 updates: the plan at every round's end is what the client held, whether the
    segments are there, built by the read, or partly missing; they add less than the log."""
    rounds = await type_rounds(server, database, token, plan_id, 13, 200)

    def check() -> None:
        for _first, top, held in rounds:
            r = fetched(api(server, token, "GET", f"/api/plans/{plan_id}/document?upto={top}"))
            assert [p for p in paragraphs_of(r.json()) if p] == [h for h in held if h], top

    def kept() -> list[Any]:
        return sql(
            database,
            "SELECT after_id, upto_id FROM history_snapshots WHERE plan_id = :p AND doc = 'plan'"
            " ORDER BY upto_id",
            p=plan_id,
        )

    check()
    # Made by those reads (SQLite), or by the worker once the updates are settled (PostgreSQL).
    with anyio.fail_after(60):
        while len(kept()) < 2:
            await anyio.sleep(0.2)
    check()
    segments = kept()
    assert segments[0][0] == 0
    assert all(a[1] == b[0] for a, b in zip(segments, segments[1:], strict=False))
    engine = persistence.make_engine(database.url)
    try:
        with persistence.make_sessionmaker(engine)() as s:
            added = persistence.history_bytes(session=s, plan_id=plan_id)
            assert 0 < added < persistence.log_bytes(session=s, plan_id=plan_id)
    finally:
        engine.dispose()
    # A segment gone from the middle: its stretch of the log is read instead.
    sql(
        database,
        "DELETE FROM history_snapshots WHERE plan_id = :p AND upto_id = :u",
        p=plan_id,
        u=segments[0][1],
    )
    check()
    # All gone: rebuilt by the reads.
    sql(database, "DELETE FROM history_snapshots WHERE plan_id = :p", p=plan_id)
    check()
    assert kept() == segments


async def test_the_timeline_is_read_a_page_at_a_time(
    server: Server, database: Database, token: str, plan_id: str
) -> None:
    """Sessions (rounds of typing 10 minutes apart) paged newest first equal the whole list,
    from the cache or worked out afresh, in any order of asking."""
    rounds = await type_rounds(server, database, token, plan_id, 8, 40)
    base = datetime.now(UTC) - timedelta(days=1)
    sql(
        database,
        "UPDATE plan_updates SET created_at = :t WHERE plan_id = :p AND id < :first",
        t=base - timedelta(minutes=10),
        p=plan_id,
        first=rounds[0][0],
    )
    for i, (first, top, _held) in enumerate(rounds):
        sql(
            database,
            "UPDATE plan_updates SET created_at = :t WHERE plan_id = :p AND id BETWEEN :a AND :b",
            t=base + timedelta(minutes=10 * i),
            p=plan_id,
            a=first,
            b=top,
        )
    sql(database, "DELETE FROM history_sessions WHERE plan_id = :p", p=plan_id)

    def pages(limit: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        url = f"/api/plans/{plan_id}/history?limit={limit}"
        while True:
            body = ok(api(server, token, "GET", url))
            out += body["sessions"]
            if body["next"] is None:
                return out
            url = f"/api/plans/{plan_id}/history?limit={limit}&before={body['next']['before']}"

    whole = pages(3)
    got = [(s["from"], s["to"]) for s in whole]
    assert got[: len(rounds)] == [(first, top) for first, top, _ in reversed(rounds)]
    assert all(not s["open"] for s in whole)
    for s, (_first, _top, _held) in zip(whole, reversed(rounds), strict=False):
        (change,) = s["text"]
        assert change["added"] == 39 and change["removed"] == 0, s
    cached = sql(database, "SELECT count(*) FROM history_sessions WHERE plan_id = :p", p=plan_id)
    assert cached[0][0] == len(whole)
    assert pages(200) == whole
    # The cache gone: the second page first, then all of it.
    sql(database, "DELETE FROM history_sessions WHERE plan_id = :p", p=plan_id)
    second = ok(
        api(server, token, "GET", f"/api/plans/{plan_id}/history?limit=3&before={got[2][0]}")
    )
    assert second["sessions"] == whole[3:6]
    assert pages(200) == whole
    # A hole in the cache: the log is read across it.
    sql(
        database,
        "DELETE FROM history_sessions WHERE plan_id = :p AND first_id = :f",
        p=plan_id,
        f=got[4][0],
    )
    assert pages(3) == whole
    assert pages(200) == whole


async def test_the_internal_plans_history_is_the_vendor_sides_page(
    server: Server, token: str, plan_id: str
) -> None:
    """The History page switches to the internal account plan for the vendor side; customer
    members and link visitors (even through a link with history) see no switch and get none
    of it."""
    async with connect(server.ws, plan_id, token) as (doc, _ws):
        fragment(doc).children.append(XmlElement("paragraph", {}, [XmlText("shared words")]))
    async with connect(f"{server.ws}/{plan_id}", "internal", token) as (internal, _ws):
        fragment(internal).children.append(
            XmlElement("paragraph", {}, [XmlText("champion is leaving")])
        )
        with anyio.fail_after(10):
            while (
                "champion"
                not in api(
                    server, token, "GET", f"/api/plans/{plan_id}/internal/document?format=markdown"
                ).text
            ):
                await anyio.sleep(0.05)
    with client(server, token) as owner:
        link = create_link(owner, plan_id, role="viewer", history=True)
        invite_and_join(
            server, owner, plan_id, "cleo@customer.example", "Cleo", "editor", "customer"
        )
    casey = sign_in(server, "csm@vendor.example")
    page = casey.client.get(f"/plans/{plan_id}/history")
    assert page.status_code == 200, page.text
    assert 'id="history-switch"' in page.text and "?doc=internal" in page.text
    assert "shared words" in page.text and "champion" not in page.text
    inside = casey.client.get(f"/plans/{plan_id}/history?doc=internal")
    assert inside.status_code == 200, inside.text
    assert "champion is leaving" in inside.text and "shared words" not in inside.text
    assert 'id="history-switch"' in inside.text and 'id="restore"' not in inside.text
    # A session's link stays on the internal plan.
    assert "&amp;doc=internal" in inside.text
    upto = inside.text.split('id="upto"', 1)[1].split('max="', 1)[1].split('"', 1)[0]
    moment = casey.client.get(f"/plans/{plan_id}/history?doc=internal&upto={upto}")
    assert moment.status_code == 200 and "champion is leaving" in moment.text
    casey.client.close()
    cleo = sign_in(server, "cleo@customer.example")
    hana = visit(server, link["url"], "Hana")
    for who in (cleo, hana):
        page = who.client.get(f"/plans/{plan_id}/history")
        assert page.status_code == 200, page.text
        assert "shared words" in page.text
        assert "history-switch" not in page.text and "doc=internal" not in page.text
        for path in (
            "/plans/{p}/history?doc=internal",
            f"/plans/{{p}}/history?doc=internal&upto={upto}",
            "/api/plans/{p}/history?doc=internal",
        ):
            r = who.client.get(path.format(p=plan_id))
            assert r.status_code == 404, (path, r.status_code)
            assert "champion" not in r.text
        who.client.close()

"""Well-formed but hostile updates from a share-link editor: refused, and nothing they try sticks.

A link editor may send any valid Yjs update. The ones that would give the plan's ``default``
root another type, write roots the plan does not have, nest elements past the limit, pile up
waiting for dependencies that never come, or flood presence are refused: that connection is
closed with its named code, nothing of it is logged or forwarded, and the plan's exports,
tables and other plans stay what the good clients made them.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import anyio
import httpx
import pytest
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText
from sqlalchemy.orm import Session

import persistence
from tests.support.access import api, create_link
from tests.support.db import Inspector
from tests.support.servers import Database, Server
from tests.support.wire import awareness_frame, peer, update_frame, wait_for
from tests.support.yclient import add_paragraph, fragment, paragraphs

pytestmark = pytest.mark.anyio

# Close codes and limits, as the server names them (written out: the test states the contract).
BAD_FRAME = 4400
UNAPPLIED = 4422
MAX_DEPTH = 64
MAX_AWARENESS_CLIENTS = 8
SEED = 20261206
ROUNDS = 14


def _copy(doc: Doc) -> tuple[Doc, bytes]:
    """A second document with what ``doc`` has (so a hostile change can attach to it)."""
    copy = Doc()
    copy.apply_update(doc.get_update())
    return copy, copy.get_state()


def text_root(doc: Doc, rng: random.Random) -> bytes:
    copy, before = _copy(doc)
    copy.get("default", type=Text).insert(rng.randrange(2), "evil text")
    return copy.get_update(before)


def array_root(doc: Doc, rng: random.Random) -> bytes:
    copy, before = _copy(doc)
    copy.get("default", type=Array).append(rng.choice(["evil item", 7, {"k": "v"}]))
    return copy.get_update(before)


def map_root(doc: Doc, rng: random.Random) -> bytes:
    copy, before = _copy(doc)
    copy.get("default", type=Map)[rng.choice(["title", "x"])] = "evil value"
    return copy.get_update(before)


def foreign_root(doc: Doc, rng: random.Random) -> bytes:
    copy, before = _copy(doc)
    name = rng.choice(["comments", "meta", "prosemirror"])
    kind = rng.choice([Map, Array, Text])
    root = copy.get(name, type=kind)
    if kind is Map:
        root["evil"] = "value"
    elif kind is Array:
        root.append("evil value")
    else:
        root.insert(0, "evil text")
    return copy.get_update(before)


def deep_blocks(doc: Doc, rng: random.Random) -> bytes:
    copy, before = _copy(doc)
    with copy.transaction():
        el = copy.get("default", type=XmlFragment).children.append(XmlElement("blockquote", {}))
        for _ in range(rng.choice([MAX_DEPTH + 1, 600, 1200])):
            el = el.children.append(XmlElement("blockquote", {}))
        el.children.append(XmlElement("paragraph", {}, [XmlText("evil deep")]))
    return copy.get_update(before)


def deep_attribute(doc: Doc, rng: random.Random) -> bytes:
    copy, before = _copy(doc)
    value: list = []
    for _ in range(rng.choice([MAX_DEPTH + 1, 200])):
        value = [value]
    frag = copy.get("default", type=XmlFragment)
    frag.children.append(XmlElement("paragraph", {"evil": value}, [XmlText("evil attr")]))
    return copy.get_update(before)


SCHEMA_BREAKERS: dict[str, Callable[[Doc, random.Random], bytes]] = {
    "default as Text": text_root,
    "default as Array": array_root,
    "default as Map": map_root,
    "a foreign root": foreign_root,
    "elements nested too deep": deep_blocks,
    "an attribute nested too deep": deep_attribute,
}


def orphans(rng: random.Random, count: int, size: int) -> list[bytes]:
    """Updates that each build on the one before; the first is never sent."""
    doc = Doc()
    sent: list[bytes] = []
    sub = doc.observe(lambda e: sent.append(e.update))
    text = doc.get("default", type=XmlFragment).children.append(XmlElement("paragraph", {}))
    text = text.children.append(XmlText("start"))
    for _ in range(count):
        text.insert(len(text), "".join(rng.choice("evil ") for _ in range(size)))
    doc.unobserve(sub)
    return sent[1:]


def markdown(server: Server, token: str, plan_id: str) -> str:
    r = httpx.get(
        f"{server.http}/api/plans/{plan_id}/document",
        params={"format": "markdown"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    return r.text


def task_texts(server: Server, token: str, plan_id: str) -> list[str]:
    r = httpx.get(
        f"{server.http}/api/plans/{plan_id}/tasks", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200, r.text
    return sorted(t["text"] for t in r.json()["tasks"])


def add_task(doc: Doc, text: str) -> None:
    with doc.transaction():
        lst = fragment(doc).children.append(XmlElement("taskList"))
        item = lst.children.append(XmlElement("taskItem", {"checked": False}))
        item.children.append(XmlElement("paragraph", {}, [XmlText(text)]))


async def poll(predicate: Callable[[], object], what: str) -> None:
    with anyio.fail_after(15):
        while not predicate():
            await anyio.sleep(0.1)


async def test_fuzz_hostile_updates_from_a_link_editor(
    server: Server, token: str, plan_id: str
) -> None:
    rng = random.Random(SEED)
    other = server.create_plan(token, "Someone else's plan", "Globex")
    with api(server, token) as owner:
        link = create_link(owner, plan_id, role="editor", label="Working group")
    good_url = f"{server.ws}/{plan_id}?token={token}"
    link_url = f"{server.ws}/{plan_id}?token={link['token']}"
    expected_text: list[str] = []
    async with peer(f"{server.ws}/{other}?token={token}") as o:
        add_paragraph(o.doc, "the other plan")
    other_before = markdown(server, token, other)

    with anyio.fail_after(240):
        async with peer(good_url) as good:
            add_task(good.doc, "A task the good client made")
            kinds = [*SCHEMA_BREAKERS, "missing dependencies", "awareness flood"]
            for round_ in range(ROUNDS):
                kind = kinds[round_] if round_ < len(kinds) else rng.choice(kinds)
                expected_text.append(f"good paragraph {round_}")
                add_paragraph(good.doc, expected_text[-1])
                # Typing key by key and formatting: what every good client does, accepted.
                para = fragment(good.doc).children[len(fragment(good.doc).children) - 1]
                last = para.children[0]
                for ch in "!?":
                    last.insert(len(last), ch, {"bold": {}} if ch == "?" else None)
                last.format(0, 4, {"italic": {}})
                expected_text[-1] += "!?"
                expected = paragraphs(good.doc)
                async with peer(link_url) as bad:
                    await wait_for(
                        lambda: paragraphs(bad.doc) == expected,  # noqa: B023
                        what=f"round {round_} ({kind}) syncing",
                    )
                    if kind == "missing dependencies":
                        expect = UNAPPLIED
                        for update in orphans(rng, 6, 300_000):
                            if bad.closed.is_set():
                                break
                            await bad.send(update_frame(update))
                    elif kind == "awareness flood":
                        expect = BAD_FRAME
                        for _ in range(10):
                            ids = rng.sample(range(1, 1 << 30), rng.randint(9, 2000))
                            states = [(c, 1, {"user": {"name": "x" * 50}}) for c in ids]
                            if bad.closed.is_set():
                                break
                            await bad.send(awareness_frame(states))
                    else:
                        expect = BAD_FRAME
                        await bad.send(update_frame(SCHEMA_BREAKERS[kind](bad.doc, rng)))
                    with anyio.fail_after(15):
                        await bad.closed.wait()
                    assert bad.close_code == expect, (kind, bad.close_code, bad.close_reason)
                # The good client was not touched, received nothing of it, and keeps editing.
                assert not good.closed.is_set(), (kind, good.close_code, good.close_reason)
                assert paragraphs(good.doc) == expected
                assert set(good.doc.keys()) == {"default"}
                assert len({c for c, _, _ in good.awareness()}) <= MAX_AWARENESS_CLIENTS

            # A fresh joiner sees the good document, and no presence it never should.
            async with peer(link_url) as joiner:
                await wait_for(lambda: paragraphs(joiner.doc) == expected)
                assert not joiner.awareness()

        await poll(lambda: task_texts(server, token, plan_id), "the task materialised")
        assert task_texts(server, token, plan_id) == ["A task the good client made"]
        text = markdown(server, token, plan_id)
        assert all(f" paragraph {i}!" in text for i in range(ROUNDS)) and "evil" not in text
        assert markdown(server, token, other) == other_before

        # Nothing of it was logged: after a restart the document is the good clients'.
        assert server.stop() == 0
        await anyio.to_thread.run_sync(server.start)
        async with peer(good_url) as fresh:
            assert paragraphs(fresh.doc) == expected
            assert set(fresh.doc.keys()) == {"default"}
            assert "evil" not in str(fragment(fresh.doc))
    assert "Traceback" not in server.log()


async def test_a_connection_owns_a_bounded_number_of_presence_states(
    server: Server, token: str, plan_id: str
) -> None:
    url = f"{server.ws}/{plan_id}?token={token}"
    async with peer(url) as watcher, peer(url) as a:
        mine = [(1000 + i, 1, {"user": {"name": "a"}}) for i in range(MAX_AWARENESS_CLIENTS)]
        await a.send(awareness_frame(mine))
        await wait_for(lambda: len(watcher.awareness()) == MAX_AWARENESS_CLIENTS)
        async with peer(url) as b:
            # Another connection's states are not b's to change.
            await b.send(awareness_frame([(1000, 5, {"cursor": "impostor"})]))
            await b.send(awareness_frame([(1000, 6, None)]))
            # One more id than allowed closes b, not a.
            await b.send(awareness_frame([(2000 + i, 1, {}) for i in range(9)]))
            with anyio.fail_after(10):
                await b.closed.wait()
            assert b.close_code == BAD_FRAME
        seen = watcher.awareness()
        assert all(state is not None and "cursor" not in state for _, _, state in seen)
        assert {c for c, _, _ in seen} == {1000 + i for i in range(MAX_AWARENESS_CLIENTS)}
        assert not a.closed.is_set()
    # a left: its states were removed for those who stay (checked by a late watcher's view).
    async with peer(url) as late:
        await anyio.sleep(0.3)
        assert not late.awareness()


async def test_a_plan_broken_before_the_check_is_repaired_for_clients_holding_it(
    server: Server, token: str, plan_id: str, database: Database
) -> None:
    url = f"{server.ws}/{plan_id}?token={token}"
    async with peer(url) as a:
        add_paragraph(a.doc, "kept")
        add_task(a.doc, "A task that survives")
        await poll(lambda: task_texts(server, token, plan_id), "the task materialised")
    ids_before = task_texts(server, token, plan_id)
    good = paragraphs(a.doc)
    assert "kept" in good
    assert server.stop() == 0

    log_broken_update(database, plan_id, a.doc)
    assert paragraphs(a.doc) == []  # pycrdt stops reading the fragment at the foreign text

    await anyio.to_thread.run_sync(server.start)
    with anyio.fail_after(60):
        # That client reconnects with its history and receives the repair.
        async with peer(url, doc=a.doc) as again:
            await wait_for(lambda: paragraphs(again.doc) == good, what="the repair")
            assert "evil" not in str(fragment(again.doc))
            assert not again.doc.get("comments", type=Map).to_py()
        text = markdown(server, token, plan_id)
        assert "kept" in text and "evil" not in text
        await poll(lambda: task_texts(server, token, plan_id) == ids_before, "tables")
        # The repair is an ordinary logged update: a fresh client after a restart agrees.
        assert server.stop() == 0
        await anyio.to_thread.run_sync(server.start)
        async with peer(url) as fresh:
            assert paragraphs(fresh.doc) == good
            assert "evil" not in str(fragment(fresh.doc))


def log_broken_update(database: Database, plan_id: str, doc: Doc) -> bytes:
    """What an earlier server logged without looking: default written as a Text, a foreign
    root. Returns the update, which ``doc`` also receives (a client that got it back then)."""
    copy, before = _copy(doc)
    copy.get("default", type=Text).insert(0, "evil text")
    copy.get("comments", type=Map)["evil"] = "value"
    broken = copy.get_update(before)
    engine = persistence.make_engine(database.url)
    try:
        with Session(engine) as s, s.begin():
            persistence.append_updates(session=s, plan_id=plan_id, entries=[(None, broken)])
    finally:
        engine.dispose()
    doc.apply_update(broken)
    return broken


async def test_plans_rebuild_repairs_a_broken_plan_and_its_tables(
    server: Server, token: str, plan_id: str, database: Database
) -> None:
    async with peer(f"{server.ws}/{plan_id}?token={token}") as a:
        add_task(a.doc, "A task that survives")
        await poll(lambda: task_texts(server, token, plan_id), "the task materialised")
    assert server.stop() == 0
    log_broken_update(database, plan_id, a.doc)
    logged = len(Inspector(database.url).log(plan_id))

    done = server.cli("plans", "rebuild", plan_id)
    assert done.returncode == 0, done.stderr
    # One update appended, deleting what broke the schema; the tables read the plan again.
    assert len(Inspector(database.url).log(plan_id)) == logged + 1
    await anyio.to_thread.run_sync(server.start)
    assert task_texts(server, token, plan_id) == ["A task that survives"]
    assert "evil" not in markdown(server, token, plan_id)


async def test_one_plan_failing_at_catch_up_leaves_the_others_caught_up(
    server: Server, token: str, database: Database
) -> None:
    first, second = sorted([server.create_plan(token), server.create_plan(token)])
    docs = {}
    for plan_id in (first, second):
        async with peer(f"{server.ws}/{plan_id}?token={token}") as p:
            add_task(p.doc, f"Before, in {plan_id}")
            docs[plan_id] = p.doc
            await poll(lambda: task_texts(server, token, plan_id), "materialised")  # noqa: B023
    assert server.stop() == 0

    # Logged while the server was down, not yet materialised: the first plan's log is
    # unreadable, the second's has a new task.
    before = docs[second].get_state()
    add_task(docs[second], "Logged, then caught up")
    engine = persistence.make_engine(database.url)
    try:
        with Session(engine) as s, s.begin():
            persistence.append_updates(session=s, plan_id=first, entries=[(None, b"\xde\xad")])
            persistence.append_updates(
                session=s, plan_id=second, entries=[(None, docs[second].get_update(before))]
            )
    finally:
        engine.dispose()

    await anyio.to_thread.run_sync(server.start)
    await poll(lambda: len(task_texts(server, token, second)) == 2, "the second plan caught up")
    assert f"catching up plan {first}" in server.log()

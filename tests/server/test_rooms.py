"""Room lifecycle against the database: idle unload, checkpoints, authorship, deduplication.

The update log (``plan_updates``) is the source of truth; checkpoints are shortcuts through it.
These tests read both directly through SQLAlchemy and hold the server to that contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from pycrdt import Doc

import crdt
from tests.support.db import Inspector
from tests.support.servers import Database, Server
from tests.support.wire import (
    SYNC_STEP2,
    peer,
    state_vector,
    sync_frame,
    update_frame,
    wait_for,
)
from tests.support.yclient import add_paragraph, connect, fragment, paragraphs

pytestmark = pytest.mark.anyio

IDLE_SECONDS = 0.5
CHECKPOINT_EVERY = 10
EMAIL = "csm@vendor.example"  # the token fixture's user


@pytest.fixture
def server(database: Database, tmp_path: Path) -> Iterator[Server]:
    srv = Server(
        data_dir=tmp_path,
        database_url=database.url,
        extra_env={
            "TANDEM_ROOM_IDLE_SECONDS": str(IDLE_SECONDS),
            "TANDEM_CHECKPOINT_EVERY": str(CHECKPOINT_EVERY),
        },
    ).start()
    yield srv
    srv.stop()


@pytest.fixture
def db(database: Database) -> Inspector:
    return Inspector(database.url)


def same_document(a: Doc, b: Doc) -> None:
    """Same content and the same history (state vector), not just similar text."""
    assert str(crdt.fragment(a)) == str(crdt.fragment(b))
    assert state_vector(a.get_state()) == state_vector(b.get_state())


async def test_an_idle_room_is_unloaded_with_a_checkpoint_and_reloads(
    server: Server, db: Inspector, token: str, plan_id: str
) -> None:
    url = f"{server.ws}/{plan_id}?token={token}"
    unloaded = f"room {plan_id} unloaded"
    with anyio.fail_after(30):
        async with peer(url) as a, peer(url) as b:
            for text in ("one", "two", "three"):
                add_paragraph(a.doc, text)
            await wait_for(lambda: paragraphs(b.doc) == ["one", "two", "three"])
            # Time is what is under test here: a room with people in it is never unloaded.
            await anyio.sleep(IDLE_SECONDS * 3)
            assert unloaded not in server.log()
            assert db.checkpoints(plan_id) == []  # 3 updates: below CHECKPOINT_EVERY

        await wait_for(lambda: unloaded in server.log(), 10, "the idle room to unload")
        rows = db.log(plan_id)
        assert len(rows) == 3
        checkpoints = db.checkpoints(plan_id)
        assert len(checkpoints) == 1
        assert checkpoints[0].upto_id == max(r.id for r in rows)
        same_document(
            crdt.doc_from_updates([], base=checkpoints[0].state),
            crdt.doc_from_updates(r.data for r in rows),
        )

        async with peer(url) as again:
            assert paragraphs(again.doc) == ["one", "two", "three"]
        # Loaded from the checkpoint alone: nothing after it needed replaying.
        assert f"room {plan_id} loaded (0 updates replayed)" in server.log()


async def test_checkpoints_and_reload_match_the_log_replayed_from_scratch(
    server: Server, db: Inspector, token: str, plan_id: str
) -> None:
    url = f"{server.ws}/{plan_id}?token={token}"
    with anyio.fail_after(60):
        async with peer(url) as writer, peer(url) as watcher:
            # One edit at a time, each seen by the other client before the next: one log row
            # (and one commit) per edit.
            for n in range(35):
                add_paragraph(writer.doc, f"edit {n:02d}")
                await wait_for(lambda n=n: len(paragraphs(watcher.doc)) == n + 1)
            rows = db.log(plan_id)
            checkpoints = db.checkpoints(plan_id)

        assert len(rows) == 35
        # Checkpoints fell after rows 10, 20 and 30; the two newest are kept (the log itself is
        # whole), and the one after row 10 only if it is the newest the materialised tables
        # had reached when the last was written (what a restart rebuilds them from).
        uptos = [c.upto_id for c in checkpoints]
        assert uptos[-2:] == [rows[19].id, rows[29].id]
        assert uptos[:-2] in ([], [rows[9].id])
        assert len(rows) == 35
        # Each checkpoint is exactly the log up to its row.
        for cp in checkpoints:
            same_document(
                crdt.doc_from_updates([], base=cp.state),
                crdt.doc_from_updates(r.data for r in rows if r.id <= cp.upto_id),
            )
        # Every row is attributed to the token's user.
        author = db.user_id(EMAIL)
        assert {r.author_id for r in rows} == {author}

        # Killed before the room could unload or checkpoint again: the reload is the last
        # checkpoint plus the 5 updates after it, and equals the log replayed from scratch.
        server.kill()
        await anyio.to_thread.run_sync(server.start)
        replayed = crdt.doc_from_updates(r.data for r in db.log(plan_id))
        async with peer(url) as fresh:
            same_document(fresh.doc, replayed)
            assert paragraphs(fresh.doc) == [f"edit {n:02d}" for n in range(35)]
        assert f"room {plan_id} loaded (5 updates replayed)" in server.log()


async def test_resent_content_is_neither_logged_nor_forwarded(
    server: Server, db: Inspector, token: str, plan_id: str
) -> None:
    url = f"{server.ws}/{plan_id}?token={token}"
    doc = Doc()
    with anyio.fail_after(30):
        # The observer keeps the room loaded and records every frame the server sends it.
        async with peer(url) as observer:
            async with peer(url, doc):
                for text in ("one", "two", "doomed"):
                    add_paragraph(doc, text)
                del fragment(doc).children[2]  # a deletion: the delete set goes with every diff
                await wait_for(lambda: paragraphs(observer.doc) == ["one", "two"])
            rows = len(db.log(plan_id))

            # 1. The same Doc reconnects through pycrdt's Provider, as a client coming back
            # does: sync step 2 carries its delete set again, and it echoes what it receives.
            frames = len(observer.frames)
            async with connect(server.ws, plan_id, token, doc=doc):
                add_paragraph(doc, "three")  # a real edit, after the resync on this socket
                await wait_for(lambda: "three" in paragraphs(observer.doc))
            logged = len(db.log(plan_id))
            assert logged == rows + 1  # "three" only
            # Frames from one connection are handled in order: had the resync been
            # forwarded, it would have reached the observer before "three".
            assert len(observer.sync_updates(since=frames)) == 1

            # 2. Its full state sent again explicitly, as an update and as a sync step 2.
            frames = len(observer.frames)
            async with peer(url, doc) as again:
                await again.send(update_frame(doc.get_update()))
                await again.send(sync_frame(SYNC_STEP2, doc.get_update()))
                add_paragraph(doc, "four")
                await wait_for(lambda: "four" in paragraphs(observer.doc))
            logged = len(db.log(plan_id))
            assert logged == rows + 2  # "four" only
            assert len(observer.sync_updates(since=frames)) == 1

            assert paragraphs(observer.doc) == ["one", "two", "three", "four"]
            same_document(observer.doc, crdt.doc_from_updates(r.data for r in db.log(plan_id)))

"""The server dies while clients edit: nothing any client was shown is ever lost.

The room forwards an update only after it is committed to the log, so whatever a client has
received must be in the document after a SIGKILL and a restart. A SIGTERM is a clean stop: the
process exits 0 after flushing every room and writing its checkpoint.
"""

from __future__ import annotations

import anyio
import httpx
import pytest

import crdt
from tests.support.db import Inspector
from tests.support.servers import Database, Server
from tests.support.wire import Peer, peer, state_vector, wait_for
from tests.support.yclient import add_paragraph, paragraphs

pytestmark = pytest.mark.anyio

WRITERS = 3
SERVER_SHUTDOWN = 1012  # server.protocol.Close.SERVER_SHUTDOWN


async def edit_until_closed(writer: Peer, name: str) -> None:
    """Append paragraphs "<name>-0000", "<name>-0001", ... for as long as the socket is open."""
    n = 0
    while not writer.closed.is_set():
        add_paragraph(writer.doc, f"{name}-{n:04d}")
        n += 1
        await anyio.sleep(0.002)  # pacing, not synchronisation: a few hundred edits a second


def made_by(texts: list[str], name: str) -> list[str]:
    return [t for t in texts if t.startswith(f"{name}-")]


def api_paragraphs(server: Server, plan_id: str, token: str) -> list[str]:
    """The document as the JSON API serves it (ProseMirror JSON), reduced to paragraph texts."""
    r = httpx.get(
        f"{server.http}/api/plans/{plan_id}/document",
        params={"format": "json"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["type"] == "doc"
    return [
        "".join(t["text"] for t in node.get("content", []))
        for node in doc["content"]
        if node["type"] == "paragraph"
    ]


async def edit_then_stop(
    server: Server, url: str, stop: str
) -> tuple[list[str], dict[str, list[str]], list[Peer]]:
    """Writers edit continuously while an observer watches; ``stop`` the server mid-edit.

    Returns what the observer had received, what each writer had received from the others,
    and the peers (closed by then), each writer's document holding every edit it made.
    """
    names = [f"w{i}" for i in range(WRITERS)]
    async with (
        peer(url) as observer,
        peer(url) as w0,
        peer(url) as w1,
        peer(url) as w2,
    ):
        writers = dict(zip(names, [w0, w1, w2], strict=True))
        async with anyio.create_task_group() as tg:
            for name, writer in writers.items():
                tg.start_soon(edit_until_closed, writer, name)
            await wait_for(
                lambda: all(len(made_by(paragraphs(observer.doc), n)) >= 25 for n in names),
                what="edits from every writer reaching the observer",
            )
            # Stopped from a worker thread, so the writers keep editing while the server dies.
            if stop == "kill":
                await anyio.to_thread.run_sync(server.kill)
            else:
                code = await anyio.to_thread.run_sync(server.stop)
                assert code == 0, server.log()[-3000:]
            await wait_for(
                lambda: all(p.closed.is_set() for p in (observer, *writers.values())),
                what="every client seeing the connection end",
            )
        seen = paragraphs(observer.doc)
        seen_by_writers = {
            name: [t for t in paragraphs(w.doc) if not t.startswith(f"{name}-")]
            for name, w in writers.items()
        }
        return seen, seen_by_writers, [observer, *writers.values()]


def assert_nothing_shown_was_lost(
    recovered: list[str], seen: list[str], seen_by_writers: dict[str, list[str]]
) -> None:
    assert len(recovered) == len(set(recovered)), "a paragraph was duplicated"
    # Everything the observer was shown is there, in the order it was shown.
    shown = set(seen)
    assert [t for t in recovered if t in shown] == seen
    # And so is everything each writer was shown of the others' work.
    for name, received in seen_by_writers.items():
        missing = set(received) - set(recovered)
        assert not missing, f"{name} had received {sorted(missing)} but they were lost"


def assert_writers_kept_prefixes(recovered: list[str], writers: list[Peer]) -> None:
    """A writer's updates are logged in the order sent: what survived of each is a prefix."""
    for i, writer in enumerate(writers):
        made = made_by(paragraphs(writer.doc), f"w{i}")
        kept = made_by(recovered, f"w{i}")
        assert kept == made[: len(kept)], f"w{i}: the surviving edits are not a prefix"


async def test_sigkill_mid_edit_loses_nothing_any_client_was_shown(
    server: Server, token: str, plan_id: str
) -> None:
    url = f"{server.ws}/{plan_id}?token={token}"
    with anyio.fail_after(120):
        seen, seen_by_writers, (observer, *writers) = await edit_then_stop(server, url, "kill")
        assert observer.close_code == 1006  # no close frame: the process just vanished

        await anyio.to_thread.run_sync(server.start)  # same port, same database
        async with peer(url) as fresh:
            recovered = paragraphs(fresh.doc)
        assert_nothing_shown_was_lost(recovered, seen, seen_by_writers)
        assert_writers_kept_prefixes(recovered, writers)
        if hasattr(crdt, "to_prosemirror"):  # the JSON export may not exist yet
            assert api_paragraphs(server, plan_id, token) == recovered

        # The writers reconnect with their documents, as y-websocket clients do: the edits
        # that were in flight at the kill arrive now, and nothing anyone made is missing.
        everything = set(recovered)
        for i, writer in enumerate(writers):
            everything |= set(made_by(paragraphs(writer.doc), f"w{i}"))
        async with (
            peer(url) as watcher,
            peer(url, writers[0].doc),
            peer(url, writers[1].doc),
            peer(url, writers[2].doc),
        ):
            await wait_for(
                lambda: set(paragraphs(watcher.doc)) == everything,
                what="every writer's edits after they reconnected",
            )
        assert "Traceback" not in server.log()


async def test_sigterm_with_clients_connected_exits_0_and_flushes(
    server: Server, database: Database, token: str, plan_id: str
) -> None:
    url = f"{server.ws}/{plan_id}?token={token}"
    with anyio.fail_after(120):
        seen, seen_by_writers, (observer, *writers) = await edit_then_stop(server, url, "term")
        # Every client was told the server is restarting.
        assert {p.close_code for p in (observer, *writers)} == {SERVER_SHUTDOWN}
        log = server.log()
        assert "shut down cleanly" in log
        assert "Traceback" not in log

        # The shutdown wrote a checkpoint covering the whole log, equal to the log's replay.
        db = Inspector(database.url)
        rows = db.log(plan_id)
        last = db.checkpoints(plan_id)[-1]
        assert last.upto_id == rows[-1].id
        replayed = crdt.doc_from_updates(r.data for r in rows)
        from_checkpoint = crdt.doc_from_updates([], base=last.state)
        assert str(crdt.fragment(from_checkpoint)) == str(crdt.fragment(replayed))
        assert state_vector(from_checkpoint.get_state()) == state_vector(replayed.get_state())

        await anyio.to_thread.run_sync(server.start)
        async with peer(url) as fresh:
            recovered = paragraphs(fresh.doc)
        assert recovered == paragraphs(replayed)
        assert_nothing_shown_was_lost(recovered, seen, seen_by_writers)
        assert_writers_kept_prefixes(recovered, writers)
        if hasattr(crdt, "to_prosemirror"):
            assert api_paragraphs(server, plan_id, token) == recovered

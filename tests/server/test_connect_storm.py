"""Twenty clients open a plan that is not loaded yet, all at the same moment."""

from __future__ import annotations

import anyio
import pytest
from pycrdt import Doc

from tests.support.db import Inspector
from tests.support.servers import Database, Server
from tests.support.wire import peer, wait_for
from tests.support.yclient import add_paragraph, connect, paragraphs

pytestmark = pytest.mark.anyio

CLIENTS = 20


async def test_twenty_clients_open_a_new_plan_at_once_and_converge(
    server: Server, database: Database, token: str, plan_id: str
) -> None:
    url = f"{server.ws}/{plan_id}?token={token}"
    expected = sorted(f"paragraph of client {i:02d}" for i in range(CLIENTS))
    go = anyio.Event()
    everyone_done = anyio.Event()
    docs: dict[int, Doc] = {}
    sockets = {}

    parked = 0

    async def client(i: int) -> None:
        nonlocal parked
        parked += 1
        await go.wait()
        async with connect(server.ws, plan_id, token) as (doc, ws):
            docs[i], sockets[i] = doc, ws
            add_paragraph(doc, f"paragraph of client {i:02d}")
            # Stay connected until all have converged: nobody leaves the room early.
            await everyone_done.wait()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for i in range(CLIENTS):
                tg.start_soon(client, i)
            await wait_for(lambda: parked == CLIENTS, what="every client at the gate")
            assert f"room {plan_id} loaded" not in server.log()  # a plan never opened yet
            go.set()
            await wait_for(lambda: len(docs) == CLIENTS, 30, "all clients connected")
            await wait_for(
                lambda: all(len(paragraphs(d)) >= CLIENTS for d in docs.values()),
                30,
                "all clients converged",
            )
            # Converged means the same document, in the same order, everywhere.
            first = paragraphs(docs[0])
            assert sorted(first) == expected
            for i, doc in docs.items():
                assert paragraphs(doc) == first
                assert sockets[i].close_code is None
            everyone_done.set()

        # The room was loaded once, not once per racing client.
        assert server.log().count(f"room {plan_id} loaded") == 1
        assert "Traceback" not in server.log()

        # Every paragraph was logged once: twenty updates, no duplicates, nothing lost.
        assert len(Inspector(database.url).log(plan_id)) == CLIENTS

        async with peer(url) as fresh:
            assert paragraphs(fresh.doc) == first

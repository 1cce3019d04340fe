"""The stock npm y-websocket client against the real server, next to pycrdt clients.

tests/js/yclient.mjs runs y-websocket's WebsocketProvider exactly as a browser would (only the
`ws` polyfill and ``params: {token}``), so these tests prove the server speaks the standard
protocol: documents converge both ways, and presence crosses with the server-known name
(whatever name the client claims) and is never echoed to its sender.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import pytest

from tests.support.access import api, invite_and_join
from tests.support.servers import ROOT, Server
from tests.support.wire import awareness_frame, peer, wait_for
from tests.support.yclient import add_paragraph, fragment, paragraphs

pytestmark = pytest.mark.anyio

SCRIPT = ROOT / "tests" / "js" / "yclient.mjs"


class NodeClient:
    """One `node tests/js/yclient.mjs` process, driven a JSON command per line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
        await self.proc.stdin.drain()
        with anyio.fail_after(20):
            line = await self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"node client exited during {cmd!r}: {await self._stderr()}")
        answer = json.loads(line)
        if "error" in answer:
            raise AssertionError(f"node client {cmd!r} failed: {answer['error']}")
        return answer

    async def _stderr(self) -> str:
        assert self.proc.stderr is not None
        with anyio.move_on_after(5):
            return (await self.proc.stderr.read()).decode(errors="replace")
        return ""


@asynccontextmanager
async def node_client(server: Server, plan_id: str, token: str) -> AsyncIterator[NodeClient]:
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(SCRIPT),
        server.ws,
        plan_id,
        token,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    client = NodeClient(proc)
    try:
        yield client
    finally:
        assert proc.stdin is not None
        if proc.returncode is None:
            proc.stdin.write(b'{"cmd": "quit"}\n')
            proc.stdin.close()
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(10):
                await proc.communicate()
            if proc.returncode is None:
                proc.kill()
                await proc.communicate()


def own_awareness(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Awareness entries about the Node client itself among the frames it received."""
    return [
        entry
        for frame in state["frames"]
        if frame["type"] == "awareness"
        for entry in frame["entries"]
        if entry["clientID"] == state["clientID"]
    ]


@pytest.fixture
def node_token(server: Server, token: str, plan_id: str) -> str:
    # Nora joins the plan the way people do: invited by its owner, on the customer side.
    with api(server, token) as owner:
        invite_and_join(
            server, owner, plan_id, "nora@customer.example", "Nora Node", "editor", "customer"
        )
    return server.create_token("nora@customer.example")


async def test_node_and_pycrdt_converge_and_share_presence(
    server: Server, token: str, node_token: str, plan_id: str
) -> None:
    """Casey (token) on pycrdt and Nora (node_token) on y-websocket edit and see each other."""
    with anyio.fail_after(60):
        async with peer(f"{server.ws}/{plan_id}?token={token}") as py:
            py_id = py.doc.client_id
            await py.send(
                awareness_frame([(py_id, 1, {"user": {"name": "Mallory", "color": "#00f"}})])
            )
            add_paragraph(py.doc, "pycrdt, before node joined")

            async with node_client(server, plan_id, node_token) as node:
                node_id = (await node.call("synced"))["clientID"]
                await node.call(
                    "user", user={"name": "spoofed", "color": "#ff00aa", "person": "spoofed"}
                )
                await node.call("paragraph", text="node, live")

                # Node -> pycrdt: the paragraph, and the presence under the token user's name.
                await wait_for(lambda: "node, live" in paragraphs(py.doc), what="node's paragraph")
                await wait_for(
                    lambda: any(c == node_id and s is not None for c, _, s in py.awareness()),
                    what="node's presence",
                )
                # pycrdt -> Node: Casey's presence under her real name, then a live paragraph.
                await node.call("waitPresence", name="Casey CSM")
                add_paragraph(py.doc, "pycrdt, live")
                # The server forwards in order, so once Node has this paragraph, an echo of its
                # own awareness (sent before it) would have arrived too.
                await node.call(
                    "waitParagraphs",
                    texts=["pycrdt, before node joined", "node, live", "pycrdt, live"],
                )
                state = await node.call("state")
                assert state["clientID"] == node_id

            # Converged, in the same order, down to the XML.
            assert state["paragraphs"] == paragraphs(py.doc)
            assert sorted(state["paragraphs"]) == [
                "node, live",
                "pycrdt, before node joined",
                "pycrdt, live",
            ]
            assert state["xml"] == str(fragment(py.doc))

            # What pycrdt saw of Node: the server-known name and person key, the claimed
            # colour kept. (The first is y-websocket's empty initial state, stamped too.)
            node_states = [s for c, _, s in py.awareness() if c == node_id and s is not None]
            assert [s["user"]["name"] for s in node_states] == ["Nora Node"] * len(node_states)
            nora = node_states[-1]["user"]["person"]
            assert re.fullmatch(r"[0-9a-f]{12}", nora)
            assert node_states[-1] == {
                "user": {"name": "Nora Node", "color": "#ff00aa", "person": nora, "guest": False}
            }
            # What Node saw of pycrdt: another person.
            seen_py = [p["state"] for p in state["presence"] if p["clientID"] == py_id]
            casey = seen_py[0]["user"]["person"]
            assert seen_py == [
                {"user": {"name": "Casey CSM", "color": "#00f", "person": casey, "guest": False}}
            ]
            assert re.fullmatch(r"[0-9a-f]{12}", casey) and casey != nora
            # Nobody got their own presence back.
            assert own_awareness(state) == []
            assert [e for e in py.awareness() if e[0] == py_id] == []
            # No claimed name ever went out.
            received = json.dumps(state["frames"]) + repr(py.awareness())
            assert "spoofed" not in received and "Mallory" not in received

            # Node left: its presence is withdrawn for the others.
            await wait_for(
                lambda: any(c == node_id and s is None for c, _, s in py.awareness()),
                what="node's presence removed",
            )


async def test_two_node_clients_converge_and_see_each_other(
    server: Server, token: str, node_token: str, plan_id: str
) -> None:
    """Two y-websocket clients in separate processes (no BroadcastChannel shortcut)."""
    with anyio.fail_after(60):
        async with (
            node_client(server, plan_id, node_token) as nora,
            node_client(server, plan_id, token) as casey,
        ):
            await nora.call("synced")
            await casey.call("synced")
            await nora.call("user", user={"name": "spoofed by nora", "color": "#111111"})
            await casey.call("user", user={"name": "spoofed by casey", "color": "#222222"})

            # Each, once it sees the other's presence, writes a paragraph the other waits for:
            # by then an echo of the waiter's own awareness would have been delivered.
            await nora.call("waitPresence", name="Casey CSM")
            await nora.call("paragraph", text="from nora")
            await casey.call("waitPresence", name="Nora Node")
            await casey.call("paragraph", text="from casey")
            await nora.call("waitParagraphs", texts=["from nora", "from casey"])
            await casey.call("waitParagraphs", texts=["from nora", "from casey"])
            n, c = await nora.call("state"), await casey.call("state")

        assert n["paragraphs"] == c["paragraphs"]
        assert sorted(n["paragraphs"]) == ["from casey", "from nora"]
        assert n["xml"] == c["xml"]
        assert [
            (p["state"]["user"]["name"], p["state"]["user"]["color"]) for p in n["presence"]
        ] == [("Casey CSM", "#222222")]
        assert [
            (p["state"]["user"]["name"], p["state"]["user"]["color"]) for p in c["presence"]
        ] == [("Nora Node", "#111111")]
        assert own_awareness(n) == [] and own_awareness(c) == []
        assert n["closes"] == [] and c["closes"] == []

        # And the server's document is the same: a fresh pycrdt client reads it.
        async with peer(f"{server.ws}/{plan_id}?token={token}") as fresh:
            assert str(fragment(fresh.doc)) == n["xml"]


async def _until_presence(client: NodeClient, expected: set[int]) -> dict[str, Any]:
    """Waits until the client's remote presence is exactly ``expected`` (by client id)."""
    with anyio.fail_after(30):
        while True:
            state = await client.call("state")
            if {p["clientID"] for p in state["presence"]} == expected:
                return state
            await asyncio.sleep(0.05)


async def test_a_dozen_stock_clients_keep_presence_and_leave_no_ghosts(
    server: Server, token: str, node_token: str, plan_id: str
) -> None:
    """Stock y-websocket clients send back every awareness change they hear, other people's
    included. With more people in a plan than one connection may introduce (8), those echoes
    were counted against the connection relaying them and closed it with 4400; and the echo of
    someone who has left must not bring their presence back."""
    with anyio.fail_after(180):
        async with AsyncExitStack() as staying:
            casey = [
                await staying.enter_async_context(node_client(server, plan_id, token))
                for _ in range(6)
            ]
            async with AsyncExitStack() as leaving:
                nora = [
                    await leaving.enter_async_context(node_client(server, plan_id, node_token))
                    for _ in range(6)
                ]
                ids = {}
                for c in casey + nora:
                    ids[c] = (await c.call("synced"))["clientID"]
                    await c.call("user", user={"name": "anyone", "color": "#123456"})
                for c in casey + nora:
                    await _until_presence(c, set(ids.values()) - {ids[c]})
            # Nora's six have left; Casey's six heard the removals and echoed them.
            casey_ids = {ids[c] for c in casey}
            for c in casey:
                await _until_presence(c, casey_ids - {ids[c]})
            async with node_client(server, plan_id, token) as fresh:
                await fresh.call("synced")
                state = await _until_presence(fresh, casey_ids)
            heard = {
                entry["clientID"]
                for frame in state["frames"]
                if frame["type"] == "awareness"
                for entry in frame["entries"]
                if entry["state"] is not None
            }
            assert heard.isdisjoint(ids[c] for c in nora), "a departed client's presence came back"
            for c in casey:
                assert (await c.call("state"))["closes"] == []


async def test_a_late_echo_of_presence_that_has_left_does_not_bring_it_back(
    server: Server, token: str, node_token: str, plan_id: str
) -> None:
    """A client that heard someone's presence may send it back after that person has left (as
    stock y-websocket clients send back what they hear); the server knows it left and does not
    take it for new presence of the relaying connection."""
    casey = f"{server.ws}/{plan_id}?token={token}"
    nora = f"{server.ws}/{plan_id}?token={node_token}"
    heard = {"user": {"name": "Casey CSM"}}
    with anyio.fail_after(30):
        async with peer(casey) as watcher, peer(nora) as relay:
            async with peer(casey) as leaver:
                await leaver.send(awareness_frame([(777, 3, heard)]))
                await wait_for(lambda: any(c == 777 for c, _, _ in relay.awareness()))
            # The leaver is gone: everyone was told 777 left.
            await wait_for(lambda: (777, 4, None) in watcher.awareness())
            # The relay sends back what it had heard, then its own presence: once the watcher
            # has that, the server has handled the echo before it (one socket, in order).
            await relay.send(awareness_frame([(777, 3, heard)]))
            await relay.send(awareness_frame([(888, 1, {"user": {"name": "Nora"}})]))
            await wait_for(lambda: any(c == 888 for c, _, _ in watcher.awareness()))
            after = watcher.awareness()[watcher.awareness().index((777, 4, None)) :]
            assert all(c != 777 or state is None for c, _, state in after), after
            async with peer(casey) as late:
                await wait_for(lambda: any(c == 888 for c, _, _ in late.awareness()))
                assert all(c != 777 for c, _, _ in late.awareness())

"""A broken or hostile connection is closed alone, with its named code, and breaks nothing.

Two well-behaved clients share a room; a third raw websocket misbehaves. Only that third
connection is closed, with the close code the protocol names for it; the two others keep
syncing, the server stays up, its log says why without a traceback, and after a restart the
document is exactly what the good clients had (nothing half-applied or half-logged).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
import websockets
from pycrdt import Doc

from tests.support.servers import Database, Server
from tests.support.wire import (
    SYNC_STEP1,
    peer,
    sync_frame,
    update_frame,
    var_bytes,
    var_uint,
    wait_for,
)
from tests.support.yclient import add_paragraph, fragment, paragraphs

pytestmark = pytest.mark.anyio

MAX_FRAME_BYTES = 4096

# Close codes, as server/live/protocol.py names them (written out: the test states the contract).
BAD_FRAME = 4400
UNAUTHORIZED = 4401
PLAN_NOT_FOUND = 4404
FRAME_TOO_LARGE = 4413


def a_real_update(text: str) -> bytes:
    """A valid Yjs update from an unrelated document: one paragraph."""
    doc = Doc()
    add_paragraph(doc, text)
    return doc.get_update()


def tampered(token: str) -> str:
    """The token with one character of its signature changed."""
    last = token[-2]
    return token[:-2] + ("A" if last != "A" else "B") + token[-1]


@dataclass(frozen=True)
class Case:
    code: int
    logged: str  # what the server's log says about the close
    frame: bytes | str | None = None  # sent once the socket is open
    path: str = "{plan_id}?token={token}"


CASES = {
    # Frames that break the y-protocols framing: rejected before reaching the document.
    "garbage bytes": Case(BAD_FRAME, "malformed frame", b"\x00\x00\xde\xad\xbe\xef\x13\x37"),
    "unknown message type": Case(BAD_FRAME, "unknown message type 7", b"\x07\x00\x00"),
    "truncated varint": Case(BAD_FRAME, "truncated integer", b"\x00\x02\x85"),
    "unknown sync message": Case(BAD_FRAME, "unknown sync message 5", b"\x00\x05\x00"),
    "bad state vector": Case(BAD_FRAME, "bad state vector", sync_frame(SYNC_STEP1, b"\xff\xff")),
    "awareness not JSON": Case(
        BAD_FRAME,
        "awareness state is not JSON",
        b"\x01" + var_bytes(var_uint(1) + var_uint(7) + var_uint(1) + var_bytes(b"{not json")),
    ),
    "awareness JSON nested too deep": Case(
        BAD_FRAME,
        "awareness state is not JSON",
        b"\x01" + var_bytes(var_uint(1) + var_uint(7) + var_uint(1) + var_bytes(b"[" * 3000)),
    ),
    # Well-framed sync updates whose payload is not a Yjs update: rejected by the document.
    "update that is not Yjs": Case(
        BAD_FRAME, "update could not be applied", update_frame(b"\xde\xad\xbe\xef")
    ),
    "truncated Yjs update": Case(
        BAD_FRAME, "update could not be applied", update_frame(a_real_update("cut short")[:-4])
    ),
    "text frame": Case(BAD_FRAME, "text frame", '{"type": "sync"}'),
    # A valid update, only too big.
    "frame over the size limit": Case(
        FRAME_TOO_LARGE,
        f"over the {MAX_FRAME_BYTES} limit",
        update_frame(a_real_update("x" * (MAX_FRAME_BYTES + 100))),
    ),
    # Refused at connect time.
    "unknown plan": Case(PLAN_NOT_FOUND, "no such plan", path="no-such-plan?token={token}"),
    "missing token": Case(UNAUTHORIZED, "no valid session, link or token", path="{plan_id}"),
    "bad token": Case(
        UNAUTHORIZED, "no valid session, link or token", path="{plan_id}?token=tdm_not-a-token"
    ),
    "tampered token": Case(
        UNAUTHORIZED, "no valid session, link or token", path="{plan_id}?token={tampered}"
    ),
}


# One server per backend for the module (restarted by each test), with a small frame limit.


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp(f"hostile-{backend}")
    db = Database(backend, tmp, at_head=True)
    srv = Server(
        data_dir=tmp,
        database_url=db.url,
        extra_env={"TANDEM_MAX_FRAME_BYTES": str(MAX_FRAME_BYTES)},
    ).start()
    yield srv
    srv.stop()
    db.drop()


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    server.create_user("csm@vendor.example", "Casey CSM")
    return server.create_token("csm@vendor.example")


async def misbehave(server: Server, case: Case, plan_id: str, token: str) -> tuple[int, str]:
    """Open the hostile connection, send its frame, and read until the server closes it."""
    path = case.path.format(plan_id=plan_id, token=token, tampered=tampered(token))
    async with websockets.connect(f"{server.ws}/{path}", max_size=None) as ws:
        if case.frame is not None:
            await ws.send(case.frame)
        with anyio.fail_after(10):
            try:
                while True:
                    await ws.recv()
            except websockets.ConnectionClosed:
                pass
        assert ws.close_code is not None
        return ws.close_code, ws.close_reason or ""


@pytest.mark.parametrize("name", list(CASES))
async def test_a_misbehaving_connection_is_closed_alone(
    server: Server, token: str, plan_id: str, name: str
) -> None:
    case = CASES[name]
    url = f"{server.ws}/{plan_id}?token={token}"
    log_before = len(server.log())
    with anyio.fail_after(60):
        async with peer(url) as a, peer(url) as b:
            add_paragraph(a.doc, "a, before")
            add_paragraph(b.doc, "b, before")
            await wait_for(lambda: len(paragraphs(a.doc)) == len(paragraphs(b.doc)) == 2)

            code, reason = await misbehave(server, case, plan_id, token)
            assert code == case.code, reason
            assert reason  # a human-readable reason goes with the code

            # The good clients were not touched and keep editing together.
            add_paragraph(a.doc, "a, after")
            add_paragraph(b.doc, "b, after")
            await wait_for(
                lambda: len(paragraphs(a.doc)) == len(paragraphs(b.doc)) == 4,
                what="the good clients syncing after the hostile close",
            )
            assert paragraphs(a.doc) == paragraphs(b.doc)
            assert not a.closed.is_set() and not b.closed.is_set()
            good = str(fragment(a.doc))

        # The server is up, and says why it closed the connection, without a traceback.
        assert server.proc is not None and server.proc.poll() is None
        assert httpx.get(f"{server.http}/healthz", timeout=5).status_code == 200
        log = server.log()
        assert case.logged in log[log_before:]
        assert "Traceback" not in log

        # Nothing half-written: after a restart the document is what the good clients had.
        assert server.stop() == 0
        await anyio.to_thread.run_sync(server.start)
        async with peer(url) as fresh:
            assert str(fragment(fresh.doc)) == good
            assert sorted(paragraphs(fresh.doc)) == [
                "a, after",
                "a, before",
                "b, after",
                "b, before",
            ]

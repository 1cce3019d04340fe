"""Live sync over a real server with real pycrdt clients."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import websockets
from pycrdt import Doc

from tests.support.servers import Database, Server
from tests.support.wire import MSG_SYNC, SYNC_STEP1, SYNC_UPDATE, read_var_bytes
from tests.support.yclient import add_paragraph, connect, paragraphs

pytestmark = pytest.mark.anyio


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


async def test_two_pycrdt_clients_converge(server: Server, token: str, plan_id: str) -> None:
    async with (
        connect(server.ws, plan_id, token) as (a, _),
        connect(server.ws, plan_id, token) as (b, _),
    ):
        add_paragraph(a, "from a")
        add_paragraph(b, "from b")
        await wait_for(lambda: len(paragraphs(a)) == 2 and len(paragraphs(b)) == 2)
        assert sorted(paragraphs(a)) == sorted(paragraphs(b)) == ["from a", "from b"]


async def test_compressed_and_plain_connections_get_every_frame_size(
    server: Server, token: str, plan_id: str
) -> None:
    """A plain connection (no permessage-deflate) is sent frames the room encoded once; a
    deflating one through the websocket library. Updates whose frames need each of the three
    length encodings (7-bit, 16-bit, 64-bit) reach both intact."""
    texts = ["short", "m" * 300, "l" * 70_000]
    async with (
        connect(server.ws, plan_id, token, compression=None) as (plain, plain_ws),
        connect(server.ws, plan_id, token) as (deflating, deflating_ws),
        connect(server.ws, plan_id, token, compression=None) as (writer, _),
    ):
        assert not plain_ws.protocol.extensions
        assert [e.name for e in deflating_ws.protocol.extensions] == ["permessage-deflate"]
        for text in texts:
            add_paragraph(writer, text)
        await wait_for(lambda: paragraphs(plain) == texts and paragraphs(deflating) == texts)


async def test_content_survives_restart(server: Server, token: str, plan_id: str) -> None:
    async with (
        connect(server.ws, plan_id, token) as (a, _),
        connect(server.ws, plan_id, token) as (b, _),
    ):
        add_paragraph(a, "kept across restarts")
        await wait_for(lambda: paragraphs(b) == ["kept across restarts"])
    server.stop()
    server.start()
    async with connect(server.ws, plan_id, token) as (c, _):
        assert paragraphs(c) == ["kept across restarts"]


async def test_a_reader_that_stalls_gets_every_update_in_order(
    server: Server, token: str, plan_id: str
) -> None:
    """A plain connection whose client stops reading: once the kernel's buffers are full the
    server's transport pauses (flow control) and frames wait in the connection's queue. When
    the client reads again, while edits keep coming, every frame arrives, in log order: none
    written since overtakes the ones queued before it."""
    stalled_count, size = 150, 40_000
    # More than the kernel can hold for this socket (the client's 64 KiB receive buffer, the
    # server's largest send buffer), so the server's own transport has to pause.
    wmem_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    assert stalled_count * size > 64 * 1024 + wmem_max + (1 << 20)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect(("127.0.0.1", server.port))
    url = f"{server.ws}/{plan_id}?token={token}"
    expected = [f"{i:04d}" + "x" * size for i in range(2 * stalled_count)]
    async with (
        websockets.connect(url, sock=sock, max_size=None, max_queue=1, compression=None) as stalled,
        connect(server.ws, plan_id, token, compression=None) as (writer, _),
        connect(server.ws, plan_id, token) as (watcher, _),
    ):
        assert (await stalled.recv())[:2] == bytes((MSG_SYNC, SYNC_STEP1))  # it is in the room
        for text in expected[:stalled_count]:
            add_paragraph(writer, text)
        await wait_for(lambda: len(paragraphs(watcher)) == stalled_count, timeout=60)

        async def keep_writing() -> None:
            for text in expected[stalled_count:]:
                add_paragraph(writer, text)
                await anyio.sleep(0.002)

        doc, seen = Doc(), 0
        async with anyio.create_task_group() as tg:
            tg.start_soon(keep_writing)
            with anyio.fail_after(60):
                while seen < len(expected):
                    frame = await stalled.recv()
                    assert isinstance(frame, bytes)
                    if frame[:2] != bytes((MSG_SYNC, SYNC_UPDATE)):
                        continue
                    doc.apply_update(read_var_bytes(frame, 2)[0])
                    seen += 1
                    # In order: each update applies at once (one that overtook an earlier
                    # one would wait for the paragraph it follows, and the count would lag).
                    assert len(paragraphs(doc)) == seen
        assert paragraphs(doc) == expected


@pytest.fixture
def capped_server(database: Database, tmp_path: Path) -> Iterator[Server]:
    srv = Server(
        data_dir=tmp_path,
        database_url=database.url,
        extra_env={"TANDEM_MAX_QUEUED_BYTES": str(1 << 20)},
    ).start()
    yield srv
    srv.stop()


async def test_a_client_that_stops_reading_is_dropped_past_the_cap(
    capped_server: Server,
) -> None:
    """Past TANDEM_MAX_QUEUED_BYTES unsent, the server drops a client that is not reading
    (logging 4408), and the room carries on: the writer and a watcher keep syncing, and the
    dropped client, connecting again, gets the whole plan."""
    server = capped_server
    server.create_user("csm@vendor.example", "Casey CSM")
    token = server.create_token("csm@vendor.example")
    plan_id = server.create_plan(token)
    count, size = 200, 40_000  # 8 MB: past the kernel's buffers and the 1 MiB cap
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect(("127.0.0.1", server.port))
    url = f"{server.ws}/{plan_id}?token={token}"
    expected = [f"{i:04d}" + "x" * size for i in range(count)]
    async with (
        websockets.connect(url, sock=sock, max_size=None, max_queue=1, compression=None) as stalled,
        connect(server.ws, plan_id, token, compression=None) as (writer, _),
        connect(server.ws, plan_id, token) as (watcher, _),
    ):
        assert (await stalled.recv())[:2] == bytes((MSG_SYNC, SYNC_STEP1))  # it is in the room
        for text in expected:
            add_paragraph(writer, text)
        await wait_for(lambda: paragraphs(watcher) == expected, timeout=60)
        await wait_for(lambda: "client not reading" in server.log(), timeout=30)

        # The stalled client reads what had reached its side, then finds the socket dropped.
        updates = 0
        with anyio.fail_after(30), pytest.raises(websockets.ConnectionClosedError):
            while True:
                frame = await stalled.recv()
                updates += frame[:2] == bytes((MSG_SYNC, SYNC_UPDATE))
        assert updates < count

        # The others were not touched.
        add_paragraph(watcher, "after")
        await wait_for(lambda: paragraphs(writer)[-1:] == ["after"])
    log = server.log()
    assert "with 4408" in log and "Traceback" not in log
    async with connect(server.ws, plan_id, token) as (again, _):
        assert paragraphs(again) == [*expected, "after"]

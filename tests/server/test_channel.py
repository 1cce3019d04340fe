"""Connection's outgoing path: frames go straight to the ASGI server's send when nothing is
queued before them, and a send the server pauses (flow control) keeps every later frame
behind it, in order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.websockets import WebSocketState
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.streams import StreamReader

from server.identity import Identity
from server.live.connection import RAW_SEND, Connection, binary_frame

pytestmark = pytest.mark.anyio

IDENTITY = Identity(user_id=1, name="Ann", email=None, via="token", credential_id="t")


class FakeSocket:
    """Just what Connection touches of Starlette's WebSocket."""

    def __init__(self, raw_send: Any) -> None:
        self.scope = {RAW_SEND: raw_send}
        self.application_state = WebSocketState.CONNECTED
        self.sent_through_starlette: list[bytes] = []
        self.closed: tuple[int, str] | None = None

    async def send_bytes(self, data: bytes) -> None:
        self.sent_through_starlette.append(data)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.application_state = WebSocketState.DISCONNECTED


async def test_frames_are_written_at_once_when_nothing_waits_before_them() -> None:
    written: list[bytes] = []

    async def raw_send(message: dict[str, Any]) -> None:
        written.append(message["bytes"])

    ws = FakeSocket(raw_send)
    conn = Connection(ws, IDENTITY, "p")  # type: ignore[arg-type]
    for i in range(3):
        conn.send(b"frame %d" % i)
    # No task ran in between: the frames were written synchronously, in order.
    assert written == [b"frame 0", b"frame 1", b"frame 2"]
    sender = asyncio.create_task(conn.run_sender())
    conn.close(4000, "bye")
    await asyncio.wait_for(sender, 5)
    assert ws.closed == (4000, "bye") and ws.sent_through_starlette == []


async def test_a_paused_send_keeps_later_frames_behind_it() -> None:
    written: list[bytes] = []
    gate = asyncio.get_running_loop().create_future()

    async def raw_send(message: dict[str, Any]) -> None:
        if not written and not gate.done():
            await gate  # the server's flow control: the transport is full
        written.append(message["bytes"])

    ws = FakeSocket(raw_send)
    conn = Connection(ws, IDENTITY, "p")  # type: ignore[arg-type]
    sender = asyncio.create_task(conn.run_sender())
    conn.send(b"first")  # paused
    conn.send(b"second")  # queued behind it
    conn.send(b"third")
    await asyncio.sleep(0.01)
    assert written == []
    gate.set_result(None)
    await asyncio.sleep(0.01)
    assert written == [b"first"] and ws.sent_through_starlette == [b"second", b"third"]
    conn.send(b"fourth")  # the queue is empty again: straight to the server
    assert written == [b"first", b"fourth"]
    conn.close(4000, "bye")
    await asyncio.wait_for(sender, 5)
    assert ws.closed == (4000, "bye")


async def test_a_send_that_fails_ends_the_connection_quietly() -> None:
    async def raw_send(message: dict[str, Any]) -> None:
        raise OSError("peer gone")

    ws = FakeSocket(raw_send)
    conn = Connection(ws, IDENTITY, "p")  # type: ignore[arg-type]
    sender = asyncio.create_task(conn.run_sender())
    conn.send(b"lost")
    assert conn.closing
    conn.send(b"dropped")  # after the failure: ignored, no error
    await asyncio.wait_for(sender, 5)
    assert ws.closed is None  # nothing more is written to a socket that failed


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_binary_frame_is_what_the_websocket_library_reads(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    wire = binary_frame(payload)
    reader = StreamReader()
    reader.feed_data(wire)
    parser = Frame.parse(reader.read_exact, mask=False)
    with pytest.raises(StopIteration) as done:
        next(parser)
    frame = done.value.value
    assert (frame.opcode, frame.fin, frame.data) == (Opcode.BINARY, True, payload)
    assert not (frame.rsv1 or frame.rsv2 or frame.rsv3)
    assert not reader.buffer  # nothing left over


async def test_a_client_past_the_cap_is_closed_and_its_queue_freed() -> None:
    """Another ASGI server (no transport to abort): the queue is dropped at once, the paused
    send is abandoned, and 4408 is what the sender sends next."""
    paused: list[bytes] = []

    async def raw_send(message: dict[str, Any]) -> None:
        paused.append(message["bytes"])
        await asyncio.get_running_loop().create_future()  # the client never reads again

    ws = FakeSocket(raw_send)
    conn = Connection(ws, IDENTITY, "p", max_queued_bytes=100)  # type: ignore[arg-type]
    conn.send(b"x" * 40)  # paused in the server
    conn.send(b"y" * 40)  # queued: 80 bytes
    assert not conn.closing
    conn.send(b"z" * 40)  # 120 bytes: past the cap
    assert conn.closing and conn._queued_bytes == 0
    conn.send(b"later")  # ignored
    await asyncio.wait_for(conn.run_sender(), 5)
    assert ws.closed == (4408, "client is not reading fast enough")
    assert paused == [b"x" * 40] and ws.sent_through_starlette == []


# Under uvicorn itself: its websockets protocol, with a transport that records what is written.


class RecordingTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True


async def _no_app(scope: Any, receive: Any, send: Any) -> None:
    pass


class UvicornSocket(FakeSocket):
    """Starlette's send goes through the middleware to the same protocol's send."""

    async def send_bytes(self, data: bytes) -> None:
        await self.scope[RAW_SEND]({"type": "websocket.send", "bytes": data})


def uvicorn_protocol(transport: RecordingTransport) -> WebSocketsSansIOProtocol:
    """uvicorn's protocol as it is once a plain (extension-less) handshake is done."""
    config = Config(app=_no_app, ws="websockets-sansio", log_config=None)
    config.load()
    proto = WebSocketsSansIOProtocol(
        config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop()
    )
    proto.transport = transport  # type: ignore[assignment]
    proto.handshake_complete = True
    proto.conn.state = State.OPEN
    return proto


async def test_under_uvicorn_a_plain_socket_gets_frames_encoded_once_and_in_order() -> None:
    transport = RecordingTransport()
    proto = uvicorn_protocol(transport)
    conn = Connection(UvicornSocket(proto.send), IDENTITY, "p")  # type: ignore[arg-type]
    assert conn._plain is proto  # the fast path is on with the uvicorn this project installs

    shared = binary_frame(b"one")
    conn.send(b"one", shared)
    assert transport.written == [shared]  # the caller's bytes, as they are

    proto.pause_writing()  # the transport is full: frames wait, in order
    sender = asyncio.create_task(conn.run_sender())
    for frame in (b"two", b"three"):
        conn.send(frame)
    await asyncio.sleep(0.01)
    assert transport.written == [shared]
    proto.resume_writing()
    conn.send(b"four")  # writable again, but two and three are not out yet: it waits
    await asyncio.sleep(0.01)
    conn.send(b"five")  # the queue is empty again: straight to the transport
    # uvicorn's own path wrote the same bytes the fast path does, and nothing overtook.
    frames = (b"one", b"two", b"three", b"four", b"five")
    assert transport.written == [binary_frame(f) for f in frames]
    assert not conn._queue
    sender.cancel()


async def test_under_uvicorn_a_client_past_the_cap_is_aborted() -> None:
    transport = RecordingTransport()
    proto = uvicorn_protocol(transport)
    conn = Connection(UvicornSocket(proto.send), IDENTITY, "p", max_queued_bytes=100)  # type: ignore[arg-type]
    proto.pause_writing()
    for _ in range(3):
        conn.send(b"x" * 40)
    assert transport.aborted and conn.closing and conn._queued_bytes == 0
    assert transport.written == []  # nothing queued was sent after all


async def test_a_connection_holds_no_queue_unless_a_frame_waits() -> None:
    """2,000 connections that almost never queue: each held an asyncio.Queue (four deques,
    about 3 KB) for nothing."""
    written: list[bytes] = []
    gate = asyncio.get_running_loop().create_future()

    async def raw_send(message: dict[str, Any]) -> None:
        if len(written) == 1 and not gate.done():
            await gate
        written.append(message["bytes"])

    ws = FakeSocket(raw_send)
    conn = Connection(ws, IDENTITY, "p")  # type: ignore[arg-type]
    sender = asyncio.create_task(conn.run_sender())
    conn.send(b"first")  # written at once
    assert conn._queue is None
    conn.send(b"second")  # paused: it waits, and what follows waits behind it
    conn.send(b"third")
    assert conn._queue is not None
    gate.set_result(None)
    await asyncio.sleep(0.01)
    assert written == [b"first", b"second"] and ws.sent_through_starlette == [b"third"]
    assert conn._queue is None  # drained
    conn.close(4000, "bye")
    await asyncio.wait_for(sender, 5)
    assert ws.closed == (4000, "bye")

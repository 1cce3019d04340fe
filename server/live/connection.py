"""One websocket connection: who is behind it, and an ordered, bounded outgoing queue.

Room code talks to a ``Connection`` only: it never touches Starlette's websocket, so the
per-connection rules (identity, read-only, back-pressure) live here.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketState
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from ..identity import Identity
from .keys import RoomKey
from .protocol import Close

log = logging.getLogger(__name__)

# A client this far behind is cut off rather than allowed to grow the server without bound;
# it reconnects and catches up through a fresh sync (default of TANDEM_MAX_QUEUED_BYTES).
MAX_QUEUED_BYTES = 32 * 1024 * 1024


class _CloseRequest:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class _Suspended:
    """A send the ASGI server paused (its flow control), for the sender task to finish."""

    __slots__ = ("coro", "waiting_on", "size")

    def __init__(self, coro: Coroutine[Any, Any, None], waiting_on: object, size: int) -> None:
        self.coro = coro
        self.waiting_on = waiting_on
        self.size = size

    async def finish(self) -> None:
        # What a Task does with a coroutine that yielded: wait until what it yielded (a
        # future, or None for a bare yield) is done, then resume it, until it returns. The
        # coroutine reads the future's outcome itself when resumed.
        while True:
            fut = self.waiting_on
            if isinstance(fut, asyncio.Future) and not fut.done():
                await _settled(fut)
            elif not isinstance(fut, asyncio.Future):
                await asyncio.sleep(0)
            try:
                self.waiting_on = self.coro.send(None)
            except StopIteration:
                return


async def _settled(fut: asyncio.Future[Any]) -> None:
    """Wait until ``fut`` is done, without awaiting it (its outcome is not ours to take)."""
    done = asyncio.get_running_loop().create_future()
    fut.add_done_callback(lambda _f: None if done.done() else done.set_result(None))
    await done


#: Scope key under which the outermost middleware leaves the ASGI server's own ``send``.
RAW_SEND = "tandem.raw_send"


def binary_frame(payload: bytes) -> bytes:
    """``payload`` as one binary websocket frame as a server sends it: final, unmasked,
    uncompressed (RFC 6455, section 5.2). The same bytes serve every connection that
    negotiated no extension, so a room encodes a broadcast once, not once per receiver."""
    n = len(payload)
    if n < 126:
        return bytes((0x82, n)) + payload
    if n < 1 << 16:
        return b"\x82\x7e" + n.to_bytes(2, "big") + payload
    return b"\x82\x7f" + n.to_bytes(8, "big") + payload


# What Connection reads of uvicorn's protocol; a uvicorn without one of them gets the ASGI send
# for every frame (tests/server/test_channel.py fails then, so it does not go unnoticed).
_PROTOCOL_ATTRIBUTES = ("writable", "handshake_complete", "close_sent", "disconnected", "conn")


def _uvicorn_protocol(send: object) -> WebSocketsSansIOProtocol | None:
    """uvicorn's websockets protocol behind ``send``; None under any other ASGI server or
    protocol, whose ``send`` is then used for everything."""
    proto = getattr(send, "__self__", None)
    if (
        isinstance(proto, WebSocketsSansIOProtocol)
        and all(hasattr(proto, name) for name in _PROTOCOL_ATTRIBUTES)
        and getattr(proto, "transport", None) is not None
    ):
        return proto
    return None


class Connection:
    def __init__(
        self,
        websocket: WebSocket,
        identity: Identity,
        key: RoomKey,
        *,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
    ) -> None:
        self.websocket = websocket
        self.max_queued_bytes = max_queued_bytes
        self.identity = identity
        self.key = key  # of the room it joins
        self.closing = False
        self.awareness_clients: set[int] = set()
        self.refused = False  # an update of its was refused: ignore what it sent after
        self.unapplied_bytes = 0  # of updates held back by the room for missing dependencies
        self.told_read_only = False
        # What waits for the sender task, in order; made when something first has to wait (an
        # asyncio.Queue per connection was four deques, 3 KB, for a queue nearly always empty).
        self._queue: deque[bytes | _CloseRequest | _Suspended] | None = None
        self._wakeup: asyncio.Future[None] | None = None  # the sender waiting for an item
        self._queued_bytes = 0
        # Frames go straight to the ASGI server's send when nothing is queued before them:
        # a room forwards each edit to every other connection, and waking one sender task per
        # connection per edit cost more than the send itself (bench/: the last of 50
        # receivers got an edit ~0.75 ms after the first at the median, 2.6 ms at p99).
        self._raw_send: Callable[[Message], Coroutine[Any, Any, None]] | None = websocket.scope.get(
            RAW_SEND
        )
        # Under uvicorn, with no extension negotiated, a frame encoded once per broadcast is
        # written to the transport itself: the ASGI send re-encodes it for every receiver,
        # and that was a third of a broadcast's time (bench/: 49 receivers, 1.3 -> 0.9 ms).
        self._uvicorn = _uvicorn_protocol(self._raw_send)
        # Only without an extension (permessage-deflate) is a frame from binary_frame what
        # the protocol itself would send.
        self._plain = self._uvicorn if self._uvicorn and not self._uvicorn.conn.extensions else None

    def __repr__(self) -> str:
        return f"<Connection room={self.key} user={self.identity.user_id} via={self.identity.via}>"

    def send(self, frame: bytes, wire: bytes | None = None) -> None:
        """Send or queue a frame; never blocks. A client too slow to drain its queue is closed.
        ``wire`` is ``binary_frame(frame)``, when the caller has it already."""
        if self.closing:
            return
        if self._raw_send is not None and not self._queue and not self._queued_bytes:
            if self._plain is not None and self._write_plain(wire or binary_frame(frame)):
                return
            self._send_now(frame)
            return
        self._queued_bytes += len(frame)
        if self._queued_bytes > self.max_queued_bytes:
            self._cut_off()
            return
        self._put(frame)

    def _put(self, item: bytes | _CloseRequest | _Suspended) -> None:
        if self._queue is None:
            self._queue = deque()
        self._queue.append(item)
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _get(self) -> bytes | _CloseRequest | _Suspended:
        while not self._queue:
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
        item = self._queue.popleft()
        if not self._queue:
            self._queue = None  # drained: back to holding nothing
        return item

    def _cut_off(self) -> None:
        """Drop a client that stopped reading, and free what was queued for it at once.

        A close frame would only wait behind the frames the client is not reading, so under
        uvicorn the connection is aborted (the client sees 1006, reconnects and resyncs).
        Under another ASGI server 4408 is sent once the frame already in flight has gone."""
        log.warning(
            "closing %r with %d: %d bytes queued and unread (client not reading)",
            self,
            Close.TOO_SLOW,
            self._queued_bytes,
        )
        self.closing = True
        while self._queue:
            item = self._queue.popleft()
            if isinstance(item, _Suspended):
                item.coro.close()
        self._queued_bytes = 0
        if self._uvicorn is not None:
            self._uvicorn.transport.abort()  # uvicorn then reports the disconnect to the receiver
        self._put(_CloseRequest(Close.TOO_SLOW, "client is not reading fast enough"))

    def _write_plain(self, wire: bytes) -> bool:
        """Write an encoded frame to the transport, if the protocol would send a frame now
        without waiting: open, not closing, not paused by flow control. Otherwise False, and
        the frame takes the ASGI send, which waits, raises or drops it as the server decides."""
        proto = self._plain
        assert proto is not None
        if (
            proto.writable.is_set()
            and proto.handshake_complete
            and not proto.close_sent
            and not proto.disconnected
            and proto.conn.state is State.OPEN
            and not proto.transport.is_closing()
        ):
            proto.transport.write(wire)
            return True
        return False

    def _send_now(self, frame: bytes) -> None:
        assert self._raw_send is not None
        coro = self._raw_send({"type": "websocket.send", "bytes": frame})
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            return  # written to the transport already: the usual case
        except Exception as exc:  # noqa: BLE001 - the peer went away; same as in run_sender
            log.debug("send to %r stopped: %s", self, type(exc).__name__)
            self.closing = True
            self._put(_CloseRequest(0, ""))  # lets the sender task end
            return
        # Paused by the server's flow control: what follows queues behind it, in order.
        self._queued_bytes += len(frame)
        self._put(_Suspended(coro, waiting_on, len(frame)))

    def close(self, code: int, reason: str = "") -> None:
        """Close after the frames already queued have been sent."""
        if self.closing:
            return
        self.closing = True
        self._put(_CloseRequest(code, reason[:120]))

    async def run_sender(self) -> None:
        """Drain the queue to the socket, in order, until a close is requested or it drops."""
        ws = self.websocket
        try:
            while True:
                item = await self._get()
                if isinstance(item, _CloseRequest):
                    if item.code and ws.application_state == WebSocketState.CONNECTED:
                        await ws.close(item.code, item.reason)
                    return
                if isinstance(item, _Suspended):
                    await item.finish()
                    self._queued_bytes -= item.size
                    continue
                await ws.send_bytes(item)
                self._queued_bytes -= len(item)
        except (RuntimeError, OSError) as exc:
            # The peer went away while we were writing: an ordinary disconnect.
            log.debug("send to %r stopped: %s", self, exc)
        except Exception as exc:  # noqa: BLE001 - websockets raises its own ConnectionClosed types
            log.debug("send to %r stopped: %s", self, type(exc).__name__)
        finally:
            self.closing = True

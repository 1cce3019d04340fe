"""The y-websocket protocol at the frame level, for tests that shape or inspect single frames.

Written from the y-protocols/lib0 encoding, independently of the server's own ``protocol``
module, so a test never checks the server against itself.

``peer()`` is a pycrdt document synced over one raw `websockets` connection that records every
frame it receives and how the connection closed, and that outlives its connection: when the
server goes away the document stays, with whatever it had received (unlike pycrdt's Provider,
whose task group fails on a dropped socket).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import websockets
from pycrdt import Doc, TransactionEvent, create_sync_message, handle_sync_message

MSG_SYNC = 0
MSG_AWARENESS = 1
SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2


def var_uint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def var_bytes(payload: bytes) -> bytes:
    return var_uint(len(payload)) + payload


def read_var_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    length, pos = read_var_uint(data, pos)
    return data[pos : pos + length], pos + length


def sync_frame(sub: int, payload: bytes) -> bytes:
    return var_uint(MSG_SYNC) + var_uint(sub) + var_bytes(payload)


def update_frame(update: bytes) -> bytes:
    return sync_frame(SYNC_UPDATE, update)


def awareness_frame(entries: list[tuple[int, int, Any]]) -> bytes:
    """``entries``: (client id, clock, state); a state of None is a removal ("null")."""
    body = var_uint(len(entries))
    for client, clock, state in entries:
        body += var_uint(client) + var_uint(clock) + var_bytes(json.dumps(state).encode())
    return var_uint(MSG_AWARENESS) + var_bytes(body)


def parse_awareness(frame: bytes) -> list[tuple[int, int, Any]]:
    """An awareness frame's entries: (client id, clock, state decoded from JSON)."""
    body, _ = read_var_bytes(frame, 1)
    count, pos = read_var_uint(body, 0)
    entries = []
    for _ in range(count):
        client, pos = read_var_uint(body, pos)
        clock, pos = read_var_uint(body, pos)
        raw, pos = read_var_bytes(body, pos)
        entries.append((client, clock, json.loads(raw)))
    return entries


def state_vector(encoded: bytes) -> dict[int, int]:
    """A Yjs state vector as {client id: clock} (its encoding's order is unspecified)."""
    count, pos = read_var_uint(encoded, 0)
    out = {}
    for _ in range(count):
        client, pos = read_var_uint(encoded, pos)
        clock, pos = read_var_uint(encoded, pos)
        out[client] = clock
    return out


class Peer:
    """One raw connection and its document; see ``peer()``."""

    def __init__(self, ws: websockets.ClientConnection, doc: Doc) -> None:
        self.ws = ws
        self.doc = doc
        self.frames: list[bytes | str] = []
        self.synced = anyio.Event()
        self.closed = anyio.Event()
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._applying = False
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()  # None: no more edits
        self._leaving = False
        self._sent_all = anyio.Event()

    # What was received

    def sync_updates(self, since: int = 0) -> list[bytes]:
        """The SYNC_UPDATE frames received after the first ``since`` frames."""
        return [
            f
            for f in self.frames[since:]
            if isinstance(f, bytes) and f[:2] == bytes((MSG_SYNC, SYNC_UPDATE))
        ]

    def awareness(self) -> list[tuple[int, int, Any]]:
        """Every awareness entry received, in order."""
        return [
            entry
            for f in self.frames
            if isinstance(f, bytes) and f[:1] == bytes((MSG_AWARENESS,))
            for entry in parse_awareness(f)
        ]

    # Sending

    async def send(self, frame: bytes | str) -> None:
        await self.ws.send(frame)

    def _on_transaction(self, event: TransactionEvent) -> None:
        # Once the connection is gone, edits stay local, like offline edits.
        if not self._applying and not self._leaving and not self.closed.is_set():
            self._outbox.put_nowait(update_frame(event.update))

    async def _send_loop(self) -> None:
        try:
            while (frame := await self._outbox.get()) is not None:
                await self.ws.send(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            self._sent_all.set()

    async def _receive_loop(self) -> None:
        try:
            async for frame in self.ws:
                self.frames.append(frame)
                if isinstance(frame, bytes) and frame[:1] == bytes((MSG_SYNC,)):
                    self._applying = True
                    try:
                        reply = handle_sync_message(frame[1:], self.doc)
                    finally:
                        self._applying = False
                    if frame[1] == SYNC_STEP2:
                        self.synced.set()
                    if reply is not None:
                        await self.ws.send(reply)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self.closed.set()


@asynccontextmanager
async def peer(url: str, doc: Doc | None = None) -> AsyncIterator[Peer]:
    """A synced connection to ``url`` (a full plan socket URL, token included).

    It sends sync step 1 and waits for the server's answer; local transactions on the
    document are sent as updates while the connection is open.
    """
    doc = doc if doc is not None else Doc()
    async with websockets.connect(url, max_size=None) as ws:
        p = Peer(ws, doc)
        subscription = doc.observe(p._on_transaction)
        # Plain tasks rather than a task group, so the test body's own failures are not
        # wrapped in exception groups.
        tasks = [asyncio.ensure_future(p._receive_loop()), asyncio.ensure_future(p._send_loop())]
        try:
            await ws.send(create_sync_message(doc))
            with anyio.fail_after(10):
                await p.synced.wait()
            yield p
            # Leaving normally: local edits made so far still go out before the socket closes.
            p._leaving = True
            p._outbox.put_nowait(None)
            with anyio.move_on_after(5):
                await p._sent_all.wait()
        finally:
            doc.unobserve(subscription)
            p._leaving = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]


async def wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` until it holds, failing after ``timeout`` seconds."""
    try:
        with anyio.fail_after(timeout):
            while not predicate():
                await anyio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(
            f"timed out after {timeout}s waiting for {what or predicate}"
        ) from None

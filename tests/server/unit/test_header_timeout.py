"""``with_header_timeout``: the deadline for a request head ends when the connection becomes
a websocket, so the HTTP protocol it leaves behind is not kept alive by its timer."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

from server.http.transport import with_header_timeout


class FakeTransport:
    def __init__(self) -> None:
        self.protocol: object = None
        self.closed = False

    def is_closing(self) -> bool:
        return self.closed

    def get_protocol(self) -> object:
        return self.protocol

    def close(self) -> None:
        self.closed = True


class FakeHTTP:
    """What the wrapper touches of uvicorn's HTTP protocol."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.cycle = None
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.protocol = self

    def connection_lost(self, exc: Exception | None) -> None:
        pass

    def on_response_complete(self) -> None:
        pass

    def handle_websocket_upgrade(self, *args: Any) -> None:
        self.transport.protocol = object()  # the websocket protocol takes the transport


def test_an_upgraded_connection_drops_its_head_deadline() -> None:
    async def main() -> None:
        protocol = with_header_timeout(10.0, FakeHTTP)(asyncio.get_running_loop())
        transport = FakeTransport()
        protocol.connection_made(transport)
        assert protocol._head_deadline is not None
        protocol.handle_websocket_upgrade()
        assert protocol._head_deadline is None
        gone = weakref.ref(protocol)
        del protocol
        gc.collect()
        assert gone() is None  # nothing (no timer) keeps the old protocol alive
        assert not transport.closed

    asyncio.run(main())


def test_a_connection_without_a_request_head_is_still_closed() -> None:
    async def main() -> None:
        protocol = with_header_timeout(0.01, FakeHTTP)(asyncio.get_running_loop())
        transport = FakeTransport()
        protocol.connection_made(transport)
        await asyncio.sleep(0.05)
        assert transport.closed

    asyncio.run(main())

"""The server as a network peer: deadlines for request heads and bodies, a size limit on every
body, and which proxies may name the client.

uvicorn times out idle keep-alive connections, but only once a response has been sent: a
connection that never sends a whole request head (a silent TCP connect, a slowloris trickling
headers) was held forever. ``with_header_timeout`` gives every connection a deadline to
complete its request head, from when it opens and again after each response; ``RequestBodies``
gives the body that follows a deadline and a size limit.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.auto import AutoHTTPProtocol

log = logging.getLogger(__name__)


def with_header_timeout(seconds: float, base: type[asyncio.Protocol] = AutoHTTPProtocol) -> type:
    """uvicorn's HTTP protocol, closing connections whose request head is not complete
    ``seconds`` after they opened or after their last response."""

    class HeaderTimeoutProtocol(base):  # type: ignore[valid-type, misc]  # a run-time base
        _head_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_head_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_head_deadline()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_head_deadline()

        def handle_websocket_upgrade(self, *args: Any) -> None:
            # The websocket protocol takes over the connection (and has its own pings). An
            # armed deadline kept this protocol, its parser and its request alive for
            # ``seconds`` after every upgrade: in a connect storm, about 3 KB of the 30 KB of
            # Python objects each fresh connection held (``bench/run.py --scenario rooms``).
            self._disarm_head_deadline()
            super().handle_websocket_upgrade(*args)

        def _arm_head_deadline(self) -> None:
            self._disarm_head_deadline()
            self._head_deadline = self.loop.call_later(seconds, self._head_deadline_passed)

        def _disarm_head_deadline(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _head_deadline_passed(self) -> None:
            self._head_deadline = None
            transport = self.transport
            if transport.is_closing() or transport.get_protocol() is not self:
                return  # closed already, or upgraded to a websocket (which has its own pings)
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a request whose head arrived is being served
            log.info("closing a connection that sent no complete request in %ss", seconds)
            transport.close()

    return HeaderTimeoutProtocol


def forwarded_allow_ips(trusted: tuple[str, ...]) -> dict[str, Any]:
    """uvicorn's proxy-header options: X-Forwarded-For/-Proto are believed only from the
    configured proxies. uvicorn's own default trusts 127.0.0.1, so anyone on the same host
    (or any reverse proxy that passes the header through) could pick the address that rate
    limits key on."""
    if not trusted:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(trusted)}


class _BodyRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RequestBodies:
    """Every HTTP request body, whatever the route: at most ``max_bytes`` (413), all of it
    within ``timeout`` seconds of the first read (408).

    A declared Content-Length is checked up front, but a chunked body declares none: it is
    counted as it streams in, before any form or multipart parser spools it to disk.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = _BodyRefused(413, f"request body is larger than {self.max_bytes} bytes")
        length = dict(scope["headers"]).get(b"content-length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(too_large, scope, receive, send)
            return
        received = 0
        deadline: float | None = None
        done = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, deadline, done
            if done:  # the body is in: what follows is waiting for a disconnect
                return await receive()
            if deadline is None:
                deadline = anyio.current_time() + self.timeout
            try:
                with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                    message = await receive()
            except TimeoutError:
                raise _BodyRefused(
                    408, f"request body not received within {self.timeout:g} seconds"
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                done = True
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise too_large
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _BodyRefused as refused:
            if started:
                raise
            log.info("refused a request body: %s", refused.message)
            await self._refuse(refused, scope, receive, send)

    @staticmethod
    async def _refuse(refused: _BodyRefused, scope: Scope, receive: Receive, send: Send) -> None:
        # Connection: close, so the rest of the body is not read into the void.
        response = JSONResponse(
            {"error": refused.message}, refused.status, headers={"connection": "close"}
        )
        await response(scope, receive, send)

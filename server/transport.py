"""What uvicorn needs from us beyond the app: a deadline on request headers, and which proxies
may name the client.

uvicorn times out idle keep-alive connections, but only once a response has been sent: a
connection that never sends a whole request head (a silent TCP connect, a slowloris trickling
headers) was held forever. ``with_header_timeout`` gives every connection a deadline to
complete its request head, from when it opens and again after each response.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

log = logging.getLogger(__name__)


def with_header_timeout(seconds: float, base: type[asyncio.Protocol] = AutoHTTPProtocol) -> type:
    """uvicorn's HTTP protocol, closing connections whose request head is not complete
    ``seconds`` after they opened or after their last response."""

    class HeaderTimeoutProtocol(base):  # type: ignore[valid-type, misc]
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

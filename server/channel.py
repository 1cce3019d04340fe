"""One websocket connection: who is behind it, and an ordered, bounded outgoing queue.

Room code talks to a ``Connection`` only: it never touches Starlette's websocket, so the
per-connection rules (identity, read-only, back-pressure) live here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from starlette.websockets import WebSocket, WebSocketState

from .protocol import Close

log = logging.getLogger(__name__)

# A client this far behind is cut off rather than allowed to grow the server without bound;
# it reconnects and catches up through a fresh sync.
MAX_QUEUED_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Identity:
    """Who is asking, as the server knows it (never as the client claims)."""

    user_id: int | None
    name: str
    email: str | None
    via: str  # "session", "token" (accounts), "link" or "embed" (visitors of one plan)
    credential_id: str
    read_only: bool = False
    # Set once the identity is scoped to a plan: the plan, the caller's role and side in it.
    plan_id: str | None = None
    role: str | None = None
    side: str | None = None
    workspace_owner: bool = False

    @property
    def is_account(self) -> bool:
        return self.via in ("session", "token")


class _CloseRequest:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class Connection:
    def __init__(self, websocket: WebSocket, identity: Identity, plan_id: str) -> None:
        self.websocket = websocket
        self.identity = identity
        self.plan_id = plan_id
        self.closing = False
        self.awareness_clients: set[int] = set()
        self.told_read_only = False
        self._queue: asyncio.Queue[bytes | _CloseRequest] = asyncio.Queue()
        self._queued_bytes = 0

    def __repr__(self) -> str:
        return (
            f"<Connection plan={self.plan_id} user={self.identity.user_id} via={self.identity.via}>"
        )

    def send(self, frame: bytes) -> None:
        """Queue a frame; never blocks. A client too slow to drain its queue is closed."""
        if self.closing:
            return
        self._queued_bytes += len(frame)
        if self._queued_bytes > MAX_QUEUED_BYTES:
            log.warning("closing %r: %d bytes queued and unread", self, self._queued_bytes)
            self.close(Close.TOO_SLOW, "client is not reading fast enough")
            return
        self._queue.put_nowait(frame)

    def close(self, code: int, reason: str = "") -> None:
        """Close after the frames already queued have been sent."""
        if self.closing:
            return
        self.closing = True
        self._queue.put_nowait(_CloseRequest(code, reason[:120]))

    async def run_sender(self) -> None:
        """Drain the queue to the socket, in order, until a close is requested or it drops."""
        ws = self.websocket
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, _CloseRequest):
                    if ws.application_state == WebSocketState.CONNECTED:
                        await ws.close(item.code, item.reason)
                    return
                self._queued_bytes -= len(item)
                await ws.send_bytes(item)
        except (RuntimeError, OSError) as exc:
            # The peer went away while we were writing: an ordinary disconnect.
            log.debug("send to %r stopped: %s", self, exc)
        except Exception as exc:  # noqa: BLE001 - websockets raises its own ConnectionClosed types
            log.debug("send to %r stopped: %s", self, type(exc).__name__)
        finally:
            self.closing = True

"""The plan websockets: ``@rule`` authenticates and authorizes, then frames go to the room."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.websockets import WebSocket

from server.identity import Rule
from server.live import Close, Connection, FrameError, RoomKey, room_key

from .guard import identity_of, rule
from .responses import services

log = logging.getLogger(__name__)


@rule(Rule.PLAN_VIEW)
async def plan_socket(websocket: WebSocket) -> None:
    await _serve(websocket, room_key(websocket.path_params["plan_id"]))


@rule(Rule.PLAN_VENDOR)
async def internal_socket(websocket: WebSocket) -> None:
    """The vendor-only internal account plan beside the shared one."""
    await _serve(websocket, room_key(websocket.path_params["plan_id"], "internal"))


async def _serve(websocket: WebSocket, key: RoomKey) -> None:
    svc = services(websocket)
    conn = Connection(
        websocket,
        identity_of(websocket),
        key,
        max_queued_bytes=svc.settings.max_queued_bytes,
    )
    sender = asyncio.create_task(conn.run_sender(), name=f"ws-sender-{key}")
    try:
        room = await svc.rooms.join(key, conn)
    except Exception:
        # The plan could not be loaded (database down, unreadable log): this client is told
        # and retries; the server and every other room carry on.
        log.exception("ws %s: could not load the plan", key)
        conn.close(Close.INTERNAL, "plan could not be loaded")
        await sender
        return
    limit = svc.settings.max_frame_bytes
    try:
        while not conn.closing:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            frame = message.get("bytes")
            if frame is None:
                log.info("closing %r: text frame", conn)
                conn.close(Close.BAD_FRAME, "text frames are not part of the protocol")
                break
            if len(frame) > limit:
                log.info("closing %r: frame of %d bytes over the %d limit", conn, len(frame), limit)
                conn.close(Close.FRAME_TOO_LARGE, f"frame over {limit} bytes")
                break
            try:
                await room.receive(conn, frame)
            except FrameError as exc:
                log.info("closing %r: malformed frame (%s)", conn, exc)
                conn.close(Close.BAD_FRAME, f"malformed frame: {exc}")
                break
    except Exception as exc:  # noqa: BLE001 - a dropped peer surfaces as transport errors
        log.debug("receive from %r stopped: %s", conn, type(exc).__name__)
    finally:
        svc.rooms.leave(room, conn)
        conn.close(Close.NORMAL)
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(sender, timeout=5)

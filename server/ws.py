"""The plan websocket: authenticate, then hand frames to the plan's room."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

from starlette.websockets import WebSocket

import persistence

from .channel import Connection
from .protocol import Close, FrameError
from .web import credentials, services

log = logging.getLogger(__name__)


def _same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:  # not a browser: cookies are not sent cross-site without one
        return True
    return urlsplit(origin).netloc == websocket.headers.get("host")


async def plan_socket(websocket: WebSocket) -> None:
    svc = services(websocket)
    plan_id = websocket.path_params["plan_id"]
    # Accept first: a close code can only be sent on an open socket, and a browser is
    # told nothing useful by a refused handshake.
    await websocket.accept()
    creds = credentials(websocket, allow_query_token=True)
    identity = await svc.auth.identify(creds)
    if identity is None:
        log.info("ws %s: refused, no valid session or token", plan_id)
        await websocket.close(Close.UNAUTHORIZED, "sign in or pass ?token=")
        return
    if identity.via == "session" and not _same_origin(websocket):
        log.warning("ws %s: refused cross-origin cookie connection", plan_id)
        await websocket.close(Close.FORBIDDEN, "cross-origin connection")
        return
    plan = await svc.store.run(lambda s: persistence.get_plan(session=s, plan_id=plan_id))
    if plan is None:
        log.info("ws %s: refused, no such plan", plan_id)
        await websocket.close(Close.PLAN_NOT_FOUND, "no such plan")
        return

    conn = Connection(websocket, identity, plan_id)
    sender = asyncio.create_task(conn.run_sender(), name=f"ws-sender-{plan_id}")
    try:
        room = await svc.rooms.join(plan_id, conn)
    except Exception:
        # The plan could not be loaded (database down, unreadable log): this client is told
        # and retries; the server and every other room carry on.
        log.exception("ws %s: could not load the plan", plan_id)
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

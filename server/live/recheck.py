"""Open sockets keep only the credentials that are still good.

A socket is authorized once, when it opens; HTTP checks every request. So that revoking an API
token or a link, a session ending or expiring, or an account being deactivated (from this
process, another one or the CLI) also ends the sockets opened with it, every open socket's
credential is read again every ``TANDEM_RECHECK_SECONDS``: one query per kind of credential
for all sockets together, off the event loop.
"""

from __future__ import annotations

import logging

import anyio

import persistence
from server.store import Store

from .connection import Connection
from .protocol import Close
from .rooms import RoomManager

log = logging.getLogger(__name__)


class CredentialRecheck:
    def __init__(self, store: Store, rooms: RoomManager, *, interval: float) -> None:
        self.store = store
        self.rooms = rooms
        self.interval = interval

    async def run(self) -> None:
        """Check every ``interval`` seconds until cancelled; a failed check is retried."""
        while True:
            await anyio.sleep(max(self.interval, 0.05))
            try:
                await self.check()
            except Exception:  # noqa: BLE001 - the database may be away; sockets stay meanwhile
                log.exception("could not re-check the open sockets' credentials")

    async def check(self) -> int:
        """Close (4401) the open sockets whose credential lapsed; how many were closed."""
        conns = [c for c in self.rooms.connections() if not c.closing]
        if not conns:
            return 0
        ids: dict[str, set[str]] = {"session": set(), "token": set(), "link": set()}
        for c in conns:
            if _kind(c) in ids:
                ids[_kind(c)].add(c.identity.credential_id)
        lapsed = await self.store.read(
            lambda s: persistence.lapsed_credentials(
                session=s,
                session_ids=ids["session"],
                token_ids=ids["token"],
                link_ids=ids["link"],
            )
        )
        gone = {"session": lapsed.sessions, "token": lapsed.tokens, "link": lapsed.links}
        closed = 0
        for c in conns:
            kind = _kind(c)
            if c.identity.credential_id in gone.get(kind, ()):
                log.info("closing %r: its %s was revoked or expired", c, kind)
                c.close(Close.UNAUTHORIZED, f"{kind} revoked or expired")
                closed += 1
        return closed


def _kind(conn: Connection) -> str:
    via = conn.identity.via
    return "link" if via == "embed" else via

"""Presence (y-protocols "awareness") in one room: who is here, their cursors and names.

The room hands every awareness frame and every departure to its ``Presence`` and forwards the
frame it gets back to the other connections. Here: the bounds on what one connection may
introduce, the states stamped with the server-known name, the echoes stock clients send back
skipped, and the departed remembered (bounded) so that those echoes are not taken for new
presence.

With several processes, the states of the same room's connections in other processes are kept
too (``receive_remote``), by the process they came from: a joining client gets them with the
local ones, echoes of them are skipped like echoes of a local connection's, and they end when
their process says so or is gone (``drop_origin``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator

from server.identity import Identity

from .connection import Connection
from .protocol import FrameError, awareness_frame, parse_awareness

# Presence states one connection may introduce (a browser tab introduces one), and the size of
# one state (a name, a colour, a cursor).
MAX_AWARENESS_CLIENTS = 8
MAX_AWARENESS_STATE_BYTES = 4096
# Presence that has left, remembered so that its echoes are not taken for new presence: stock
# y-websocket clients send back every awareness change they hear, others' included.
MAX_AWARENESS_TOMBSTONES = 4096
# Frames this room forwarded lately, remembered so that their echoes are recognised without
# parsing them (bench/, 50 clients: 50 echoes of each cursor move, most frames a room gets).
ECHOES_REMEMBERED = 64


def presence_key(conn: Connection) -> str:
    """One person (an account, or a visitor of one link under one name), across tabs."""
    i = conn.identity
    return i.person or f"{i.via}:{i.credential_id}:{i.name}"


def identity_key(i: Identity) -> str:
    return i.person or f"{i.via}:{i.credential_id}:{i.name}"


def people(connections: Iterable[Connection], more: Iterable[Identity] = ()) -> list[Identity]:
    """Who is here, by name: one entry per account, whether through the browser or a token,
    in any number of tabs (as in the editor's strip); visitors per link and name. ``more``:
    those connected to other processes."""
    seen: dict[str, Identity] = {}
    for conn in connections:
        seen.setdefault(presence_key(conn), conn.identity)
    for identity in more:
        seen.setdefault(identity_key(identity), identity)
    return sorted(seen.values(), key=lambda i: i.name.lower())


def stamp(conn: Connection, state: str) -> str:
    """Presence carries the server-known name and person key, whatever the client claimed."""
    try:
        value = json.loads(state)
    except (ValueError, RecursionError):
        # RecursionError: JSON nested too deep (e.g. "[[[[..."), which json raises instead
        # of ValueError; uncaught, it dropped the socket with 1000 and nothing logged.
        raise FrameError("awareness state is not JSON") from None
    if not isinstance(value, dict):
        raise FrameError("awareness state is not an object")
    user = value.get("user")
    stamped = {**(user if isinstance(user, dict) else {}), "name": conn.identity.name}
    stamped.pop("person", None)
    if conn.identity.person is not None:
        stamped["person"] = conn.identity.person
    # Only the server knows who signed in: a link visitor named like a member is a guest.
    stamped["guest"] = not conn.identity.is_account
    value["user"] = stamped
    return json.dumps(value, separators=(",", ":"))


class Presence:
    """The awareness states of one room: client id -> (clock, state, owning connection)."""

    def __init__(self) -> None:
        self._states: dict[int, tuple[int, str, Connection]] = {}
        # client id -> (clock of its removal, who owned it): see receive().
        self._departed: dict[int, tuple[int, str]] = {}
        # States held by the same room in other processes: client id -> (clock, state, origin).
        self._remote: dict[int, tuple[int, str, str]] = {}
        # Frames ``receive`` returned lately: frame -> its client ids.
        self._forwarded: dict[bytes, tuple[int, ...]] = {}

    def __bool__(self) -> bool:
        return bool(self._states) or bool(self._remote)

    def _all(self) -> Iterator[tuple[int, int, str]]:
        for c, (k, s, _) in self._states.items():
            yield c, k, s
        for c, (k, s, _) in self._remote.items():
            if c not in self._states:
                yield c, k, s

    def frame(self) -> bytes:
        """Every current state, as one awareness frame (for a joining or asking client)."""
        return awareness_frame(list(self._all()))

    def local_frame(self) -> bytes | None:
        """The states of this process's connections (for another process that asks)."""
        mine = [(c, k, s) for c, (k, s, _) in self._states.items()]
        return awareness_frame(mine) if mine else None

    def local_leaving(self) -> bytes | None:
        """The frame that ends every state of this process's connections elsewhere."""
        gone = [(c, k + 1, "null") for c, (k, _, _) in self._states.items()]
        return awareness_frame(gone) if gone else None

    def receive_remote(self, origin: str, frame: bytes) -> bytes | None:
        """Take a frame another process forwarded (stamped there already); the frame to
        forward to this room's connections, if anything changed."""
        forward = []
        for client, clock, state in parse_awareness(frame):
            if client in self._states:
                continue  # a local connection's own: this process is the one that knows
            known = self._remote.get(client)
            if known is not None and clock < known[0]:
                continue
            if state == "null":
                if known is None:
                    continue
                del self._remote[client]
                self._tombstone(client, clock, "")
            else:
                if known is not None and clock == known[0] and state == known[1]:
                    continue
                self._remote[client] = (clock, state, origin)
                self._departed.pop(client, None)
            forward.append((client, clock, state))
        return awareness_frame(forward) if forward else None

    def drop_origin(self, origin: str) -> bytes | None:
        """Every state ``origin`` held ends (that process stopped or is unreachable)."""
        gone = []
        for client, (clock, _, owner) in list(self._remote.items()):
            if owner == origin:
                del self._remote[client]
                gone.append((client, clock + 1, "null"))
                self._tombstone(client, clock + 1, "")
        return awareness_frame(gone) if gone else None

    def receive(self, conn: Connection, frame: bytes, live: Collection[Connection]) -> bytes | None:
        """Take ``conn``'s awareness frame; the frame to forward to the others, if any.
        ``live``: the room's connections. Raises FrameError, changing nothing, for a frame
        over the bounds."""
        if self._is_echo(conn, frame, live):
            return None
        entries = parse_awareness(frame)
        # Checked before anything changes, so a refused frame leaves nothing behind.
        if any(len(state) > MAX_AWARENESS_STATE_BYTES for _, _, state in entries):
            raise FrameError("awareness state too large")
        # Stock y-websocket clients send back every awareness change they hear, other people's
        # included: those entries are not this connection's to change, and they are skipped,
        # not counted against it. Only what it introduces is its own, within the bound.
        mine = []
        for client, clock, state in entries:
            known = self._states.get(client)
            if known is not None and known[2] is not conn and known[2] in live:
                continue  # another live connection's presence
            if known is None and client in self._remote:
                continue  # a connection's presence in another process
            departed = self._departed.get(client)
            if (
                known is None
                and departed is not None
                and clock <= departed[0]
                and departed[1] != presence_key(conn)
            ):
                continue  # an echo of someone's presence that has already left
            mine.append((client, clock, state, known))
        new = {c for c, _, state, _ in mine if state != "null"} - conn.awareness_clients
        if len(conn.awareness_clients) + len(new) > MAX_AWARENESS_CLIENTS:
            raise FrameError("too many awareness client ids")
        forward = []
        for client, clock, state, known in mine:
            if known is not None and (clock < known[0] or (clock == known[0] and state != "null")):
                continue  # stale or repeated
            if state == "null":
                if known is None:
                    continue
                del self._states[client]
                conn.awareness_clients.discard(client)
                self._depart(client, clock, conn)
            else:
                state = stamp(conn, state)
                self._states[client] = (clock, state, conn)
                conn.awareness_clients.add(client)
                self._departed.pop(client, None)
            forward.append((client, clock, state))
        if not forward:
            return None
        out = awareness_frame(forward)
        if all(
            state != "null" and len(state) <= MAX_AWARENESS_STATE_BYTES for _, _, state in forward
        ):
            self._remember(out, tuple(client for client, _, _ in forward))
        return out

    def _remember(self, frame: bytes, clients: tuple[int, ...]) -> None:
        self._forwarded.pop(frame, None)
        self._forwarded[frame] = clients
        while len(self._forwarded) > ECHOES_REMEMBERED:
            del self._forwarded[next(iter(self._forwarded))]

    def _is_echo(self, conn: Connection, frame: bytes, live: Collection[Connection]) -> bool:
        """Whether ``frame`` is, byte for byte, one this room forwarded whose every state is
        still held by another live connection: what ``receive`` would skip entry by entry
        (a stock client's echo), told without parsing it."""
        clients = self._forwarded.get(frame)
        if clients is None:
            return False
        for client in clients:
            known = self._states.get(client)
            if known is None or known[2] is conn or known[2] not in live:
                return False
        return True

    def leave(self, conn: Connection) -> bytes | None:
        """``conn`` left: its states end; the frame that tells the others, if any."""
        gone = []
        for client in conn.awareness_clients:
            known = self._states.get(client)
            if known is not None and known[2] is conn:
                del self._states[client]
                gone.append((client, known[0] + 1, "null"))
                self._depart(client, known[0] + 1, conn)
        return awareness_frame(gone) if gone else None

    def _depart(self, client: int, clock: int, conn: Connection) -> None:
        self._tombstone(client, clock, presence_key(conn))

    def _tombstone(self, client: int, clock: int, key: str) -> None:
        self._departed.pop(client, None)
        self._departed[client] = (clock, key)
        while len(self._departed) > MAX_AWARENESS_TOMBSTONES:
            del self._departed[next(iter(self._departed))]

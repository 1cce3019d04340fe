"""Several server processes, one plan: what the rooms and the room manager expect of the fan-out,
the messages it carries, and the fan-out lag histogram. The Redis side is redis_fanout.py,
imported only when ``TANDEM_REDIS_URL`` is set; without it nothing here is used.

Design
------
Every process that has a room loaded subscribes to that room's channel (``tandem:room:<key>``;
the plan's document and its vendor-only internal document are two rooms, two channels, so an
internal update never reaches a plan's customer connections). A room that made a batch durable
in the log publishes it there (after the commit: persist-before-forward stays), and the other
processes apply it to their document without logging it again and forward what was new to their
connections. Server-side changes go the same way; they are commits of the room too.

No gaps: the log is the truth, Redis only makes it fast. Ids come from one sequence, so two
transactions can commit in the other order than their ids; a room's appends therefore take a
transaction-scoped advisory lock on the document first (``persistence.append_updates_chained``),
so that one document's entries commit in id order, and each batch names its predecessor (the
document's newest id before it). A room keeps ``applied_upto``, below which it has applied every
entry of its document: a batch whose predecessor is at or below it moves it on; one that
arrives early waits in ``Room._ahead`` and, if its predecessor has not come after
``rooms.GAP_GRACE``, the room reads the log past ``applied_upto`` (applying twice is harmless in
a CRDT, and only what was new is forwarded). Checkpoints are labelled ``applied_upto``, never the
newest id seen, so a load from a checkpoint plus the entries after it loses nothing. The log is
also read: when a room loads (after subscribing), after every reconnection to Redis, when
another process says it could not publish (a ``head`` message once it can again), and every
``CHECK_SECONDS`` for the rooms with connections whose document's newest id is past what they
applied (one query for all of them).

Presence: awareness frames a room forwards are published on its channel too; the others keep
those states by process of origin (``Presence.receive_remote``) and forward them. A process
loading a room asks (``query``) and the others answer with their connections' states. Every
process sends a ``beat`` every ``BEAT_SECONDS`` on ``tandem:all`` carrying who is connected to it
per room (the plan list's "who is here"), and ``here`` when that changes; a process not heard
for ``GONE_SECONDS`` (or that said ``bye``) is dropped: its presence ends everywhere.

Closings (``RoomManager.close``) go on ``tandem:all`` too, with credential ids as digests; a
room discarded (its plan deleted) is discarded in every process, through its channel.

Redis going away never stops a room: edits are logged and forwarded locally; what could not be
published is announced once Redis is back, and every process reads the log then.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from prometheus_client import Histogram

    from server.identity import Identity

    from .events import Closing
    from .keys import RoomKey
    from .redis_fanout import RedisFanout
    from .rooms import RoomManager

# How often each process says it is alive (with who is connected to it), and after how long
# without a word from a process its presence is dropped.
BEAT_SECONDS = 5.0
GONE_SECONDS = 16.0
# How often rooms with connections compare what they applied with the log's newest id.
CHECK_SECONDS = 5.0

CHANNEL_ALL = "tandem:all"
ROOM_PREFIX = "tandem:room:"

#: Upper bounds of the fan-out lag histogram, in seconds.
FANOUT_LAG_BUCKETS = (
    *(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075),
    *(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

_lag: Histogram | None = None


def fanout_lag() -> Histogram:
    """The fan-out lag histogram, ``tandem_fanout_lag_seconds``: from a batch's publication by
    the process that logged it to its application by another process (wall clocks of both).
    Created on first use in no registry: /metrics registers it (``registry.register(...)``).
    prometheus-client is imported here, so a process without fan-out never holds it."""
    global _lag
    if _lag is None:
        from prometheus_client import Histogram

        _lag = Histogram(
            "tandem_fanout_lag_seconds",
            "From a batch's publication by the process that logged it to its application by "
            "another process.",
            buckets=FANOUT_LAG_BUCKETS,
            registry=None,
        )
    return _lag


def redis_fanout(url: str, rooms: RoomManager) -> RedisFanout:
    """The fan-out through Redis at ``url`` for ``rooms`` (an async context manager to enter
    before them). redis-py is imported here, so a process without fan-out never holds it."""
    from .redis_fanout import RedisFanout

    return RedisFanout(url, rooms)


def room_channel(key: RoomKey) -> str:
    return ROOM_PREFIX + key


def digest(credential_id: str) -> str:
    """What crosses Redis instead of a credential id (a session id is a secret)."""
    return hashlib.sha256(credential_id.encode()).hexdigest()


class Bus(Protocol):
    """What rooms and the room manager call: nothing here waits for Redis."""

    origin: str
    connected: bool  # to Redis, now

    def publish_update(self, key: RoomKey, prev: int, last: int, update: bytes) -> None: ...
    def publish_awareness(self, key: RoomKey, frame: bytes) -> None: ...
    def publish_closing(self, closing: Closing) -> None: ...
    def publish_discard(self, key: RoomKey, code: int, reason: str) -> None: ...
    def watch(self, key: RoomKey) -> None: ...
    def loaded(self, key: RoomKey) -> None: ...
    def unwatch(self, key: RoomKey) -> None: ...
    def here_changed(self, key: RoomKey) -> None: ...
    def remote_present(self, key: RoomKey) -> list[Identity]: ...


# Messages: one JSON header line, then the binary payload (an update, an awareness frame).


@dataclass(frozen=True)
class Message:
    kind: str  # update, awareness, query, head, closing, beat, here, hello, bye
    origin: str
    header: dict[str, Any]
    payload: bytes = b""


def encode(kind: str, origin: str, payload: bytes = b"", **header: Any) -> bytes:
    head = json.dumps({"k": kind, "o": origin, "t": time.time(), **header}, separators=(",", ":"))
    return head.encode() + b"\n" + payload


def decode(data: bytes) -> Message:
    """Raises ValueError for something that is not a message."""
    head, sep, payload = data.partition(b"\n")
    if not sep:
        raise ValueError("no header")
    header = json.loads(head)
    if not isinstance(header, dict) or "k" not in header or "o" not in header:
        raise ValueError("not a message")
    return Message(str(header["k"]), str(header["o"]), header, payload)


def identity_json(i: Identity) -> dict[str, Any]:
    """What another process needs to show someone in "who is here" (no email, no secret)."""
    return {
        "user_id": i.user_id,
        "name": i.name,
        "via": i.via,
        "credential": digest(i.credential_id),
        "plan_id": i.plan_id,
        "side": i.side,
        "staff": i.staff,
    }


def identity_from_json(d: dict[str, Any]) -> Identity:
    from server.identity import Identity

    return Identity(
        user_id=d.get("user_id"),
        name=str(d.get("name", "")),
        email=None,
        via=str(d.get("via", "link")),
        credential_id=str(d.get("credential", "")),
        read_only=True,
        plan_id=d.get("plan_id"),
        side=d.get("side"),
        staff=bool(d.get("staff")),
    )

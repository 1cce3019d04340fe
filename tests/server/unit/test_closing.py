"""Closing connections by description (``live.Closing``): which open connections each
description selects, in one plan or in every plan. The room manager's rooms are stand-ins
holding connections that note how they were closed; no server, no database."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from server.identity import CUSTOMER, VENDOR, Identity
from server.live import Close, Closing, RoomManager


@dataclass(eq=False)
class Conn:
    identity: Identity
    closed: list[tuple[int, str]] = field(default_factory=list)

    def close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))


def conn(via: str, cred: str, user_id: int | None, side: str = CUSTOMER) -> Conn:
    return Conn(Identity(user_id, "x", None, via, cred, side=side))


def manager(rooms: dict[str, list[Conn]]) -> RoomManager:
    m = RoomManager(None, idle_seconds=60, checkpoint_every=100)
    m._rooms = {k: SimpleNamespace(connections=set(v)) for k, v in rooms.items()}
    return m


def test_each_description_selects_its_connections() -> None:
    ann_p = conn("session", "s1", 1, VENDOR)
    ann_internal = conn("session", "s1", 1, VENDOR)
    ann_token_q = conn("token", "t1", 1, VENDOR)
    ann_other_session_q = conn("session", "s2", 1, VENDOR)
    bob_p = conn("session", "s3", 2)
    visitor_p = conn("link", "l1", None)
    rooms = manager(
        {
            "p": [ann_p, bob_p, visitor_p],
            "p:internal": [ann_internal],
            "q": [ann_token_q, ann_other_session_q],
        }
    )
    every = [ann_p, ann_internal, ann_token_q, ann_other_session_q, bob_p, visitor_p]

    def closed(closing: Closing) -> list[Conn]:
        for c in every:
            c.closed.clear()
        count = rooms.close(closing)
        hit = [c for c in every if c.closed]
        assert count == len(hit)
        return hit

    # One plan, both of its documents; one account in it; one link's visitors.
    assert closed(Closing("p", Close.FORBIDDEN, "x", user_id=1)) == [ann_p, ann_internal]
    assert closed(Closing("p", Close.FORBIDDEN, "x", link_id="l1")) == [visitor_p]
    assert closed(Closing("q", Close.FORBIDDEN, "x")) == [ann_token_q, ann_other_session_q]
    # Every plan: an account (deactivated), its vendor side (made a guest), its sessions
    # (password changed), one session (signed out).
    assert closed(Closing(None, Close.UNAUTHORIZED, "x", user_id=1)) == every[:4]
    assert closed(Closing(None, Close.FORBIDDEN, "x", user_id=2, side=VENDOR)) == []
    assert closed(Closing(None, Close.UNAUTHORIZED, "x", user_id=1, via="session")) == [
        ann_p,
        ann_internal,
        ann_other_session_q,
    ]
    assert closed(Closing(None, Close.UNAUTHORIZED, "x", via="session", credential_id="s2")) == [
        ann_other_session_q
    ]
    assert ann_other_session_q.closed == [(Close.UNAUTHORIZED, "x")]

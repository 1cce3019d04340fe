"""A room's presence (awareness), without a server: the bounds on what one connection may
introduce, the server-known name stamped on every state, echoes of other people's presence
skipped, and departures remembered (boundedly) so that late echoes do not bring anyone back.
Connections are stand-ins with what presence reads: the identity and the client ids."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from server.identity import Identity
from server.live.presence import (
    MAX_AWARENESS_CLIENTS,
    MAX_AWARENESS_STATE_BYTES,
    MAX_AWARENESS_TOMBSTONES,
    Presence,
    people,
    stamp,
)
from server.live.protocol import FrameError, awareness_frame, parse_awareness


@dataclass(eq=False)
class Conn:
    identity: Identity
    awareness_clients: set[int] = field(default_factory=set)


def account(name: str, user_id: int) -> Conn:
    return Conn(Identity(user_id, name, f"{name}@x.example", "session", "c", plan_id="p"))


def visitor(name: str) -> Conn:
    return Conn(Identity(None, name, None, "link", "link1", plan_id="p"))


def state(name: str = "claimed", **extra: object) -> str:
    return json.dumps({"user": {"name": name, "color": "#f00"}, **extra})


def say(presence: Presence, conn: Conn, live: list[Conn], *entries: tuple[int, int, str]) -> list:
    out = presence.receive(conn, awareness_frame(list(entries)), live)
    return [] if out is None else parse_awareness(out)


def test_states_carry_the_server_known_name_not_the_claimed_one() -> None:
    ann, link = account("Ann", 1), visitor("Bob")
    stamped = json.loads(stamp(ann, state("Mallory", cursor=3)))
    assert stamped["user"]["name"] == "Ann" and stamped["user"]["guest"] is False
    assert stamped["user"]["person"] == ann.identity.person and stamped["cursor"] == 3
    as_guest = json.loads(stamp(link, json.dumps({"user": {"person": "forged"}})))
    assert as_guest["user"] == {"name": "Bob", "guest": True}
    for bad in ("[1]", "not json", "[" * 100_000):
        with pytest.raises(FrameError):
            stamp(ann, bad)


def test_a_state_is_forwarded_once_and_a_repeat_or_stale_one_is_not() -> None:
    p, ann = Presence(), account("Ann", 1)
    [(client, clock, st)] = say(p, ann, [ann], (7, 1, state()))
    assert (client, clock, json.loads(st)["user"]["name"]) == (7, 1, "Ann")
    assert say(p, ann, [ann], (7, 1, state())) == []  # repeated
    assert say(p, ann, [ann], (7, 0, state())) == []  # stale
    assert p and parse_awareness(p.frame())[0][:2] == (7, 1)


def test_one_connection_introduces_a_bounded_number_of_states_and_size() -> None:
    p, ann = Presence(), account("Ann", 1)
    entries = [(i, 1, state()) for i in range(MAX_AWARENESS_CLIENTS + 1)]
    with pytest.raises(FrameError):
        say(p, ann, [ann], *entries)
    assert not p and ann.awareness_clients == set()  # refused whole: nothing left behind
    with pytest.raises(FrameError):
        say(p, ann, [ann], (1, 1, "x" * (MAX_AWARENESS_STATE_BYTES + 1)))


def test_echoes_of_other_live_connections_are_skipped_not_counted() -> None:
    p, ann, bob = Presence(), account("Ann", 1), account("Bob", 2)
    live = [ann, bob]
    say(p, ann, live, (1, 1, state()))
    # Bob's client sends back Ann's state, and introduces his own up to the bound.
    own = [(100 + i, 1, state()) for i in range(MAX_AWARENESS_CLIENTS)]
    forwarded = say(p, bob, live, (1, 1, state()), (1, 2, "null"), *own)
    assert {c for c, _, _ in forwarded} == {100 + i for i in range(MAX_AWARENESS_CLIENTS)}
    assert 1 in ann.awareness_clients and 1 not in bob.awareness_clients


def test_leaving_ends_a_connections_states_and_late_echoes_do_not_revive_them() -> None:
    p, ann, bob = Presence(), account("Ann", 1), account("Bob", 2)
    say(p, ann, [ann, bob], (1, 4, state()))
    gone = p.leave(ann)
    assert gone is not None and parse_awareness(gone) == [(1, 5, "null")]
    assert not p and p.leave(ann) is None
    # Bob's client echoes Ann's last state after she left: not taken for new presence.
    assert say(p, bob, [bob], (1, 4, state())) == []
    # Ann, back in a new tab with the same client id, is herself again.
    again = account("Ann", 1)
    assert [c for c, _, _ in say(p, again, [bob, again], (1, 6, state()))] == [1]


def test_departures_are_remembered_within_a_bound() -> None:
    p, bob = Presence(), account("Bob", 2)
    for i in range(MAX_AWARENESS_TOMBSTONES + 1):
        ann = account("Ann", 1)
        say(p, ann, [ann], (i, 1, state()))
        p.leave(ann)
    # The oldest tombstone was dropped: its echo counts as new presence again.
    assert [c for c, _, _ in say(p, bob, [bob], (0, 1, state()))] == [0]
    assert say(p, bob, [bob], (MAX_AWARENESS_TOMBSTONES, 1, state())) == []


def test_people_present_are_one_per_person_by_name() -> None:
    ann, ann_tab, zed, link = account("ann", 1), account("ann", 1), account("Zed", 3), visitor("Bo")
    names = [i.name for i in people([zed, ann, ann_tab, link])]
    assert names == ["ann", "Bo", "Zed"]


def test_an_echo_of_a_forwarded_frame_is_skipped_without_parsing_it(monkeypatch) -> None:
    """Stock clients send every awareness change they hear back: 49 echoes of each cursor move
    in a room of 50, most of the frames a room receives. One byte for byte like a frame the
    room forwarded, whose states are still held by live connections, is told apart unparsed;
    once its owner has left, an echo goes through the whole check again (and is skipped)."""
    from server.live import presence as module

    ann, bob, cat = account("Ann", 1), account("Bob", 2), account("Cat", 3)
    live = [ann, bob, cat]
    p = Presence()
    forwarded = p.receive(ann, awareness_frame([(10, 1, state())]), live)
    assert forwarded is not None

    parsed = []
    real = module.parse_awareness
    monkeypatch.setattr(module, "parse_awareness", lambda f: parsed.append(f) or real(f))
    assert p.receive(bob, forwarded, live) is None
    assert p.receive(cat, forwarded, live) is None
    assert parsed == []

    # Its owner's own frame back (not an echo of someone else's) takes the whole path.
    assert p.receive(ann, forwarded, live) is None
    assert parsed == [forwarded]

    # Ann leaves: Bob's late echo is checked in full, and does not bring her back.
    p.leave(ann)
    live.remove(ann)
    assert p.receive(bob, forwarded, live) is None
    assert parsed == [forwarded, forwarded]
    assert 10 not in bob.awareness_clients
    assert say(p, cat, live) == []

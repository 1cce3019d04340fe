"""The parts of the fan-out that need no Redis: presence held for other processes, the message
format, closings matched by credential digest, and a single process importing nothing of it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from server.identity import Identity
from server.live import Closing
from server.live.fanout import decode, digest, encode, identity_from_json, identity_json
from server.live.presence import Presence, people
from server.live.protocol import awareness_frame, parse_awareness
from tests.support.servers import ROOT


@dataclass(eq=False)
class Conn:
    identity: Identity
    awareness_clients: set[int] = field(default_factory=set)


def state(name: str) -> str:
    return json.dumps({"user": {"name": name, "color": "#f00"}})


def test_presence_from_other_processes_is_shown_kept_apart_and_dropped_with_its_process() -> None:
    presence = Presence()
    ann = Conn(Identity(1, "Ann", None, "session", "s1", plan_id="p"))
    presence.receive(ann, awareness_frame([(1, 1, state("Ann"))]), [ann])
    forward = presence.receive_remote("B", awareness_frame([(7, 3, state("Bea"))]))
    assert forward is not None and [c for c, _, _ in parse_awareness(forward)] == [7]
    # A joining client gets both; the same frame again changes nothing.
    assert sorted(c for c, _, _ in parse_awareness(presence.frame())) == [1, 7]
    assert presence.receive_remote("B", awareness_frame([(7, 3, state("Bea"))])) is None
    # A local client echoing the remote state is not taken as its own presence.
    assert presence.receive(ann, awareness_frame([(7, 3, state("x"))]), [ann]) is None
    assert ann.awareness_clients == {1}
    # Only this process's own states go to a process that asks.
    mine = presence.local_frame()
    assert mine is not None and [c for c, _, _ in parse_awareness(mine)] == [1]
    # Process B is gone: its state ends here, once.
    gone = presence.drop_origin("B")
    assert gone is not None and parse_awareness(gone) == [(7, 4, "null")]
    assert presence.drop_origin("B") is None
    assert [c for c, _, _ in parse_awareness(presence.frame())] == [1]
    # A late echo of the departed state does not bring it back.
    assert presence.receive(ann, awareness_frame([(7, 3, state("x"))]), [ann]) is None


def test_messages_and_identities_cross_without_secrets() -> None:
    message = decode(encode("update", "o1", b"\x00\n\x01", prev=3, last=5))
    assert (message.kind, message.origin, message.payload) == ("update", "o1", b"\x00\n\x01")
    assert message.header["prev"] == 3 and message.header["last"] == 5
    visitor = Identity(None, "Vi", "vi@x.example", "link", "secret-link", plan_id="p")
    account = Identity(4, "Al", "al@x.example", "session", "secret-session", plan_id="p")
    sent = json.dumps([identity_json(visitor), identity_json(account)])
    assert "secret" not in sent and "@x.example" not in sent
    back = [identity_from_json(d) for d in json.loads(sent)]
    assert back[1].person == account.person
    # Each person once, wherever they are connected.
    assert [i.name for i in people([Conn(account)], back)] == ["Al", "Vi"]


def test_a_closing_from_another_process_matches_by_credential_digest() -> None:
    from server.live import RoomManager

    rooms = RoomManager(None, idle_seconds=1, checkpoint_every=1)  # type: ignore[arg-type]  # no store needed

    class FakeConn:
        def __init__(self, credential: str) -> None:
            self.identity = Identity(1, "Al", None, "session", credential, plan_id="p")
            self.closed: int | None = None

        def close(self, code: int, reason: str = "") -> None:
            self.closed = code

    kept, ended = FakeConn("other"), FakeConn("sid-1")
    rooms.connections = lambda: [kept, ended]  # type: ignore[method-assign,assignment,return-value]  # stand-ins
    closing = Closing(None, 4401, "signed out", via="session", credential_id=digest("sid-1"))
    assert rooms.close_here(closing, digests=True) == 1
    assert ended.closed == 4401 and kept.closed is None


def test_one_process_imports_nothing_of_redis(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from server.settings import Settings\n"
        "from server.app import create_app\n"
        f"create_app(Settings.from_env({{'TANDEM_DATA_DIR': {str(tmp_path)!r}}}))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('redis', 'prometheus_client')"
        " or m == 'server.live.redis_fanout'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

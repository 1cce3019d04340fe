"""Several server processes on one PostgreSQL database, fanning out through a private Redis:
one plan edited through all of them (server/live/fanout.py has the design)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import websockets
from pycrdt import Doc

import persistence
from server.live import Room, RoomManager, room_key
from server.live.protocol import awareness_frame
from server.store import Store
from tests.support.access import World, build_world, create_link, invite_and_join
from tests.support.redis import RedisServer
from tests.support.servers import Database, Server
from tests.support.wire import peer, wait_for
from tests.support.yclient import add_paragraph, connect, paragraphs

pytestmark = pytest.mark.anyio

LOST = "lost the connection to Redis"
# Checkpoints often, so that every process writes them while the others edit.
ENV = {"TANDEM_WORKER": "off", "TANDEM_CHECKPOINT_EVERY": "4"}


@dataclass
class Cluster:
    redis: RedisServer
    servers: list[Server]
    world: World  # made through the first process

    def plan(self, title: str) -> str:
        return self.servers[0].create_plan(self.world.owner_token, title, "Acme")


@pytest.fixture(scope="module")
def cluster(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if backend != "postgresql":
        pytest.skip("several processes share a PostgreSQL database, never SQLite")
    tmp = tmp_path_factory.mktemp("fanout")
    redis = RedisServer(tmp).start()
    db = Database(backend, tmp, at_head=True)
    env = {"TANDEM_REDIS_URL": redis.url, **ENV}
    servers: list[Server] = []
    try:
        for i in range(3):
            folder = tmp / f"process-{i}"
            folder.mkdir()
            servers.append(Server(data_dir=folder, database_url=db.url, extra_env=env).start())
        world = build_world(servers[0])
        yield Cluster(redis, servers, world)
        world.close()
    finally:
        for srv in servers:
            srv.stop()
        db.drop()
        redis.stop()


def _env(cluster: Cluster) -> dict[str, str]:
    return {"TANDEM_REDIS_URL": cluster.redis.url, **ENV}


def together(*docs: Doc) -> list[list[str]]:
    return [sorted(paragraphs(d)) for d in docs]


async def test_clients_on_different_processes_edit_one_plan(cluster: Cluster) -> None:
    a, b, c = cluster.servers
    token = cluster.world.owner_token
    plan = cluster.plan("Edited through three processes")
    expected = sorted([f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)])
    logged_before = len(await _log(a, plan))
    async with (
        connect(a.ws, plan, token) as (on_a, _),
        connect(b.ws, plan, token) as (on_b, _),
        connect(c.ws, plan, token) as (on_c, _),
    ):
        for i in range(5):
            add_paragraph(on_a, f"a{i}")
            add_paragraph(on_b, f"b{i}")
            await asyncio.sleep(0)
        await wait_for(lambda: together(on_a, on_b, on_c) == [expected] * 3, 15, "convergence")
        # A client joining the third process now gets it all from that process's room.
        async with connect(c.ws, plan, token) as (fresh, _):
            assert sorted(paragraphs(fresh)) == expected
    # Each edit was logged once, by the process that received it.
    log = await _log(a, plan)
    assert sorted(paragraphs(_replay(log))) == expected
    assert len(log) == logged_before + len(expected)


async def test_concurrent_edits_on_three_processes_load_whole_from_checkpoints(
    cluster: Cluster,
) -> None:
    """Each process writes checkpoints (every 4 of its commits) while the others' batches are
    in flight: what a load reads (the newest checkpoint and the log after it) is everything."""
    token = cluster.world.owner_token
    plan = cluster.plan("Busy")
    names = "abc"
    expected = sorted(f"{n}{i}" for n in names for i in range(30))
    async with (
        connect(cluster.servers[0].ws, plan, token) as (d0, _),
        connect(cluster.servers[1].ws, plan, token) as (d1, _),
        connect(cluster.servers[2].ws, plan, token) as (d2, _),
    ):
        docs = [d0, d1, d2]
        for i in range(30):
            for n, d in zip(names, docs, strict=True):
                add_paragraph(d, f"{n}{i}")
            await asyncio.sleep(0.005)
        await wait_for(lambda: together(*docs) == [expected] * 3, 30, "convergence")
    store = Store.from_url(cluster.servers[0].database_url)
    try:
        history = await store.load(plan)
        checkpoints = await store.read(
            lambda s: persistence.checkpoint_at_or_before(
                session=s, plan_id=plan, upto_id=history.last_id
            )
        )
    finally:
        store.dispose()
    assert checkpoints is not None  # the load below starts from one
    loaded = _replay([u for u in [history.checkpoint, *history.updates] if u])
    assert sorted(paragraphs(loaded)) == expected


async def test_internal_updates_stay_in_the_internal_room(cluster: Cluster) -> None:
    a, b, _ = cluster.servers
    world = cluster.world
    vera = a.create_token("vera@vendor.example")
    plan, cora = world.plan, world.callers["api_token"].token
    async with (
        peer(f"{b.ws}/{plan}?token={cora}") as customer,
        peer(f"{b.ws}/{plan}?token={world.owner_token}") as vendor_on_plan,
        connect(f"{b.ws}/{plan}", "internal", world.owner_token) as (internal_on_b, _),
        connect(f"{a.ws}/{plan}", "internal", vera) as (internal_on_a, _),
    ):
        add_paragraph(internal_on_a, "RISK: the champion is leaving")
        await wait_for(lambda: "RISK: the champion is leaving" in paragraphs(internal_on_b))
        # An edit of the plan itself after it: once that has arrived, so would have the other.
        async with connect(a.ws, plan, world.owner_token) as (plan_on_a, _):
            add_paragraph(plan_on_a, "Shared goal")
            await wait_for(lambda: "Shared goal" in paragraphs(customer.doc))
            await wait_for(lambda: "Shared goal" in paragraphs(vendor_on_plan.doc))
        for p in (customer, vendor_on_plan):
            assert not any(b"champion" in f for f in p.frames if isinstance(f, bytes))
            assert "champion" not in " ".join(paragraphs(p.doc))


async def test_presence_crosses_processes(cluster: Cluster) -> None:
    a, b, c = cluster.servers
    world = cluster.world
    plan, cora = world.plan, world.callers["api_token"].token
    state = json.dumps({"user": {"name": "claimed", "color": "#123456"}, "cursor": None})
    async with peer(f"{a.ws}/{plan}?token={world.owner_token}") as watcher:
        async with peer(f"{b.ws}/{plan}?token={cora}") as cora_on_b:
            await cora_on_b.send(awareness_frame([(4242, 1, state)]))
            await wait_for(lambda: _state(watcher, 4242) is not None, 10, "presence from B on A")
            seen = _state(watcher, 4242)
            assert seen is not None and seen["user"]["name"] == "Cora Customer"
            # Who is here, in the plan list of a process she is not connected to.
            present = await asyncio.to_thread(
                world.callers["owner_api"].client.get, f"/api/plans/{plan}"
            )
            assert "Cora Customer" in [p["name"] for p in present.json()["present"]]
            # A client joining a third process gets the states held by the others.
            async with peer(f"{c.ws}/{plan}?token={world.owner_token}") as joiner:
                await wait_for(lambda: _state(joiner, 4242) is not None, 10, "presence on C")
        # She leaves B: her state ends on A.
        await wait_for(lambda: _ended(watcher, 4242), 10, "presence removed on A")


async def test_presence_held_by_a_stopped_process_ends_on_the_others(cluster: Cluster) -> None:
    a, _, c = cluster.servers
    world = cluster.world
    plan, cora = world.plan, world.callers["api_token"].token
    state = json.dumps({"user": {"name": "claimed", "color": "#123456"}})
    try:
        async with peer(f"{a.ws}/{plan}?token={world.owner_token}") as watcher:
            async with peer(f"{c.ws}/{plan}?token={cora}") as cora_on_c:
                await cora_on_c.send(awareness_frame([(5151, 1, state)]))
                await wait_for(lambda: _state(watcher, 5151) is not None, 10, "presence on A")
                await asyncio.to_thread(c.stop)
                await wait_for(lambda: _ended(watcher, 5151), 10, "presence removed on A")
            present = await asyncio.to_thread(
                world.callers["owner_api"].client.get, f"/api/plans/{plan}"
            )
            assert "Cora Customer" not in [p["name"] for p in present.json()["present"]]
    finally:
        if c.proc is None:
            await asyncio.to_thread(c.start)


async def test_presence_held_by_a_killed_process_ends_on_the_others(
    cluster: Cluster, tmp_path: Path
) -> None:
    """SIGKILL: no goodbye; the others stop hearing its beats and drop what it held."""
    a = cluster.servers[0]
    world = cluster.world
    plan, cora = world.plan, world.callers["api_token"].token
    doomed = Server(data_dir=tmp_path, database_url=a.database_url, extra_env=_env(cluster))
    doomed.start()
    state = json.dumps({"user": {"name": "claimed", "color": "#123456"}})
    owner = world.callers["owner_api"].client

    async def here() -> list[str]:
        r = await asyncio.to_thread(owner.get, f"/api/plans/{plan}")
        return [p["name"] for p in r.json()["present"]]

    try:
        async with peer(f"{a.ws}/{plan}?token={world.owner_token}") as watcher:
            async with peer(f"{doomed.ws}/{plan}?token={cora}") as cora_there:
                await cora_there.send(awareness_frame([(6161, 1, state)]))
                await wait_for(lambda: _state(watcher, 6161) is not None, 10, "presence on A")
                assert "Cora Customer" in await here()
                await asyncio.to_thread(doomed.kill)
                await wait_for(lambda: _ended(watcher, 6161), 40, "presence dropped on A")
            assert "Cora Customer" not in await here()
    finally:
        if doomed.proc is not None:
            doomed.stop()


def test_a_removed_member_and_a_revoked_link_are_cut_off_on_every_process(
    cluster: Cluster,
) -> None:
    a, b, c = cluster.servers
    world = cluster.world
    owner = world.callers["owner_api"].client
    invite_and_join(a, owner, world.plan, "rex@customer.example", "Rex", "editor", "customer")
    rex = a.create_token("rex@customer.example")
    link = create_link(owner, world.plan, role="editor", label="Cluster")
    members = owner.get(f"/api/plans/{world.plan}/members").json()["members"]
    rex_id = next(m["user_id"] for m in members if m["email"] == "rex@customer.example")

    async def scenario() -> None:
        async with (
            websockets.connect(f"{b.ws}/{world.plan}?token={rex}") as rex_on_b,
            websockets.connect(f"{c.ws}/{world.plan}?token={link['token']}") as visitor_on_c,
        ):
            await rex_on_b.recv()
            await visitor_on_c.recv()
            r = await asyncio.to_thread(owner.delete, f"/api/plans/{world.plan}/members/{rex_id}")
            assert r.status_code == 204
            assert await _closed_within(rex_on_b, 5) == 4403
            r = await asyncio.to_thread(owner.delete, f"/api/plans/{world.plan}/links/{link['id']}")
            assert r.status_code == 204
            assert await _closed_within(visitor_on_c, 5) == 4403

    asyncio.run(scenario())


async def test_a_plan_deleted_on_one_process_closes_its_sockets_on_the_others(
    cluster: Cluster,
) -> None:
    a, b, c = cluster.servers
    token = cluster.world.owner_token
    title = "Deleted through the first process"
    plan = cluster.plan(title)
    async with (
        websockets.connect(f"{b.ws}/{plan}?token={token}") as on_b,
        websockets.connect(f"{c.ws}/{plan}/internal?token={token}") as internal_on_c,
    ):
        await on_b.recv()
        await internal_on_c.recv()
        owner = cluster.world.callers["owner_api"].client
        r = await asyncio.to_thread(
            owner.request, "DELETE", f"/api/plans/{plan}", json={"confirm": title}
        )
        assert r.status_code == 204, r.text
        assert await _closed_within(on_b, 5) == 4404
        assert await _closed_within(internal_on_c, 5) == 4404


async def test_an_entry_never_published_reaches_every_process(cluster: Cluster) -> None:
    """A process that logged a batch and died before publishing it (here: the test writes
    the log itself): the others find it in the log, and their clients get it."""
    a, b, _ = cluster.servers
    token = cluster.world.owner_token
    plan = cluster.plan("Never published")
    async with connect(a.ws, plan, token) as (on_a, _), connect(b.ws, plan, token) as (on_b, _):
        add_paragraph(on_a, "published")
        await wait_for(lambda: paragraphs(on_b) == ["published"])
        writer = Doc()
        writer.apply_update(on_a.get_update())
        before = writer.get_state()
        add_paragraph(writer, "only in the log")
        store = Store.from_url(a.database_url)
        try:
            await store.append_chained(plan, [(None, writer.get_update(before))])
        finally:
            store.dispose()
        want = ["only in the log", "published"]
        await wait_for(lambda: together(on_a, on_b) == [want] * 2, 20, "the log's entry")


async def test_redis_restarted_mid_editing_loses_nothing(cluster: Cluster) -> None:
    a, b, c = cluster.servers
    token = cluster.world.owner_token
    plan = cluster.plan("Redis restarts")
    logged_before = len(await _log(a, plan))
    async with (
        connect(a.ws, plan, token) as (on_a, _),
        connect(a.ws, plan, token) as (beside_a, _),
        connect(b.ws, plan, token) as (on_b, _),
        connect(c.ws, plan, token) as (on_c, _),
    ):
        add_paragraph(on_a, "before")
        await wait_for(lambda: together(on_b, on_c) == [["before"]] * 2)
        lost = [s.log().count(LOST) for s in cluster.servers]
        cluster.redis.stop()
        try:
            # Every process noticed: what follows is edited while none can publish.
            await wait_for(
                lambda: all(
                    s.log().count(LOST) > n for s, n in zip(cluster.servers, lost, strict=True)
                ),
                10,
                "the processes to lose Redis",
            )
            for i in range(5):
                add_paragraph(on_a, f"a{i}")
                add_paragraph(on_b, f"b{i}")
                await asyncio.sleep(0.05)
            # Without Redis a process's own clients still edit together.
            local = sorted(["before"] + [f"a{i}" for i in range(5)])
            await wait_for(lambda: sorted(paragraphs(beside_a)) == local, 10, "local edits")
        finally:
            cluster.redis.start()
        expected = sorted(["before"] + [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)])
        await wait_for(
            lambda: together(on_a, beside_a, on_b, on_c) == [expected] * 4, 30, "convergence"
        )
        async with connect(c.ws, plan, token) as (fresh, _):
            assert sorted(paragraphs(fresh)) == expected
        # And live editing goes on through the new connection.
        add_paragraph(on_c, "after")
        await wait_for(lambda: "after" in paragraphs(on_a) and "after" in paragraphs(on_b))
    assert len(await _log(a, plan)) == logged_before + len(expected) + 1


async def test_a_process_starts_and_edits_while_its_redis_is_away(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Redis unreachable at start: the process serves and its clients edit (logged); once
    Redis is there, it and the others converge."""
    late = RedisServer(tmp_path)  # not started yet: nothing listens on its port
    a = cluster.servers[0]
    env = {"TANDEM_REDIS_URL": late.url, "TANDEM_WORKER": "off"}
    alone = Server(data_dir=tmp_path, database_url=a.database_url, extra_env=env).start()
    try:
        token = cluster.world.owner_token
        plan = cluster.plan("Redis not there yet")
        async with (
            connect(alone.ws, plan, token) as (one, _),
            connect(alone.ws, plan, token) as (
                two,
                _,
            ),
        ):
            add_paragraph(one, "while Redis is away")
            await wait_for(lambda: paragraphs(two) == ["while Redis is away"])
            late.start()
            # Another process on the same Redis sees it, and edits from there come back.
            partner = Server(
                data_dir=tmp_path / "partner", database_url=a.database_url, extra_env=env
            )
            (tmp_path / "partner").mkdir()
            partner.start()
            try:
                async with connect(partner.ws, plan, token) as (three, _):
                    assert paragraphs(three) == ["while Redis is away"]
                    add_paragraph(three, "through Redis")
                    want = ["through Redis", "while Redis is away"]
                    await wait_for(lambda: together(one, two) == [want] * 2, 20, "fan-out")
            finally:
                partner.stop()
    finally:
        alone.stop()
        late.stop()


# The checkpoint trap, one level down: two room managers (as two processes) on one database,
# their messages held back and delivered by hand.


async def opened(rooms: RoomManager, plan: str) -> Room:
    """``rooms.open(plan)``, once the log read a load starts in the background is over: on a
    busy host it could otherwise read what the test logs next, and no batch would be missed."""
    room = await rooms.open(plan)
    if room._catching_up is not None:
        await room._catching_up
    return room


class HeldBus:
    """A ``Bus`` that keeps what its room publishes until the test delivers it."""

    connected = True

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.updates: list[tuple[str, int, int, bytes]] = []

    def publish_update(self, key: str, prev: int, last: int, update: bytes) -> None:
        self.updates.append((key, prev, last, update))

    def publish_awareness(self, key: str, frame: bytes) -> None:
        pass

    def publish_closing(self, closing: object) -> None:
        pass

    def publish_discard(self, key: str, code: int, reason: str) -> None:
        pass

    def watch(self, key: str) -> None:
        pass

    def loaded(self, key: str) -> None:
        pass

    def unwatch(self, key: str) -> None:
        pass

    def here_changed(self, key: str) -> None:
        pass

    def remote_present(self, key: str) -> list:  # type: ignore[type-arg]
        return []

    def deliver(self, rooms: RoomManager, which: int) -> None:
        key, prev, last, update = self.updates[which]
        room = rooms.room(key)
        assert room is not None
        room.apply_remote(prev, last, update)


@pytest.fixture
def two_processes(backend: str, tmp_path: Path) -> Iterator[tuple[Store, Store, str]]:
    if backend != "postgresql":
        pytest.skip("several processes share a PostgreSQL database, never SQLite")
    db = Database(backend, tmp_path, at_head=True)
    first, second = Store.from_url(db.url), Store.from_url(db.url)
    with persistence.transaction(first.factory) as s:
        plan = persistence.create_plan(session=s, title="P", customer="C", created_by=None).id
    try:
        yield first, second, plan
    finally:
        first.dispose()
        second.dispose()
        db.drop()


async def test_a_checkpoint_claims_only_what_its_room_applied(
    two_processes: tuple[Store, Store, str],
) -> None:
    """Process A logs x, process B logs y > x before A's message reached it, and writes a
    checkpoint from its document: labelled y, it would claim x without holding it, and a load
    (checkpoint + entries after y) would lose x."""
    store_a, store_b, plan = two_processes
    a = RoomManager(store_a, idle_seconds=60, checkpoint_every=1000)
    b = RoomManager(store_b, idle_seconds=60, checkpoint_every=1)
    bus_a, bus_b = HeldBus("a"), HeldBus("b")
    a.attach(bus_a)
    b.attach(bus_b)
    async with a, b:
        room_a, room_b = await opened(a, plan), await opened(b, plan)
        await room_a.apply_server_change(lambda d: add_paragraph(d, "first"), None)
        bus_a.deliver(b, 0)
        await room_b._checkpoint_written()
        x = await room_a.apply_server_change(lambda d: add_paragraph(d, "from A"), None)
        y = await room_b.apply_server_change(lambda d: add_paragraph(d, "from B"), None)
        assert x is not None and y is not None and x < y
        await room_b._checkpoint_written()  # checkpoint_every=1: B wrote one after y
        assert room_b.last_id == y and room_b.applied_upto < x
        history = await store_b.load(plan)
        assert history.checkpoint_upto < x
        loaded = Doc()
        for update in [history.checkpoint or b"", *history.updates]:
            if update:
                loaded.apply_update(update)
        assert sorted(paragraphs(loaded)) == ["first", "from A", "from B"]
        # A's message arrives late: B has everything up to y now.
        bus_a.deliver(b, 1)
        assert room_b.applied_upto == y and not room_b.gapped
        assert sorted(paragraphs(room_b.doc)) == ["first", "from A", "from B"]


async def test_a_room_that_missed_a_batch_reads_it_from_the_log(
    two_processes: tuple[Store, Store, str],
) -> None:
    store_a, store_b, plan = two_processes
    a = RoomManager(store_a, idle_seconds=60, checkpoint_every=1000)
    b = RoomManager(store_b, idle_seconds=60, checkpoint_every=1000)
    bus_a, bus_b = HeldBus("a"), HeldBus("b")
    a.attach(bus_a)
    b.attach(bus_b)
    async with a, b:
        room_a, room_b = await opened(a, plan), await opened(b, plan)
        await room_a.apply_server_change(lambda d: add_paragraph(d, "lost"), None)
        last = await room_a.apply_server_change(lambda d: add_paragraph(d, "delivered"), None)
        bus_a.deliver(b, 1)  # the first never comes
        assert room_b.gapped
        await wait_for(lambda: not room_b.gapped, 10, "the gap filled from the log")
        assert room_b.applied_upto == last
        assert sorted(paragraphs(room_b.doc)) == ["delivered", "lost"]
        assert room_key(plan) == room_b.key


# Helpers


def _state(p, client: int) -> dict | None:  # type: ignore[no-untyped-def]
    """The newest awareness state ``p`` received for ``client`` (None: none, or ended)."""
    newest = None
    for c, _, st in p.awareness():
        if c == client:
            newest = st  # decoded: None for a removal
    return newest


def _ended(p, client: int) -> bool:  # type: ignore[no-untyped-def]
    entries = [st for c, _, st in p.awareness() if c == client]
    return bool(entries) and entries[-1] is None


async def _closed_within(ws, seconds: float) -> int | None:  # type: ignore[no-untyped-def]
    try:
        async with asyncio.timeout(seconds):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


async def _log(server: Server, plan: str) -> list[bytes]:
    store = Store.from_url(server.database_url)
    try:
        rows = await store.read(
            lambda s: persistence.log_entries(session=s, plan_id=plan, doc="plan")
        )
        return [data for _, _, _, data in rows]
    finally:
        store.dispose()


def _replay(updates: list[bytes]) -> Doc:  # oldest first
    doc = Doc()
    for update in updates:
        doc.apply_update(update)
    return doc

"""One worker at a time across processes on one PostgreSQL database, under the worker lease.

Real processes: a server without a worker of its own and two ``tandem worker`` processes on the
same database; real Yjs clients. The holder is killed (SIGKILL) or paused (SIGSTOP); the other
takes over, and the commitment history has every event once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.server.test_plandata import add_task, api, ok, poll, task_elements, tasks
from tests.support.servers import ROOT, Database, Server
from tests.support.yclient import connect

pytestmark = pytest.mark.anyio

LEASE_SECONDS = "2"


@pytest.fixture
def postgres(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("the worker lease is for several processes on PostgreSQL")


class Worker:
    def __init__(self, server: Server, name: str) -> None:
        self.log_path = server.data_dir / f"worker-{name}.log"
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server", "worker"],
                env={
                    **server.env(),
                    "TANDEM_WORKER_SERVER_URL": server.http,
                    "TANDEM_WORKER_LEASE_SECONDS": LEASE_SECONDS,
                },
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def holds(self) -> bool:
        return f"worker {self.proc.pid} holds the worker lease" in self.log()

    def waits(self) -> bool:
        return f"worker {self.proc.pid} waits" in self.log()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def cluster(postgres: None, database: Database, tmp_path: Path) -> Iterator[Server]:
    server = Server(
        data_dir=tmp_path, database_url=database.url, extra_env={"TANDEM_WORKER": "off"}
    ).start()
    yield server
    server.stop()


def history(server: Server, token: str, plan_id: str) -> list[dict[str, Any]]:
    return ok(api(server, token, "GET", f"/api/plans/{plan_id}/history"))["events"]


def duplicates(server: Server) -> list[tuple[Any, ...]]:
    """Commitment-history rows written twice for the same change of the same update."""
    import psycopg

    with psycopg.connect(server.database_url) as conn:
        return conn.execute(
            "SELECT plan_id, entity_id, kind, update_id, count(*) FROM audit_events"
            " GROUP BY plan_id, entity_id, kind, update_id HAVING count(*) > 1"
        ).fetchall()


async def a_plan_and_two_workers(server: Server) -> tuple[str, str, Worker, Worker]:
    """A CSM's token and plan, and two workers of which the first holds the lease."""
    server.create_user("csm@vendor.example", "Casey CSM")
    token = server.create_token("csm@vendor.example")
    plan_id = server.create_plan(token)
    return (token, plan_id, *await two_workers(server))


async def two_workers(server: Server) -> tuple[Worker, Worker]:
    first = Worker(server, "a")
    await poll(first.holds, timeout=30)
    second = Worker(server, "b")
    await poll(second.waits, timeout=30)
    return first, second


async def test_one_worker_materialises_and_another_takes_over_when_it_is_killed(
    cluster: Server,
) -> None:
    server = cluster
    token, plan_id, first, second = await a_plan_and_two_workers(server)
    try:
        async with connect(server.ws, plan_id, token) as (doc, _):
            add_task(doc, "Before the kill")
            await poll(lambda: tasks(server, token, plan_id), timeout=20)
            assert "following the update log" in first.log()
            assert "following the update log" not in second.log()  # it waits, doing nothing
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait()
            # Edits go on while nobody holds the lease; the log keeps them.
            add_task(doc, "While nobody held it")
            task_elements(doc)[0].attributes["checked"] = True
            await poll(second.holds, timeout=30)

            def by_text() -> dict[str, dict[str, Any]]:
                return {r["text"]: r for r in tasks(server, token, plan_id)}

            await poll(
                lambda: len(by_text()) == 2 and by_text()["Before the kill"]["checked"],
                timeout=20,
            )
        events = history(server, token, plan_id)
        created = [e for e in events if e["kind"] == "created"]
        assert sorted(e["new"]["text"] for e in created) == [
            "Before the kill",
            "While nobody held it",
        ]
        assert len([e for e in events if e["kind"] == "completed"]) == 1
        assert duplicates(server) == []
    finally:
        first.stop()
        second.stop()


async def test_a_paused_holder_loses_the_lease_and_writes_nothing_when_it_wakes(
    cluster: Server,
) -> None:
    server = cluster
    token, plan_id, first, second = await a_plan_and_two_workers(server)
    try:
        async with connect(server.ws, plan_id, token) as (doc, _):
            add_task(doc, "Before the pause")
            await poll(lambda: tasks(server, token, plan_id), timeout=20)
            os.kill(first.proc.pid, signal.SIGSTOP)  # alive, holding a lease that will lapse
            add_task(doc, "During the pause")
            await poll(second.holds, timeout=30)
            await poll(lambda: len(tasks(server, token, plan_id)) == 2, timeout=20)
            os.kill(first.proc.pid, signal.SIGCONT)
            # It finds it lost the lease, stops its work and waits for the lease again.
            await poll(lambda: "stopped working: the lease is another's" in first.log(), timeout=30)
            await poll(lambda: first.log().count(f"worker {first.proc.pid} waits") >= 1)
            add_task(doc, "After the pause")
            await poll(lambda: len(tasks(server, token, plan_id)) == 3, timeout=20)
        created = [e for e in history(server, token, plan_id) if e["kind"] == "created"]
        assert len(created) == 3
        assert duplicates(server) == []
        assert first.proc.poll() is None  # alive, waiting
    finally:
        first.stop()
        second.stop()


async def test_the_fence_refuses_a_write_from_a_holder_whose_lease_lapsed(
    postgres: None, database: Database
) -> None:
    import persistence
    from server.plan import NotTheHolder
    from server.store import Store
    from server.worker.lease import NAME, WorkerLease

    persistence.upgrade(database.url)
    store = Store.from_url(database.url)
    try:
        stale = WorkerLease(store, "host:1:worker", ttl=60)
        fresh = WorkerLease(store, "host:2:worker", ttl=60)
        stop = __import__("asyncio").Event()
        assert await stale.acquire(stop)
        await store.run(stale.fence)  # held: passes
        # Its lease lapses (as after a long pause) and the other worker takes it.
        await store.run(
            lambda s: persistence.take_lease(
                session=s, name=NAME, holder="host:1:worker", ttl=timedelta(seconds=-1)
            )
        )
        assert await fresh.acquire(stop)
        with pytest.raises(NotTheHolder):
            await store.run(stale.fence)
        await store.run(fresh.fence)
    finally:
        store.dispose()


async def test_of_two_servers_children_one_works_and_the_other_takes_over_from_a_killed_one(
    postgres: None, database: Database, tmp_path: Path
) -> None:
    from tests.server.test_worker_process import worker_of

    env = {"TANDEM_WORKER_LEASE_SECONDS": LEASE_SECONDS}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Server(data_dir=tmp_path / "a", database_url=database.url, extra_env=env).start()
    b = Server(data_dir=tmp_path / "b", database_url=database.url, extra_env=env)
    try:
        first = await poll(lambda: worker_of(a))
        await poll(lambda: f"worker {first} following the update log" in a.log(), timeout=30)
        b.start()
        second = await poll(lambda: worker_of(b))
        await poll(lambda: f"worker {second} waits" in b.log(), timeout=30)
        a.create_user("csm@vendor.example", "Casey CSM")
        token = a.create_token("csm@vendor.example")
        plan_id = a.create_plan(token)
        async with connect(a.ws, plan_id, token) as (doc, _):
            add_task(doc, "Before the kill")
            await poll(lambda: tasks(a, token, plan_id), timeout=20)
        assert "following the update log" not in b.log()
        # The server and its worker die at once (a lost machine): the lease lapses.
        os.kill(first, signal.SIGKILL)
        a.kill()
        await poll(lambda: f"worker {second} holds the worker lease" in b.log(), timeout=30)
        async with connect(b.ws, plan_id, token) as (doc, _):
            add_task(doc, "After the kill")
            await poll(lambda: len(tasks(b, token, plan_id)) == 2, timeout=20)
        created = [e for e in history(b, token, plan_id) if e["kind"] == "created"]
        assert sorted(e["new"]["text"] for e in created) == ["After the kill", "Before the kill"]
        assert duplicates(b) == []
    finally:
        b.stop()
        if a.proc is not None:
            a.stop()

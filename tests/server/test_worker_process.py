"""The worker process: the plans' tables are kept by a process of their own, beside the server.

A real server (and, for ``tandem worker``, a real worker) in subprocesses; real Yjs clients.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.server.test_plandata import add_task, api, ok, poll, task_elements, tasks, wait_for
from tests.support.servers import ROOT, Database, Server
from tests.support.yclient import connect

pytestmark = pytest.mark.anyio


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except FileNotFoundError:
        return []


def worker_of(server: Server) -> int | None:
    """The pid of the server's worker child, once it runs."""
    assert server.proc is not None
    found = [c for c in children(server.proc.pid) if "worker" in cmdline(c)]
    return found[0] if found else None


def alive(pid: int) -> bool:
    # A zombie (exited, not yet reaped) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def history(server: Server, token: str, plan_id: str) -> list[dict[str, Any]]:
    return ok(api(server, token, "GET", f"/api/plans/{plan_id}/history"))["events"]


async def test_the_worker_is_a_separate_process_and_ids_reach_every_client(
    server: Server, token: str, plan_id: str
) -> None:
    assert server.proc is not None
    worker = await poll(lambda: worker_of(server))
    assert worker != server.proc.pid and cmdline(worker)[1:4] == ["-m", "server", "worker"]
    # It runs below the server's priority (TANDEM_WORKER_NICE, 10 by default), once started.
    server_nice = os.getpriority(os.PRIO_PROCESS, server.proc.pid)
    await poll(lambda: os.getpriority(os.PRIO_PROCESS, worker) == server_nice + 10)
    async with (
        connect(server.ws, plan_id, token) as (a, _),
        connect(server.ws, plan_id, token) as (b, _),
    ):
        add_task(a, "Agree the success criteria")  # no id: the worker asks the room for one
        await wait_for(lambda: all(task_elements(d) for d in (a, b)))
        await wait_for(lambda: all(task_elements(d)[0].attributes.get("id") for d in (a, b)))
        ids = [task_elements(d)[0].attributes.get("id") for d in (a, b)]
        (row,) = await poll(lambda: tasks(server, token, plan_id))
        assert row["id"] == ids[0] == ids[1] and row["text"] == "Agree the success criteria"


def shared_dirty_kib(pid: int) -> int:
    """Pages this process maps dirty and shares with another: for the worker, those it still
    shares with the server it was forked from (a fresh interpreter shares next to none)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Shared_Dirty:"):
            return int(line.split()[1])
    return 0


async def test_the_first_worker_is_forked_and_shares_the_servers_modules(
    server: Server, token: str, plan_id: str
) -> None:
    # Forked once the server's modules are imported: their pages are shared copy-on-write
    # (tens of MB; how much is measured in bench/, not here), where an interpreter of its own
    # would share only the SQLite index (-shm) with the server.
    worker = await poll(lambda: worker_of(server))
    assert shared_dirty_kib(worker) > 4096


async def test_a_killed_worker_is_restarted_and_loses_nothing(
    server: Server, token: str, plan_id: str
) -> None:
    first = await poll(lambda: worker_of(server))
    async with connect(server.ws, plan_id, token) as (doc, _):
        add_task(doc, "Before the kill")
        await poll(lambda: tasks(server, token, plan_id))
        os.kill(first, signal.SIGKILL)
        # Edits go on while no worker runs; the log keeps them.
        add_task(doc, "While it was dead")
        task_elements(doc)[0].attributes["checked"] = True
        second = await poll(lambda: (w := worker_of(server)) != first and w)

        def by_text() -> dict[str, dict[str, Any]]:
            return {r["text"]: r for r in tasks(server, token, plan_id)}

        await poll(lambda: len(by_text()) == 2 and by_text()["Before the kill"]["checked"])
        assert set(by_text()) == {"Before the kill", "While it was dead"}
        assert alive(second) and not alive(first)
    events = history(server, token, plan_id)
    created = [e for e in events if e["kind"] == "created"]
    assert sorted(e["new"]["text"] for e in created) == ["Before the kill", "While it was dead"]
    assert len([e for e in events if e["kind"] == "completed"]) == 1


async def test_the_worker_dies_with_the_server_and_stops_with_it(
    server: Server, token: str, plan_id: str
) -> None:
    worker = await poll(lambda: worker_of(server))
    server.kill()  # SIGKILL: no chance to stop its child
    await wait_for(lambda: not alive(worker), timeout=10)
    server.start()
    worker = await poll(lambda: worker_of(server))
    await poll(lambda: f"worker {worker} following the update log" in server.log(), timeout=30)
    assert server.stop() == 0  # SIGTERM: stops its worker, cleanly, and then exits 0
    await wait_for(lambda: not alive(worker), timeout=5)
    assert f"worker {worker} stopped cleanly" in server.log()


async def test_a_sigterm_to_the_process_group_is_a_stop_not_a_worker_to_restart(
    server: Server, token: str, plan_id: str
) -> None:
    """Ctrl-C, a supervisor or a container runtime signals the whole group: the worker can see
    its SIGTERM before the server sees its own, and must not be started again meanwhile."""
    worker = await poll(lambda: worker_of(server))
    await poll(lambda: f"worker {worker} following the update log" in server.log(), timeout=30)
    assert server.proc is not None
    os.kill(worker, signal.SIGTERM)  # the worker first: the order that raced
    os.kill(server.proc.pid, signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0
    server.proc = None
    log = server.log()
    assert f"worker {worker} stopped cleanly" in log
    assert "restarting it" not in log
    server.start()  # the module's other tests go on with it


async def test_tandem_worker_alone_keeps_the_tables_of_a_server_without_one(
    database: Database, tmp_path: Path
) -> None:
    server = Server(
        data_dir=tmp_path, database_url=database.url, extra_env={"TANDEM_WORKER": "off"}
    ).start()
    worker: subprocess.Popen[bytes] | None = None
    try:
        assert worker_of(server) is None
        server.create_user("csm@vendor.example", "Casey CSM")
        token = server.create_token("csm@vendor.example")
        plan_id = server.create_plan(token)
        with open(tmp_path / "worker.log", "ab") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "server", "worker"],
                env={**server.env(), "TANDEM_WORKER_SERVER_URL": server.http},
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        async with (
            connect(server.ws, plan_id, token) as (a, _),
            connect(server.ws, plan_id, token) as (b, _),
        ):
            add_task(a, "Kick-off call")
            (row,) = await poll(lambda: tasks(server, token, plan_id), timeout=20)
            await wait_for(lambda: task_elements(b)[0].attributes.get("id") == row["id"])
            # Write-back still goes through the room, and its answer waits for the worker.
            r = api(
                server,
                token,
                "PATCH",
                f"/api/plans/{plan_id}/tasks/{row['id']}",
                json={"status": "done"},
            )
            assert ok(r)["status"] == "done"
            await wait_for(lambda: task_elements(a)[0].attributes.get("status") == "done")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
        assert "stopped cleanly" in (tmp_path / "worker.log").read_text()
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        server.stop()


async def test_the_internal_endpoint_wants_the_worker_credential_for_that_plan(
    server: Server, token: str, plan_id: str
) -> None:
    from server.worker import mint

    url = f"/internal/plans/{plan_id}/ids"
    right = "test-secret-key-not-for-production"
    for bearer in (token, mint("another key", plan_id), mint(right, "another-plan")):
        r = api(server, bearer, "POST", url, json={"author_id": None})
        assert r.status_code == 403, r.text
    r = api(server, mint(right, plan_id), "POST", url, json={})
    assert ok(r) == {"log_id": None}  # a plan without tasks: nothing to give

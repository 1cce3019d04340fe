"""The store's log append on SQLite: on the event loop when the database is free, and in a
worker thread, without blocking the loop, when another process holds the write lock."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import anyio
import pytest

import persistence
from server.store import Store

pytestmark = pytest.mark.anyio


async def new_store(tmp_path: Path) -> tuple[Store, str, Path]:
    path = tmp_path / "t.db"
    url = f"sqlite:///{path}"
    persistence.upgrade(url)
    store = Store.from_url(url)
    plan = await store.run(
        lambda s: persistence.create_plan(session=s, title="P", customer="C", created_by=None)
    )
    return store, plan.id, path


async def test_an_append_waits_for_another_process_lock_without_stalling_the_loop(
    tmp_path: Path,
) -> None:
    store, plan_id, path = await new_store(tmp_path)
    try:
        other = sqlite3.connect(path, isolation_level=None)  # as the CLI or a backup would
        other.execute("BEGIN IMMEDIATE")  # holds the write lock
        ticks: list[float] = []
        done: list[list[int]] = []

        async def append() -> None:
            done.append(await store.append(plan_id, [(None, b"\x00\x00\x01")]))

        async def tick() -> None:
            while not done:
                ticks.append(time.monotonic())
                await anyio.sleep(0.01)

        async with anyio.create_task_group() as tg:
            tg.start_soon(tick)
            tg.start_soon(append)
            await anyio.sleep(0.5)
            assert not done  # still waiting for the lock...
            assert len(ticks) > 20  # ...and the loop kept running meanwhile
            other.execute("COMMIT")
        other.close()
        assert len(done[0]) == 1
        entries = await store.read(lambda s: persistence.log_entries(session=s, plan_id=plan_id))
        assert [e[0] for e in entries] == done[0]  # written once, not twice
    finally:
        store.dispose()


async def test_appends_keep_log_order_and_ids(tmp_path: Path) -> None:
    store, plan_id, _path = await new_store(tmp_path)
    try:
        ids = []
        for i in range(5):
            ids += await store.append(plan_id, [(None, bytes([i])), (None, bytes([i, i]))])
        assert ids == sorted(ids) and len(set(ids)) == 10
        entries = await store.read(lambda s: persistence.log_entries(session=s, plan_id=plan_id))
        assert [e[0] for e in entries] == ids
        assert [e[3] for e in entries][:2] == [b"\x00", b"\x00\x00"]
    finally:
        store.dispose()

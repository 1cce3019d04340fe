"""An append that finds the SQLite write lock held by another process asks again on the event
loop, and commits once the lock is free, instead of sleeping in SQLite's busy wait."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import persistence
from server.store import Store


def test_an_append_behind_another_writer_commits_once_the_lock_is_free(tmp_path: Path) -> None:
    path = tmp_path / "tandem.db"
    url = f"sqlite:///{path}"
    persistence.upgrade(url)
    store = Store.from_url(url)

    async def main() -> str:
        plan = await store.run(
            lambda s: persistence.create_plan(session=s, title="P", customer="C", created_by=None)
        )
        await store.append(plan.id, [(None, b"first")])
        # Another process (the worker, say) holds the write lock.
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        append = asyncio.create_task(store.append(plan.id, [(None, b"behind the lock")]))
        while store.lock_polls < 2:  # it found the lock taken and asks again on the loop
            await asyncio.sleep(0)
        assert not append.done()
        other.execute("COMMIT")
        other.close()
        await append
        return plan.id

    try:
        plan_id = asyncio.run(main())
        assert store.lock_waits == 1
        count = asyncio.run(
            store.run(lambda s: persistence.count_updates(session=s, plan_id=plan_id))
        )
        assert count == 2
    finally:
        store.dispose()

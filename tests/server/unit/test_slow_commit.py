"""A slow commit (a slow fsync) holds up its own edits, not the event loop: SQLite appends are
committed in the log writer's thread, and the appends of every room that queued behind a
commit in flight share the next transaction (one fsync)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

import persistence
from server.live import LoopLag
from server.store import Store


@contextlib.contextmanager
def _slow_commits(seconds: float) -> Iterator[None]:
    """Every commit of every engine takes ``seconds`` longer (a slow fsync)."""

    def slow_fsync(_conn: object) -> None:
        time.sleep(seconds)

    event.listen(Engine, "commit", slow_fsync)
    try:
        yield
    finally:
        event.remove(Engine, "commit", slow_fsync)


def _store(tmp_path: Path) -> Store:
    url = f"sqlite:///{tmp_path / 'tandem.db'}"
    persistence.upgrade(url)
    return Store.from_url(url)


async def _plans(store: Store, n: int) -> list[str]:
    def make(s: Session) -> list[str]:
        return [
            persistence.create_plan(session=s, title=f"P{i}", customer="C", created_by=None).id
            for i in range(n)
        ]

    return await store.run(make)


def test_a_slow_commit_never_holds_the_event_loop(tmp_path: Path) -> None:
    store = _store(tmp_path)

    async def main() -> str:
        (plan,) = await _plans(store, 1)
        lag = LoopLag(interval=0.005, warn_ms=1000)
        monitor = asyncio.create_task(lag.run())
        await store.append(plan, [(None, b"fast")])
        await asyncio.sleep(0.02)
        lag.reset()
        with _slow_commits(0.1):
            # The very first slow commit too: nothing has to be found slow first.
            await store.append(plan, [(None, b"slow")])
            await asyncio.gather(*(store.append(plan, [(None, b"slow")]) for _ in range(3)))
        await asyncio.sleep(0.02)
        monitor.cancel()
        # Commits of 100 ms each went by; the loop never waited for one of them.
        assert lag.max_ms < 60, lag.max_ms
        return plan

    try:
        plan_id = asyncio.run(main())
        count = asyncio.run(
            store.run(lambda s: persistence.count_updates(session=s, plan_id=plan_id))
        )
        assert count == 5
    finally:
        store.dispose()


def test_appends_of_rooms_queued_behind_a_commit_share_the_next_one(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store._log_writer is not None
    writer = store._log_writer

    async def main() -> list[list[int]]:
        plans = await _plans(store, 5)
        with _slow_commits(0.05):
            first = asyncio.ensure_future(store.append(plans[0], [(None, b"first")]))
            await asyncio.sleep(0.01)  # its commit is in flight
            before = writer.transactions
            rest = await asyncio.gather(
                *(store.append(p, [(None, b"a"), (None, b"b")]) for p in plans[1:])
            )
            await first
        # The first commit, then one for the four rooms that queued behind it.
        assert writer.transactions - before == 2
        return rest

    try:
        rest = asyncio.run(main())
        assert [len(ids) for ids in rest] == [2, 2, 2, 2]
        flat = [i for ids in rest for i in ids]
        assert flat == sorted(flat) and len(set(flat)) == 8
    finally:
        store.dispose()


def test_one_rooms_failed_append_is_its_own(tmp_path: Path) -> None:
    """A transaction of several rooms' appends that fails is retried one append at a time:
    only the append that broke it fails."""
    store = _store(tmp_path)

    async def main() -> list[object]:
        plans = await _plans(store, 2)
        with _slow_commits(0.05):
            first = asyncio.ensure_future(store.append(plans[0], [(None, b"first")]))
            await asyncio.sleep(0.01)
            outcomes = await asyncio.gather(
                store.append(plans[1], [(None, b"fine")]),
                store.append("no-such-plan", [(None, b"refused by the foreign key")]),
                return_exceptions=True,
            )
            await first
        return outcomes

    try:
        fine, refused = asyncio.run(main())
        assert isinstance(fine, list) and len(fine) == 1
        assert isinstance(refused, Exception)
    finally:
        store.dispose()


def test_an_append_fails_rather_than_hangs_when_no_connection_opens(tmp_path: Path) -> None:
    store = _store(tmp_path)
    writer = store._log_writer
    assert writer is not None

    class Unreachable:
        def connect(self) -> None:
            raise OSError("disk gone")

    async def main() -> None:
        (plan,) = await _plans(store, 1)
        engine, writer._engine = writer._engine, Unreachable()  # type: ignore[assignment]  # a stand-in engine
        try:
            with pytest.raises(OSError):
                await asyncio.wait_for(store.append(plan, [(None, b"x")]), 5)
        finally:
            writer._engine = engine
        assert len(await store.append(plan, [(None, b"y")])) == 1

    try:
        asyncio.run(main())
    finally:
        store.dispose()

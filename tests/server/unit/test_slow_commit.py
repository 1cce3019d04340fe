"""A slow commit (a slow fsync) holds up its own edits, not the event loop: after one append
on the loop turns out slow, appends go through a worker thread, and the loop stays on time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import event

import persistence
from server.live import LoopLag
from server.store import Store


def test_after_a_slow_commit_appends_leave_the_event_loop(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tandem.db'}"
    persistence.upgrade(url)
    store = Store.from_url(url)
    assert store._now is not None

    def slow_fsync(_conn: object) -> None:
        time.sleep(0.1)

    async def main() -> str:
        plan = await store.run(
            lambda s: persistence.create_plan(session=s, title="P", customer="C", created_by=None)
        )
        lag = LoopLag(interval=0.005, warn_ms=1000)
        monitor = asyncio.create_task(lag.run())
        await store.append(plan.id, [(None, b"fast")])  # on the loop, as usual
        # (the first commit opens the connection: on a busy host it may count as slow)
        store.off_loop_until, store.slow_appends = 0.0, 0
        for engine in (store._now, store.engine):
            event.listen(engine, "commit", slow_fsync)
        await store.append(plan.id, [(None, b"slow, on the loop")])  # found slow
        assert store.slow_appends == 1
        await asyncio.sleep(0.02)
        lag.reset()
        await asyncio.gather(*(store.append(plan.id, [(None, b"slow")]) for _ in range(3)))
        await asyncio.sleep(0.02)
        monitor.cancel()
        # Three commits of 100 ms each went by; the loop never waited for one of them.
        assert lag.max_ms < 60, lag.max_ms
        return plan.id

    try:
        plan_id = asyncio.run(main())
        count = asyncio.run(
            store.run(lambda s: persistence.count_updates(session=s, plan_id=plan_id))
        )
        assert count == 5
    finally:
        store.dispose()

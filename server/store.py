"""The room's view of the database: persistence calls run in worker threads, off the event loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import anyio
from sqlalchemy.orm import Session, sessionmaker

import persistence

T = TypeVar("T")


class Store:
    def __init__(self, factory: sessionmaker[Session], *, sqlite: bool) -> None:
        self.factory = factory
        # SQLite has one writer at a time: queue writers here instead of in its busy-wait.
        self._limiter = anyio.CapacityLimiter(1 if sqlite else 8)

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in one transaction in a worker thread."""

        def work() -> T:
            with persistence.transaction(self.factory) as session:
                return fn(session)

        return await anyio.to_thread.run_sync(work, limiter=self._limiter)

    async def append(self, plan_id: str, entries: Sequence[tuple[int | None, bytes]]) -> list[int]:
        return await self.run(
            lambda s: persistence.append_updates(session=s, plan_id=plan_id, entries=entries)
        )

    async def load(self, plan_id: str) -> persistence.PlanHistory:
        return await self.run(lambda s: persistence.load_history(session=s, plan_id=plan_id))

    async def checkpoint(self, plan_id: str, upto_id: int, state: bytes) -> None:
        await self.run(
            lambda s: persistence.save_checkpoint(
                session=s, plan_id=plan_id, upto_id=upto_id, state=state
            )
        )

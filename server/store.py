"""The room's view of the database: persistence calls run in worker threads, off the event loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import anyio
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

import persistence

T = TypeVar("T")


INTERNAL_SUFFIX = ":internal"


def room_key(plan_id: str, doc: str = "plan") -> str:
    """Rooms are keyed by plan id, with a suffix for the vendor-only internal document."""
    return plan_id + INTERNAL_SUFFIX if doc == "internal" else plan_id


def split_key(key: str) -> tuple[str, str]:
    if key.endswith(INTERNAL_SUFFIX):
        return key[: -len(INTERNAL_SUFFIX)], "internal"
    return key, "plan"


class Store:
    def __init__(self, factory: sessionmaker[Session], *, sqlite: bool) -> None:
        self.factory = factory
        self.engine: Engine = factory.kw["bind"]
        # SQLite has one writer at a time: queue writers here instead of in its busy-wait.
        self._limiter = anyio.CapacityLimiter(1 if sqlite else 8)

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in one transaction in a worker thread."""

        def work() -> T:
            with persistence.transaction(self.factory) as session:
                return fn(session)

        return await anyio.to_thread.run_sync(work, limiter=self._limiter)

    async def run_core(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` in one Core transaction (no ORM session) in a worker thread:
        for the hot path, where a Session's unit of work costs more than the SQL."""

        def work() -> T:
            with self.engine.begin() as conn:
                return fn(conn)

        return await anyio.to_thread.run_sync(work, limiter=self._limiter)

    # ``key`` is a room key: a plan id, or a plan id with the internal document's suffix.

    async def append(self, key: str, entries: Sequence[tuple[int | None, bytes]]) -> list[int]:
        plan_id, doc = split_key(key)
        return await self.run_core(
            lambda s: persistence.append_updates(
                session=s, plan_id=plan_id, entries=entries, doc=doc
            )
        )

    async def load(self, key: str) -> persistence.PlanHistory:
        plan_id, doc = split_key(key)
        return await self.run(
            lambda s: persistence.load_history(session=s, plan_id=plan_id, doc=doc)
        )

    async def checkpoint(self, key: str, upto_id: int, state: bytes) -> None:
        plan_id, doc = split_key(key)
        await self.run(
            lambda s: persistence.save_checkpoint(
                session=s, plan_id=plan_id, upto_id=upto_id, state=state, doc=doc
            )
        )

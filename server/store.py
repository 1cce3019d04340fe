"""The room's view of the database: persistence calls run in worker threads, off the event loop."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import anyio
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

import persistence

from .histogram import Histogram

T = TypeVar("T")

# An append on the event loop that takes longer than this (a slow fsync, a busy disk) held
# every room and request of the process as long: appends then go through a worker thread
# for OFF_LOOP_SECONDS, so a slow disk delays each commit's own edits, not the others'.
SLOW_ON_LOOP = 0.02
OFF_LOOP_SECONDS = 10.0

log = logging.getLogger(__name__)


def _core(engine: Engine, fn: Callable[[Connection], T]) -> T:
    """``fn(connection)`` in one Core transaction: committed on success, rolled back on error."""
    with engine.begin() as conn:
        return fn(conn)


class Store:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        sqlite: bool,
        derived: sessionmaker[Session] | None = None,
        now: Engine | None = None,
    ) -> None:
        self.factory = factory
        self.engine: Engine = factory.kw["bind"]
        # Sessions for data rebuilt from the log (commits not flushed to disk; see make_engine).
        self.derived = derived or factory
        # SQLite: an engine whose writes never wait for the lock, for appends on the loop.
        self._now: Engine | None = now
        self.sqlite = sqlite
        self.writes = 0  # transactions through the writers' queue, for keep_wal_short
        self.off_loop_until = 0.0  # loop time until which appends go through a thread
        self.slow_appends = 0
        # How long the log append of each group commit took (its transaction, commit included).
        self.commit_seconds = Histogram()
        self._checkpointed_writes = 0
        # SQLite has one writer at a time: queue writers here instead of in its busy-wait.
        self._limiter = anyio.CapacityLimiter(1 if sqlite else 8)
        # Reads only: in WAL mode they neither wait for the writer nor hold it up.
        self._readers = anyio.CapacityLimiter(4 if sqlite else 8)

    @classmethod
    def from_url(cls, url: str) -> Store:
        engine = persistence.make_engine(url)
        return cls(
            persistence.make_sessionmaker(engine),
            sqlite=engine.dialect.name == "sqlite",
            derived=persistence.make_sessionmaker(persistence.make_engine(url, durable=False)),
            now=(
                persistence.make_engine(url, wait_for_lock=False)
                if engine.dialect.name == "sqlite"
                else None
            ),
        )

    async def keep_wal_short(self, every: float = 0.5) -> None:
        """Runs for the server's lifetime (SQLite only): checkpoints the WAL after writes, so
        that a commit seldom has to (see ``persistence.make_engine``)."""
        if not self.sqlite:
            return
        while True:
            await anyio.sleep(every)
            if self.writes == self._checkpointed_writes:
                continue
            self._checkpointed_writes = self.writes
            try:
                # Beside the writer, never behind it: a PASSIVE checkpoint blocks no one.
                await anyio.to_thread.run_sync(persistence.checkpoint_wal, self.engine)
            except Exception:
                log.exception("checkpointing the SQLite WAL failed; will retry")

    def dispose(self) -> None:
        self.engine.dispose()
        derived = self.derived.kw["bind"]
        if derived is not self.engine:
            derived.dispose()
        if self._now is not None:
            self._now.dispose()

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in one transaction in a worker thread."""
        return await self._session(self.factory, fn, self._limiter)

    async def read(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)``, which only reads, beside the writer instead of behind it."""
        return await self._session(self.factory, fn, self._readers)

    async def run_derived(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` writing only data rebuilt from the log (see ``make_engine``),
        in the writers' queue."""
        return await self._session(self.derived, fn, self._limiter)

    async def run_core(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` in one Core transaction (no ORM session) in a worker thread:
        for the hot path, where a Session's unit of work costs more than the SQL."""

        self.writes += 1
        return await anyio.to_thread.run_sync(_core, self.engine, fn, limiter=self._limiter)

    async def _session(
        self,
        factory: sessionmaker[Session],
        fn: Callable[[Session], T],
        limiter: anyio.CapacityLimiter,
    ) -> T:
        def work() -> T:
            with persistence.transaction(factory) as session:
                return fn(session)

        if limiter is self._limiter:
            self.writes += 1
        return await anyio.to_thread.run_sync(work, limiter=limiter)

    # ``doc`` is which of the plan's documents: "plan" (shared) or "internal" (vendor only).

    async def append(
        self,
        plan_id: str,
        entries: Sequence[tuple[int | None, bytes]],
        *,
        doc: str = "plan",
        touch: bool = True,
    ) -> list[int]:

        def work(conn: Connection) -> list[int]:
            return persistence.append_updates(
                session=conn, plan_id=plan_id, entries=entries, doc=doc, touch=touch
            )

        with self._timed_commit():
            return await self._append(work)

    @contextlib.contextmanager
    def _timed_commit(self) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.commit_seconds.observe(time.perf_counter() - began)

    async def _append(self, work: Callable[[Connection], list[int]]) -> list[int]:
        if self._now is None or anyio.current_time() < self.off_loop_until:
            return await self.run_core(work)
        # SQLite: the writers' queue guarantees no other writer in this process, so the
        # append runs right here on the event loop: the INSERT is ~0.1 ms and the fsync
        # ~0.2 ms, less than handing them to a worker thread and back (whose GIL handovers,
        # under load, made an append take 1.9 ms instead of 0.5 ms). Only another process
        # (the CLI, a backup) can hold the lock; then the append fails at once, without
        # waiting, and waits for the lock in a worker thread instead.
        # Taken without a checkpoint when free (``async with`` would yield to the loop once
        # first, and the edit wait behind whatever else was ready, before its own commit).
        try:
            self._limiter.acquire_nowait()
        except anyio.WouldBlock:
            await self._limiter.acquire()
        try:
            self.writes += 1
            began = time.perf_counter()
            try:
                return _core(self._now, work)
            except Exception as exc:
                if not persistence.locked(exc):
                    raise
            finally:
                took = time.perf_counter() - began
                if took > SLOW_ON_LOOP:
                    self._slow(took)
            return await anyio.to_thread.run_sync(_core, self.engine, work)
        finally:
            self._limiter.release()

    async def append_chained(
        self,
        plan_id: str,
        entries: Sequence[tuple[int | None, bytes]],
        *,
        doc: str = "plan",
        touch: bool = True,
    ) -> tuple[int, list[int]]:
        """``append`` for a room that other processes write too (PostgreSQL): also the id of
        the document's newest entry before these; see ``persistence.append_updates_chained``."""

        def work(conn: Connection) -> tuple[int, list[int]]:
            return persistence.append_updates_chained(
                session=conn, plan_id=plan_id, entries=entries, doc=doc, touch=touch
            )

        with self._timed_commit():
            return await self.run_core(work)

    async def log_after(
        self, plan_id: str, after_id: int, doc: str = "plan"
    ) -> list[tuple[int, bytes]]:
        return await self.read(
            lambda s: persistence.log_after(session=s, plan_id=plan_id, after_id=after_id, doc=doc)
        )

    async def log_tops(self, rooms: Sequence[tuple[str, str]]) -> list[tuple[str, str, int]]:
        return await self.read(lambda s: persistence.log_tops(session=s, rooms=rooms))

    def _slow(self, took: float) -> None:
        self.slow_appends += 1
        self.off_loop_until = anyio.current_time() + OFF_LOOP_SECONDS
        log.warning(
            "a commit took %.1f ms on the event loop (slow disk?): commits go through a worker "
            "thread for the next %.0f s",
            took * 1000,
            OFF_LOOP_SECONDS,
        )

    async def load(self, plan_id: str, doc: str = "plan") -> persistence.PlanHistory:
        return await self.run(
            lambda s: persistence.load_history(session=s, plan_id=plan_id, doc=doc)
        )

    async def checkpoint(
        self, plan_id: str, upto_id: int, state: bytes, *, doc: str = "plan"
    ) -> None:
        # A checkpoint only summarises the log: written as derived data, without an fsync.
        await self.run_derived(
            lambda s: persistence.save_checkpoint(
                session=s, plan_id=plan_id, upto_id=upto_id, state=state, doc=doc
            )
        )

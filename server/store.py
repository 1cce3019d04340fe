"""The room's view of the database: persistence calls run in worker threads, off the event loop
(SQLite's log appends in one thread of their own, every room's together: ``LogWriter``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar, cast

import anyio
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

import persistence

from .histogram import Histogram

T = TypeVar("T")

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
    ) -> None:
        self.factory = factory
        self.engine: Engine = factory.kw["bind"]
        # Sessions for data rebuilt from the log (commits not flushed to disk; see make_engine).
        self.derived = derived or factory
        self.sqlite = sqlite
        self.writes = 0  # transactions through the writers' queue, for keep_wal_short
        # How long the log append of each group commit took (its transaction, commit included).
        self.commit_seconds = Histogram()
        self._checkpointed_writes = 0
        # SQLite has one writer at a time: queue writers here instead of in its busy-wait.
        self._limiter = anyio.CapacityLimiter(1 if sqlite else 8)
        # SQLite: every room's log appends, committed together in one thread (see LogWriter);
        # the other writers' threads take the same lock around their transactions.
        self._write_lock = threading.Lock()
        self._log_writer = LogWriter(self.engine, self._write_lock) if sqlite else None
        # Reads only: in WAL mode they neither wait for the writer nor hold it up.
        self._readers = anyio.CapacityLimiter(4 if sqlite else 8)

    @classmethod
    def from_url(cls, url: str) -> Store:
        engine = persistence.make_engine(url)
        return cls(
            persistence.make_sessionmaker(engine),
            sqlite=engine.dialect.name == "sqlite",
            derived=persistence.make_sessionmaker(persistence.make_engine(url, durable=False)),
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
        if self._log_writer is not None:
            self._log_writer.close()

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

        def work() -> T:
            with self._writing(self._limiter):
                return _core(self.engine, fn)

        self.writes += 1
        return await anyio.to_thread.run_sync(work, limiter=self._limiter)

    def _writing(self, limiter: anyio.CapacityLimiter) -> contextlib.AbstractContextManager[object]:
        """In a worker thread: SQLite's writers' lock, shared with the log writer's thread."""
        if limiter is self._limiter and self._log_writer is not None:
            return self._write_lock
        return contextlib.nullcontext()

    async def _session(
        self,
        factory: sessionmaker[Session],
        fn: Callable[[Session], T],
        limiter: anyio.CapacityLimiter,
    ) -> T:
        def work() -> T:
            with self._writing(limiter), persistence.transaction(factory) as session:
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
        if self._log_writer is None:
            return await self.run_core(work)
        self.writes += 1
        return await self._log_writer.append(work)

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


class LogWriter:
    """SQLite: the log appends of every room of the process, committed in one thread.

    An append is queued, and a room's writer waits for its own. The thread takes everything
    queued as one transaction: one commit, one fsync, whatever rooms it holds, so appends that
    queued behind a commit in flight (of any room) share the next one. The event loop never
    waits for the disk: a slow fsync delays the edits in that commit and those queued behind
    it (SQLite has one writer), never presence, sync answers or HTTP. If a transaction of
    several appends fails, each is tried again alone, so one room's failure stays its own.

    The thread hands the outcomes back in one callback that settles the waiting futures
    itself: one trip through the event loop, not one per layer of awaiting.
    """

    def __init__(self, engine: Engine, lock: threading.Lock) -> None:
        self._engine = engine
        self._lock = lock  # held by every other writer of the process too (Store._session)
        self._queue: list[_Append] = []
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.transactions = 0  # commits made, each with one fsync
        self._conn: Connection | None = None

    async def append(self, work: Callable[[Connection], list[int]]) -> list[int]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[int]] = loop.create_future()
        with self._wake:
            if self._closed:
                raise RuntimeError("the log writer is closed")
            self._queue.append((loop, work, done))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
                self._thread.start()
            self._wake.notify()
        return await done

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
            try:
                with self._lock:
                    outcomes = self._commit([work for _, work, _ in batch])
                    self.transactions += 1
            except Exception as exc:  # noqa: BLE001 - no connection: every append fails
                outcomes = [exc] * len(batch)
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[list[int]], object]]]
            by_loop = {}
            for (loop, _, done), outcome in zip(batch, outcomes, strict=True):
                by_loop.setdefault(loop, []).append((done, outcome))
            for loop, settled in by_loop.items():
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                    loop.call_soon_threadsafe(_settle, settled)

    def _commit(
        self, works: list[Callable[[Connection], list[int]]]
    ) -> list[list[int] | BaseException]:
        # One connection, held by the thread: no pool checkout and reset for every commit.
        if self._conn is None or self._conn.invalidated or self._conn.closed:
            self._conn = self._engine.connect()
        try:
            return _commit_together(self._conn, works)
        finally:
            if self._conn.in_transaction():  # something went wrong between statements
                self._conn.close()
                self._conn = None

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_Append = tuple[
    asyncio.AbstractEventLoop, Callable[[Connection], list[int]], "asyncio.Future[list[int]]"
]


def _settle(settled: list[tuple[asyncio.Future[list[int]], object]]) -> None:
    for done, outcome in settled:
        if done.done():
            continue  # its caller was cancelled; the append is logged all the same
        if isinstance(outcome, BaseException):
            done.set_exception(outcome)
        else:
            done.set_result(cast(list[int], outcome))


def _in_transaction(conn: Connection, fn: Callable[[Connection], T]) -> T:
    with conn.begin():
        return fn(conn)


def _commit_together(
    conn: Connection, works: list[Callable[[Connection], list[int]]]
) -> list[list[int] | BaseException]:
    """Each of ``works`` in one transaction; if it fails, each alone (in the writer thread)."""
    try:
        return list(_in_transaction(conn, lambda c: [work(c) for work in works]))
    except Exception as exc:  # noqa: BLE001 - whose it is, the appends alone tell
        if len(works) == 1:
            return [exc]
    out: list[list[int] | BaseException] = []
    for work in works:
        try:
            out.append(_in_transaction(conn, work))
        except Exception as exc:  # noqa: BLE001 - that append's own failure
            out.append(exc)
    return out

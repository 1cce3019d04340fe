"""The worker lease: with several processes on one PostgreSQL database, exactly one worker
materialises plans, runs the reminder clock and sends the outbox.

A worker that does not hold the lease tries again every ``retry`` seconds; the holder renews it
every third of its ``ttl``. When the holder dies (SIGKILL, a lost machine) its lease lapses after
at most ``ttl`` seconds and another worker takes it, carrying on from the plans' watermarks.

A holder that was paused rather than dead (a stopped process, a long GC pause, a network
partition) may wake up after its lease lapsed, in the middle of a write. Its writes are fenced:
the materialiser checks the lease in the same transaction that advances a plan's watermark
(``fence``), and that check locks the lease's row, so a takeover waits for the write's
transaction and a stale holder's write does not commit. (The watermark's own compare-and-set
already keeps two writers from writing the same step twice; the fence keeps a stale holder from
writing at all.)

On SQLite there is one process and no lease: the worker runs at once, as it always did.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import timedelta

from sqlalchemy.orm import Session

import persistence
from server.plan import NotTheHolder
from server.store import Store

log = logging.getLogger(__name__)

NAME = "worker"


def holder_name(parent_pid: int | None = None) -> str:
    """This worker's name in the lease. A server's child is named after the server, so the
    child it restarts after a crash takes the lease back at once rather than after ``ttl``."""
    if parent_pid is not None:
        return f"{socket.gethostname()}:{parent_pid}:serve"
    return f"{socket.gethostname()}:{os.getpid()}:worker"


class WorkerLease:
    def __init__(
        self, store: Store, holder: str, *, ttl: float = 10.0, retry: float | None = None
    ) -> None:
        self.store = store
        self.holder = holder
        self.ttl = ttl
        self.retry = retry if retry is not None else max(0.2, min(1.0, ttl / 5))
        self.lost = asyncio.Event()

    async def _take(self) -> bool:
        ttl = timedelta(seconds=self.ttl)
        return await self.store.run(
            lambda s: persistence.take_lease(session=s, name=NAME, holder=self.holder, ttl=ttl)
        )

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this worker holds the lease (True) or ``stop`` is set (False)."""
        said = False
        while not stop.is_set():
            try:
                if await self._take():
                    self.lost = asyncio.Event()
                    log.info("worker %d holds the worker lease (%s)", os.getpid(), self.holder)
                    return True
                if not said:
                    who = await self._holder()
                    log.info("worker %d waits: %s holds the worker lease", os.getpid(), who)
                    said = True
            except Exception:
                log.exception("taking the worker lease failed; will retry")
            try:
                await asyncio.wait_for(stop.wait(), self.retry)
            except TimeoutError:
                pass
        return False

    async def _holder(self) -> str | None:
        return await self.store.read(lambda s: persistence.lease_holder(session=s, name=NAME))

    async def keep(self) -> None:
        """Renew the lease until cancelled; set ``lost`` when it could not be renewed in time
        (someone else took it, or the database was unreachable for ``ttl``)."""
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                if await self._take():
                    renewed = loop.time()
                    continue
                log.warning("worker %d lost the worker lease to another worker", os.getpid())
            except Exception:
                log.exception("renewing the worker lease failed")
                if loop.time() - renewed < self.ttl:
                    continue
                log.warning("worker %d could not renew the worker lease in time", os.getpid())
            self.lost.set()
            return

    def fence(self, s: Session) -> None:
        """Inside a write's transaction: raise ``NotTheHolder`` unless this worker holds the
        lease (and keep it from being taken over until the transaction ends)."""
        if not persistence.holds_lease(session=s, name=NAME, holder=self.holder):
            raise NotTheHolder(self.holder)

    async def release(self) -> None:
        try:
            await self.store.run(
                lambda s: persistence.release_lease(session=s, name=NAME, holder=self.holder)
            )
        except Exception:
            log.exception("releasing the worker lease failed (it lapses by itself)")

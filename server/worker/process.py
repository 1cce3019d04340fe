"""The worker process: follows the update log and keeps every plan's tables and commitment
history current (the materialiser), off the interpreter that applies and forwards edits.

``tandem worker`` runs it on its own; ``tandem serve`` starts it as its child (``child.py``),
nudging it through its stdin, whose end (the parent gone, however it went) stops it too.
Its hook list is its own: the plan events the materialiser publishes (``server.plan``), and
the reactions to them that will come (notification rules, history summaries), live here.
What it has done is in the database (each plan's watermark), so a restart repeats nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from server import notify
from server.hooks import Hooks
from server.plan import Materialiser, SegmentKeeper
from server.settings import Settings
from server.store import Store

from .follower import LogFollower
from .lease import WorkerLease, holder_name
from .writeback import AssignThroughServer

log = logging.getLogger(__name__)


def die_with_parent(parent_pid: int) -> None:
    """Linux: be sent SIGTERM when the parent dies, however it dies; and if it died already
    (before this ran), stop now."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:
        raise SystemExit(0)


async def run_worker(settings: Settings, *, server_url: str, child: bool) -> None:
    store = Store.from_url(settings.database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # With several processes on one database, one worker at a time holds the lease; on
    # SQLite (one process) there is none to wait for.
    lease = (
        None
        if store.sqlite
        else WorkerLease(
            store,
            holder_name(os.getppid() if child else None),
            ttl=settings.worker_lease_seconds,
        )
    )
    worker = _Worker(settings, store, server_url, lease, stop)
    nudges = asyncio.create_task(_nudges(worker.flush, stop), name="nudges") if child else None
    try:
        while not stop.is_set():
            if lease is not None and not await lease.acquire(stop):
                break
            await worker.work()
    finally:
        if nudges is not None:
            nudges.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await nudges
        if lease is not None:
            await lease.release()
        store.dispose()
    log.info("worker %d stopped cleanly", os.getpid())


class _Worker:
    """The worker's work while it may work (always on SQLite; while it holds the lease
    otherwise), and the serving process's nudges, kept for when it does."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        server_url: str,
        lease: WorkerLease | None,
        stop: asyncio.Event,
    ) -> None:
        self.settings = settings
        self.store = store
        self.server_url = server_url
        self.lease = lease
        self.stop = stop
        self.materialiser: Materialiser | None = None  # while it works
        self.flushes: set[asyncio.Task[Any]] = set()
        self.waiting: set[str] = set()  # nudges before it works (starting, or not the holder)

    def flush(self, plan_id: str) -> None:
        if self.materialiser is None:
            # Done when this worker gets to work (its catch-up would find them too); meanwhile
            # the holder's log follower finds them.
            if len(self.waiting) < 10_000:
                self.waiting.add(plan_id)
            return
        task = asyncio.create_task(_flush(self.materialiser, plan_id), name=f"flush-{plan_id}")
        self.flushes.add(task)
        task.add_done_callback(self.flushes.discard)

    async def work(self) -> None:
        """Until ``stop``, or until the lease is lost."""
        settings, store, lease = self.settings, self.store, self.lease
        notifications = notify.build(settings, store, self.server_url)
        # This process's reactions to the materialiser's plan events, called in this order.
        hooks = Hooks()
        hooks.register(
            [
                *notify.subscribers(notifications.notifier),
            ]
        )
        materialiser = Materialiser(
            store,
            AssignThroughServer(self.server_url, settings.secret_key),
            hooks=hooks,
            quiet=settings.materialise_quiet_seconds,
            max_wait=settings.materialise_max_wait_seconds,
            fence=lease.fence if lease is not None else None,
        )
        segments = SegmentKeeper(store)
        follower = LogFollower(
            store, materialiser, poll=settings.worker_poll_seconds, segments=segments
        )
        loops: list[asyncio.Task[Any]] = []
        # The notifier outlives the materialiser: what its last passes publish is still queued.
        async with notifications.notifier, materialiser:
            self.materialiser = materialiser
            for plan_id in list(self.waiting):
                self.flush(plan_id)
            self.waiting.clear()
            loops.append(asyncio.create_task(follower.run(), name="follow-log"))
            if notifications.dispatcher is not None:
                loops.append(asyncio.create_task(notifications.dispatcher.run(), name="send"))
            if settings.notify_clock_seconds > 0:
                loops.append(asyncio.create_task(notifications.clock.run(), name="reminders"))
            ended = [asyncio.create_task(self.stop.wait(), name="stop")]
            if lease is not None:
                loops.append(asyncio.create_task(lease.keep(), name="keep-lease"))
                ended.append(asyncio.create_task(lease.lost.wait(), name="lease-lost"))
            log.info(
                "worker %d following the update log (ids through %s)", os.getpid(), self.server_url
            )
            await asyncio.wait(ended, return_when=asyncio.FIRST_COMPLETED)
            for task in [*loops, *ended]:
                task.cancel()
            await asyncio.gather(*loops, *ended, *self.flushes, return_exceptions=True)
            self.materialiser = None
            await segments.close()
            if lease is not None and lease.lost.is_set():
                log.warning("worker %d stopped working: the lease is another's now", os.getpid())
            # Leaving the materialiser writes what is still pending (fenced by the lease).


async def _nudges(flush: Callable[[str], None], stop: asyncio.Event) -> None:
    """Plan ids, one a line, from the serving process: materialise them now. The end of the
    stream is the parent gone."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            plan_id = line.decode(errors="replace").strip()
            if plan_id:
                flush(plan_id)
    finally:
        stop.set()


async def _flush(materialiser: Materialiser, plan_id: str) -> None:
    try:
        await materialiser.flush(plan_id)
    except Exception:
        log.exception("materialising plan %s on the server's request failed", plan_id)

"""The materialiser: keeps each plan's tables and commitment history in step with its document.

After a room commits updates it is told (``live.Committed``, through the hook list); it waits
for a pause in the editing (``quiet`` seconds after the last commit, but never more than
``max_wait`` after the first), then replays the new log entries on a shadow document and
writes the rows and history events in one transaction. When the shadow holds tasks or rows
without ids, it then gives them ids (a server change through the room, so it is logged and
every editor gets it) and runs again at once. The shadow stays in memory while the plan is
open. Each change it writes is then published to the hook list as a typed event
(``plan/events.py``).

Nothing here walks the live document on the event loop: the replay runs in a worker thread,
the shadow's reader knows which ids are missing from what it read anyway, the log is read
beside the room's writer rather than queued behind it, and the rows are written as derived
data (not flushed to disk before the commit returns: they are rebuilt from the log after a
power cut), so a pass holds up the rooms' commits for as short a time as possible.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import anyio
from sqlalchemy.orm import Session

import crdt
import persistence
from server.hooks import Event, Hooks
from server.live import Committed, RoomManager
from server.store import Store

from .events import changed
from .projection import LogEntry, Shadow, Step, advance, merge_events

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    first: float
    last: float
    task: asyncio.Task[None] | None = None


def _read(
    s: Session, plan_id: str, shadow: Shadow | None
) -> tuple[int, list[LogEntry], Shadow | None]:
    """(watermark, entries after the shadow, shadow) with the shadow rebuilt when stale."""
    mark = persistence.projection_watermark(session=s, plan_id=plan_id)
    if shadow is not None and shadow.upto_id == mark:
        return mark, persistence.log_entries(session=s, plan_id=plan_id, after_id=mark), shadow
    new = persistence.log_entries(session=s, plan_id=plan_id, after_id=mark)
    if not mark:
        return mark, new, None
    # The tables reflect the log up to the mark: rebuild that document from the newest
    # checkpoint at or before it and the updates between, not from the whole log (after a
    # restart, a long-lived plan's first pass would otherwise replay its entire history).
    cp = persistence.checkpoint_at_or_before(session=s, plan_id=plan_id, upto_id=mark)
    base_upto, base = cp if cp else (0, None)
    done = persistence.log_entries(session=s, plan_id=plan_id, after_id=base_upto, upto_id=mark)
    if base is None and not done:
        return mark, new, None
    log.info(
        "plan %s: shadow rebuilt from %s and %d logged updates",
        plan_id,
        f"the checkpoint at {base_upto}" if base is not None else "the start",
        len(done),
    )
    return mark, new, Shadow.replayed(done, base=base, upto=mark)


def write_step(s: Session, plan_id: str, step: Step, *, replace: bool = False) -> bool:
    return persistence.write_projection(
        session=s,
        plan_id=plan_id,
        expect_upto=step.expect_upto,
        upto_id=step.upto_id,
        upserts=step.upserts,
        deletes=step.deletes,
        events=step.events,
        replace=replace,
        merge=merge_events,
    )


class Materialiser:
    """An async context manager entered in the lifespan (after the rooms, so it outlives them
    and flushes what their last commits left pending)."""

    def __init__(
        self,
        store: Store,
        rooms: RoomManager,
        *,
        hooks: Hooks | None = None,
        quiet: float = 0.6,
        max_wait: float = 3.0,
    ) -> None:
        self.store = store
        self.rooms = rooms
        self.hooks = hooks
        self.quiet = quiet
        self.max_wait = max_wait
        self._pending: dict[str, _Pending] = {}
        self._authors: dict[str, int] = {}
        self._shadows: dict[str, Shadow] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._catch_up: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Materialiser:
        self._catch_up = asyncio.create_task(self._catch_up_all(), name="materialise-catch-up")
        return self

    async def _catch_up_all(self) -> None:
        """Plans whose last edits were logged but not materialised (a crash, an upgrade)."""
        try:
            behind = await self.store.run(lambda s: persistence.plans_behind(session=s))
            for plan_id, author_id in behind:
                if author_id is not None:
                    self._authors.setdefault(plan_id, author_id)
                try:
                    # Loaded so that tasks still waiting for ids get them (through the room).
                    await self.rooms.open(plan_id)
                    await self.materialise(plan_id)
                except Exception:
                    # One plan's failure must not leave the others' tables behind.
                    log.exception("catching up plan %s with its update log failed", plan_id)
            if behind:
                log.info("caught up %d plan(s) with their update logs", len(behind))
        except Exception:
            log.exception("catching up plans with their update logs failed")

    async def __aexit__(self, *exc: object) -> None:
        if self._catch_up is not None:
            self._catch_up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._catch_up
        if self._running:  # runs already past their wait finish first
            await asyncio.wait(list(self._running))
        for plan_id, pending in list(self._pending.items()):
            if pending.task is not None:
                pending.task.cancel()
            self._pending.pop(plan_id, None)
            try:
                await self.materialise(plan_id)
            except Exception:
                log.exception("materialising plan %s at shutdown failed", plan_id)
        self._shadows.clear()

    # A hook subscriber (registered in server.app)

    def on_event(self, event: Event) -> None:
        if not isinstance(event, Committed) or event.doc != "plan":
            return  # the internal account plan is never projected into customer-visible tables
        for author_id, _log_id in event.entries:
            if author_id is not None:
                self._authors[event.plan_id] = author_id
        self.schedule(event.plan_id)

    def schedule(self, plan_id: str) -> None:
        now = asyncio.get_running_loop().time()
        pending = self._pending.get(plan_id)
        if pending is None:
            pending = self._pending[plan_id] = _Pending(first=now, last=now)
            pending.task = asyncio.create_task(self._later(plan_id, pending))
        pending.last = now

    async def _later(self, plan_id: str, pending: _Pending) -> None:
        loop = asyncio.get_running_loop()
        while (
            delay := min(pending.last + self.quiet, pending.first + self.max_wait) - loop.time()
        ) > 0:
            await asyncio.sleep(delay)
        if self._pending.get(plan_id) is pending:
            del self._pending[plan_id]
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            await self.materialise(plan_id)
        except Exception:
            log.exception("materialising plan %s failed", plan_id)
        finally:
            self._running.discard(task)

    # The work

    async def flush(self, plan_id: str) -> None:
        """Materialise now (e.g. before answering a write), cancelling a pending run."""
        pending = self._pending.pop(plan_id, None)
        if pending is not None and pending.task is not None:
            pending.task.cancel()
        await self.materialise(plan_id)

    async def materialise(self, plan_id: str) -> None:
        async with self._locks.setdefault(plan_id, asyncio.Lock()):
            for _round in range(3):
                needs_ids = await self._project_retrying(plan_id)
                room = self.rooms.room(plan_id)
                if not needs_ids or room is None or room.failed:
                    break
                # Logged under the author whose edit needed the ids: "created" is theirs.
                if (
                    await room.apply_server_change(crdt.assign_ids, self._authors.get(plan_id))
                    is None
                ):
                    break
            if self.rooms.room(plan_id) is None:
                self._shadows.pop(plan_id, None)
                self._authors.pop(plan_id, None)

    async def _project_retrying(self, plan_id: str) -> bool:
        for _attempt in range(2):
            done, needs_ids = await self._project(plan_id)
            if done:
                return needs_ids
        return False

    async def _project(self, plan_id: str) -> tuple[bool, bool]:
        """(whether the tables caught up, whether the shadow holds tasks or rows without ids)"""
        shadow = self._shadows.pop(plan_id, None)
        _mark, entries, shadow = await self.store.read(lambda s: _read(s, plan_id, shadow))
        if shadow is None:
            shadow = Shadow.empty()
        if not entries:
            self._shadows[plan_id] = shadow
            return True, shadow.reader.needs_ids()
        step = await anyio.to_thread.run_sync(advance, shadow, entries)
        if await self.store.run_derived(lambda s: write_step(s, plan_id, step)):
            self._shadows[plan_id] = shadow  # only a shadow the tables agree with is kept
            log.debug(
                "plan %s materialised to %d (%d events)", plan_id, step.upto_id, len(step.events)
            )
            if self.hooks is not None:
                for row in step.events:
                    self.hooks.publish(changed(plan_id, row))
            return True, shadow.reader.needs_ids()
        return False, False


async def rebuild(store: Store, plan_id: str) -> Step:
    """Every table and history event of a plan, from its update log alone, in one transaction.

    A log holding content that breaks the plan's schema (written before updates were checked)
    first gets the update deleting it appended, as the server does when it loads the room."""
    history = await store.load(plan_id)
    repair = crdt.schema_repair(crdt.doc_from_updates(history.updates, base=history.checkpoint))
    if repair is not None:
        log.warning("plan %s: appending an update deleting what breaks its schema", plan_id)
        await store.append(plan_id, [(None, repair)])
    entries = await store.run(lambda s: persistence.log_entries(session=s, plan_id=plan_id))
    step = advance(Shadow.empty(), entries)
    await store.run(lambda s: write_step(s, plan_id, step, replace=True))
    return step

"""The materialiser: keeps each plan's tables and commitment history in step with its document.

It runs in the worker process (``server/worker``), which follows the update log and tells it
(``schedule``) when a plan's log grows; it waits for a pause in the editing (``quiet`` seconds
after the last entry it heard of, but never more than ``max_wait`` after the first), then
replays the new log entries on a shadow document and writes the rows and history events in
one transaction. When the shadow holds tasks or rows without ids, it first asks for them
(``assign``: a server change through the live room, so it is logged and every editor gets it;
the serving process computes it on the live document, so concurrent edits are kept and no id
is given twice), then writes, then runs again at once to take the ids in. Each change it
writes is then published to its hook list as a typed event (``plan/events.py``).

Plans that fall due close together (within ``gather``, 0.1 s) share one pass: one read
transaction for all of them, then a short write transaction per plan.

The shadows live in the materialiser's process; one unused for ``keep_shadows`` seconds is
dropped (and rebuilt from the newest checkpoint when its plan is edited again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.orm import Session

import crdt
import persistence
from server.hooks import Event, Hooks
from server.store import Store

if TYPE_CHECKING:  # the worker process never loads the rooms, nor the web stack under them
    from server.live import RoomManager

from .events import changed
from .projection import LogEntry, Shadow, Step, advance, merge_events

log = logging.getLogger(__name__)

# Gives a plan's tasks and rows lacking ids their ids, through its live room, logged under the
# given author; returns the log id of that change, or None when nothing changed (or it failed).
Assign = Callable[[str, int | None], Awaitable[int | None]]


class NotTheHolder(Exception):
    """The worker lease is no longer this worker's (``server/worker/lease.py``): the write it
    fenced was not made, and this worker must stop."""


# Called inside the transaction that advances a plan's watermark; raises ``NotTheHolder``.
Fence = Callable[[Session], None]


class Tables(Protocol):
    """What the HTTP wing waits on before reading a plan's tables (a PATCH's answer, a
    template saved, a plan deleted): they are current with the log as of the call."""

    async def flush(self, plan_id: str) -> None: ...


def assign_through(rooms: RoomManager) -> Assign:
    """Id assignment in the serving process itself: the room's server change."""

    async def assign(plan_id: str, author_id: int | None) -> int | None:
        room = await rooms.open(plan_id)
        if room.failed:
            return None
        return await room.apply_server_change(crdt.structure.assign_ids, author_id)

    return assign


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


# What a pass read and computed for one plan: its shadow brought up to the log, the step for
# the tables (None: nothing new logged), the author of the newest entry that names one.
Prepared = tuple[Shadow, Step | None, int | None]


def _prepare(s: Session, plan_id: str, shadow: Shadow | None) -> Prepared:
    _mark, entries, found = _read(s, plan_id, shadow)
    shadow = Shadow.empty() if found is None else found
    author = next((e[2] for e in reversed(entries) if e[2] is not None), None)
    return shadow, advance(shadow, entries) if entries else None, author


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
    """An async context manager: entering it catches up plans whose log went further than
    their tables (a crash, an upgrade); leaving it materialises whatever is still pending."""

    def __init__(
        self,
        store: Store,
        assign: Assign,
        *,
        hooks: Hooks | None = None,
        quiet: float = 0.6,
        max_wait: float = 3.0,
        keep_shadows: float = 60.0,
        fence: Fence | None = None,
        gather: float = 0.1,
    ) -> None:
        self.store = store
        self.fence = fence
        self.assign = assign
        self.hooks = hooks
        self.quiet = quiet
        self.max_wait = max_wait
        self.keep_shadows = keep_shadows
        # How long a pass waits, once a plan is due, for others to fall due and share it.
        self.gather = gather
        self._pending: dict[str, _Pending] = {}
        self._authors: dict[str, int] = {}
        self._shadows: dict[str, Shadow] = {}
        self._used: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._retries: dict[str, asyncio.Task[None]] = {}
        self._retry_delay: dict[str, float] = {}
        self._catch_up: asyncio.Task[None] | None = None
        self.caught_up = asyncio.Event()
        # Plans whose wait is over, for the next pass over many (``_batches``).
        self._due: dict[str, asyncio.Future[None]] = {}
        self._batcher: asyncio.Task[None] | None = None
        self._alone: set[asyncio.Task[None]] = set()

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
                    await self.materialise(plan_id)
                except NotTheHolder:
                    log.warning("catch-up stopped: this worker no longer holds the lease")
                    return
                except Exception:
                    # One plan's failure must not leave the others' tables behind.
                    log.exception("catching up plan %s with its update log failed", plan_id)
            if behind:
                log.info("caught up %d plan(s) with their update logs", len(behind))
        except Exception:
            log.exception("catching up plans with their update logs failed")
        finally:
            self.caught_up.set()

    async def __aexit__(self, *exc: object) -> None:
        for retry in self._retries.values():
            retry.cancel()
        if self._catch_up is not None:
            self._catch_up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._catch_up
        # Runs already past their wait finish first, and the plans' own passes they wait for.
        while self._running or self._alone:
            await asyncio.wait([*self._running, *self._alone])
        for plan_id, pending in list(self._pending.items()):
            if pending.task is not None:
                pending.task.cancel()
            self._pending.pop(plan_id, None)
            try:
                await self.materialise(plan_id)
            except NotTheHolder:
                break  # another worker holds the lease: it carries on from the watermarks
            except Exception:
                log.exception("materialising plan %s at shutdown failed", plan_id)
        for retry in self._retries.values():  # a plan left behind is caught up at the next start
            retry.cancel()
        self._shadows.clear()

    # A hook subscriber, where rooms and the materialiser share a process (the tests)

    def on_event(self, event: Event) -> None:
        from server.live import Committed  # see TYPE_CHECKING above

        if not isinstance(event, Committed) or event.doc != "plan":
            return  # the internal account plan is never projected into customer-visible tables
        for author_id, _log_id in event.entries:
            if author_id is not None:
                self._authors[event.plan_id] = author_id
        self.schedule(event.plan_id)

    def schedule(self, plan_id: str) -> None:
        """The plan's log grew: materialise it after the next pause in its editing."""
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
            await self._when_due(plan_id)
        except NotTheHolder:
            log.warning("plan %s not materialised: this worker no longer holds the lease", plan_id)
        except Exception:
            log.exception("materialising plan %s failed", plan_id)
        finally:
            self._running.discard(task)

    async def _when_due(self, plan_id: str) -> None:
        """Materialise ``plan_id`` in the next pass over every plan whose wait is over: one
        read transaction for all of them, where a pass per plan cost two
        transactions and three thread hops each (``bench/run.py --scenario rooms``: 1,000
        plans edited now and then kept the worker at half a core)."""
        self._begin(plan_id)
        fut = self._due.get(plan_id)
        if fut is None:
            fut = self._due[plan_id] = asyncio.get_running_loop().create_future()
        if self._batcher is None or self._batcher.done():
            self._batcher = asyncio.create_task(self._batches(), name="materialise-due")
        await asyncio.shield(fut)

    async def _batches(self) -> None:
        # One pass at a time: plans that fall due meanwhile make the next one. Plans fall due
        # one by one (each its own quiet time after its last edit), so a pass first waits a
        # moment for others: at 1,000 plans x 2 editors, 200 a second, about 20 share it.
        while self._due:
            await asyncio.sleep(self.gather)
            due, self._due = self._due, {}
            try:
                await self._materialise_many(due)
            except asyncio.CancelledError:
                for fut in due.values():
                    fut.cancel()  # only those still pending: not handed on to their own pass
                raise
            except Exception as exc:  # noqa: BLE001 - reported by each waiter (NotTheHolder too)
                for fut in due.values():
                    if not fut.done():
                        fut.set_exception(exc)

    async def _materialise_many(self, due: dict[str, asyncio.Future[None]]) -> None:
        """``materialise`` for each plan of ``due``, resolving its future: one read transaction
        for all of them, then each plan's own course from what was read (``_on_its_own``):
        its write, one transaction per plan (SQLite has one writer, and the rooms' log appends
        wait for each write to end; ``bench/run.py --scenario rooms``, 1,000 plans x 2
        clients, two interleaved rounds each: all of a pass's plans in one transaction, about
        20, p99 29-57 ms; two per transaction 19-24 ms; one 13-14 ms; the materialiser held
        off 9-13 ms), or the ids to ask for first, or a second read when someone moved its
        watermark. A plan a flush is working on takes its course after the flush."""
        loop = asyncio.get_running_loop()
        mine: list[str] = []
        for plan_id, fut in due.items():
            lock = self._locks.setdefault(plan_id, asyncio.Lock())
            if lock.locked():
                self._on_its_own(plan_id, fut)  # a flush is at it: after it
            else:
                await lock.acquire()  # free: taken without waiting
                mine.append(plan_id)
        try:
            for plan_id in mine:
                self._used[plan_id] = loop.time()
            shadows = {p: self._shadows.pop(p, None) for p in mine}

            def prepare(s: Session) -> dict[str, Prepared | None]:
                out: dict[str, Prepared | None] = {}
                for p in mine:
                    try:
                        out[p] = _prepare(s, p, shadows[p])
                    except Exception:  # noqa: BLE001 - its own pass reads again and says why
                        out[p] = None
                return out

            prepared = await self.store.read(prepare)
        except BaseException:
            for plan_id in mine:
                self._locks[plan_id].release()
            raise
        for plan_id in mine:  # each holding the lock taken here
            self._on_its_own(plan_id, due[plan_id], prepared[plan_id], locked=True)

    def _on_its_own(
        self,
        plan_id: str,
        fut: asyncio.Future[None],
        first: Prepared | None = None,
        *,
        locked: bool = False,
    ) -> None:
        """The plan's own pass, as ``materialise`` (``locked``: the caller took its lock for
        it), resolving ``fut``; ``first``: what a shared pass read for it already."""

        async def run() -> None:
            try:
                if locked:
                    try:
                        await self._rounds(plan_id, first)
                    finally:
                        self._locks[plan_id].release()
                else:
                    await self._materialise(plan_id)
            except Exception as exc:  # noqa: BLE001 - reported by its waiter
                if not fut.done():
                    fut.set_exception(exc)
            else:
                if not fut.done():
                    fut.set_result(None)
            finally:
                fut.cancel()

        task = asyncio.create_task(run(), name=f"materialise-{plan_id}")
        self._alone.add(task)
        task.add_done_callback(self._alone.discard)

    def _begin(self, plan_id: str) -> None:
        """``plan_id`` is due now, or asked for (for tests that watch the schedule)."""

    def drop_idle(self) -> int:
        """Forget the shadows of plans not materialised for ``keep_shadows`` seconds."""
        horizon = asyncio.get_running_loop().time() - self.keep_shadows
        idle = [
            p
            for p, t in self._used.items()
            if t < horizon and p not in self._pending and not self._locked(p)
        ]
        for plan_id in idle:
            self._shadows.pop(plan_id, None)
            self._used.pop(plan_id, None)
            self._authors.pop(plan_id, None)
            self._locks.pop(plan_id, None)
            self._retry_delay.pop(plan_id, None)
        return len(idle)

    def _locked(self, plan_id: str) -> bool:
        lock = self._locks.get(plan_id)
        return lock is not None and lock.locked()

    # The work

    async def flush(self, plan_id: str) -> None:
        """Materialise now (e.g. before answering a write), cancelling a pending run."""
        pending = self._pending.pop(plan_id, None)
        if pending is not None and pending.task is not None:
            pending.task.cancel()
        await self.materialise(plan_id)

    async def materialise(self, plan_id: str) -> None:
        self._begin(plan_id)
        await self._materialise(plan_id)

    async def _materialise(self, plan_id: str) -> None:
        async with self._locks.setdefault(plan_id, asyncio.Lock()):
            self._used[plan_id] = asyncio.get_running_loop().time()
            await self._rounds(plan_id)

    async def _rounds(self, plan_id: str, first: Prepared | None = None) -> None:
        """Passes until the tables are current (caller holds the plan's lock); ``first``: what
        the first pass read already."""
        # Ids asked for in one round are logged and taken in by the next.
        for _round in range(3):
            for _attempt in range(2):
                if first is not None:
                    done, assigned = await self._take(plan_id, first)
                    first = None
                else:
                    done, assigned = await self._project(plan_id)
                if done:
                    break
            else:
                return
            if not assigned:
                return

    async def _assign(self, plan_id: str) -> bool | None:
        """Whether ids were given (and now wait in the log); None when asking failed."""
        # Logged under the author whose edit needed the ids: "created" is theirs.
        try:
            return await self.assign(plan_id, self._authors.get(plan_id)) is not None
        except (OSError, ValueError, RuntimeError) as exc:  # unreachable, refused, resetting
            log.warning("giving plan %s's new tasks and rows their ids failed: %s", plan_id, exc)
            return None

    def _retry_later(self, plan_id: str) -> None:
        """Ask for the ids again in a while (the server is starting, or was stopping)."""
        if plan_id in self._retries:
            return
        delay = min(30.0, 2 * self._retry_delay.get(plan_id, 0.5))
        self._retry_delay[plan_id] = delay

        async def later() -> None:
            await asyncio.sleep(delay)
            self._retries.pop(plan_id, None)
            self.schedule(plan_id)

        self._retries[plan_id] = asyncio.create_task(later())

    async def _project(self, plan_id: str) -> tuple[bool, bool]:
        """(whether the tables caught up, whether ids were given and now wait in the log)"""
        shadow = self._shadows.pop(plan_id, None)
        return await self._take(
            plan_id, await self.store.read(lambda s: _prepare(s, plan_id, shadow))
        )

    async def _take(self, plan_id: str, prepared: Prepared) -> tuple[bool, bool]:
        """``_project`` once the log has been read and the shadow advanced."""
        shadow, step, author = prepared
        if author is not None:
            self._authors[plan_id] = author
        if step is None:
            self._shadows[plan_id] = shadow
            return True, shadow.reader.needs_ids() and bool(await self._assign(plan_id))
        # Ids are asked for before the rows are written: whoever waits for the tables to
        # reach the log as it stood (``flush``) then finds the change giving them logged.
        assigned = False
        if shadow.reader.needs_ids():
            answer = await self._assign(plan_id)
            if answer is None:
                # Not written: the tables stay behind the log, so this pass is tried again,
                # here or by the next worker to start, and the ids are not forgotten.
                self._retry_later(plan_id)
                return True, False
            assigned = answer
        self._retry_delay.pop(plan_id, None)
        fence = self.fence

        def write(s: Session) -> bool:
            if fence is not None:
                fence(s)
            return write_step(s, plan_id, step)

        if await self.store.run_derived(write):
            self._wrote(plan_id, shadow, step)
            return True, assigned
        return False, False

    def _wrote(self, plan_id: str, shadow: Shadow, step: Step) -> None:
        self._shadows[plan_id] = shadow  # only a shadow the tables agree with is kept
        log.debug("plan %s materialised to %d (%d events)", plan_id, step.upto_id, len(step.events))
        if self.hooks is not None:
            for row in [*step.events, *step.mentions]:
                self.hooks.publish(changed(plan_id, row))


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

"""When the materialiser runs: ``quiet`` seconds after a plan's last commit, but never more than
``max_wait`` after the first commit it has not yet run for.

The schedule is all ``loop.time()`` and ``asyncio.sleep``, so the tests run it on an event loop
whose clock is virtual: when nothing is ready, the loop jumps straight to its next timer instead
of waiting for it. Every time below is therefore exact and the tests take no real time. The
materialiser is the real one, on a real SQLite file; a subclass only notes when each pass
starts before running it.
"""

from __future__ import annotations

import asyncio
import selectors
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import persistence
from server.hooks import Hooks
from server.live.events import Committed
from server.live.rooms import RoomManager
from server.plan.materialise import Materialiser, assign_through
from server.store import Store

QUIET, MAX_WAIT = 1.0, 5.0


class VirtualClockLoop(asyncio.SelectorEventLoop):  # type: ignore[misc,valid-type]
    """An event loop whose clock only moves when it would otherwise wait for a timer."""

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0
        real = self._selector.select

        def select(timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            if timeout is None or timeout <= 0:
                return real(timeout)
            ready = real(0)
            if not ready:
                self._now += timeout  # nothing to do until the next timer: be there at once
            return ready

        self._selector.select = select  # type: ignore[method-assign]

    def time(self) -> float:
        return self._now


def run(main: Callable[[], Awaitable[None]]) -> None:
    """``main`` on a virtual clock, given up after 30 s of real time.

    The watchdog is a real thread, not a timer on the loop: a pending timer would be where the
    clock jumps to whenever the loop waits for a database thread."""
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        loop = runner.get_loop()
        task = loop.create_task(main())
        watchdog = threading.Timer(30, loop.call_soon_threadsafe, (task.cancel,))
        watchdog.start()
        try:
            runner.run(asyncio.wait_for(task, None))
        finally:
            watchdog.cancel()


class Observed(Materialiser):
    """The real materialiser, noting the (virtual) time each pass starts."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.runs: list[tuple[str, float]] = []

    def _begin(self, plan_id: str) -> None:
        self.runs.append((plan_id, asyncio.get_running_loop().time()))

    async def settled(self) -> list[tuple[str, float]]:
        """The passes started once everything scheduled is due (virtual seconds: no wait)."""
        await asyncio.sleep(2 * MAX_WAIT)
        return self.runs


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path_factory.mktemp('schedule') / 'tandem.db'}"
    persistence.upgrade(url)
    s = Store.from_url(url)
    yield s
    s.dispose()


def scenario(store: Store, body: Callable[[Observed], Awaitable[None]]) -> None:
    async def main() -> None:
        hooks = Hooks()
        rooms = RoomManager(store, idle_seconds=60, checkpoint_every=100, hooks=hooks)
        async with (
            rooms,
            Observed(store, assign_through(rooms), quiet=QUIET, max_wait=MAX_WAIT) as m,
        ):
            hooks.register([m.on_event])
            await body(m)

    run(main)


async def commits_at(m: Materialiser, plan_id: str, times: list[float]) -> None:
    loop = asyncio.get_running_loop()
    for t in times:
        await asyncio.sleep(t - loop.time())
        # A room key: the plan's id, or "<id>:internal" for its vendor-only document.
        plan, _, doc = plan_id.partition(":")
        m.on_event(Committed(plan, "internal" if doc else "plan", ((None, 1),)))


def test_the_virtual_clock_is_exact() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(12.5)
        assert loop.time() == 12.5

    run(main)


def test_one_commit_runs_quiet_seconds_later(store: Store) -> None:
    async def body(m: Observed) -> None:
        await commits_at(m, "p1", [0.0])
        assert await m.settled() == [("p1", pytest.approx(QUIET))]

    scenario(store, body)


def test_each_commit_within_the_quiet_time_pushes_the_run_back(store: Store) -> None:
    async def body(m: Observed) -> None:
        await commits_at(m, "p1", [0.0, 0.5, 1.2, 2.0])  # gaps shorter than QUIET
        assert await m.settled() == [("p1", pytest.approx(2.0 + QUIET))]

    scenario(store, body)


def test_a_pause_as_long_as_the_quiet_time_runs_between_the_bursts(store: Store) -> None:
    async def body(m: Observed) -> None:
        await commits_at(m, "p1", [0.0, 0.5, 2.0, 2.3])  # the 1.5 s gap outlasts QUIET
        assert await m.settled() == [
            ("p1", pytest.approx(0.5 + QUIET)),
            ("p1", pytest.approx(2.3 + QUIET)),
        ]

    scenario(store, body)


def test_steady_typing_runs_no_later_than_max_wait_after_the_first_commit(store: Store) -> None:
    async def body(m: Observed) -> None:
        typing = [i * 0.3 for i in range(40)]  # 0 to 11.7 s, never quiet
        await commits_at(m, "p1", typing)
        runs = await m.settled()
        # The first commit after a run starts the next max-wait.
        first_after = min(t for t in typing if t > MAX_WAIT)
        assert runs == [
            ("p1", pytest.approx(MAX_WAIT)),
            ("p1", pytest.approx(first_after + MAX_WAIT)),
            ("p1", pytest.approx(typing[-1] + QUIET)),
        ]

    scenario(store, body)


def test_plans_are_scheduled_apart(store: Store) -> None:
    async def body(m: Observed) -> None:
        await commits_at(m, "p1", [0.0])
        await commits_at(m, "p2", [0.5, 0.9])
        assert sorted(await m.settled(), key=lambda r: r[1]) == [
            ("p1", pytest.approx(QUIET)),
            ("p2", pytest.approx(0.9 + QUIET)),
        ]

    scenario(store, body)


def test_the_internal_account_plan_is_never_materialised(store: Store) -> None:
    async def body(m: Observed) -> None:
        await commits_at(m, "p1:internal", [0.0, 0.2])
        await commits_at(m, "p1", [3.0])
        assert await m.settled() == [("p1", pytest.approx(3.0 + QUIET))]

    scenario(store, body)


def test_a_flush_runs_at_once_and_cancels_the_pending_run(store: Store) -> None:
    async def body(m: Observed) -> None:
        await commits_at(m, "p1", [0.0, 0.4])
        await m.flush("p1")
        assert m.runs == [("p1", pytest.approx(0.4))]
        # The scheduled run was cancelled, not run again; the next commit schedules afresh.
        await commits_at(m, "p1", [20.0])
        assert await m.settled() == [
            ("p1", pytest.approx(0.4)),
            ("p1", pytest.approx(20.0 + QUIET)),
        ]

    scenario(store, body)


def test_shutdown_runs_what_is_pending_without_waiting(store: Store) -> None:
    seen: list[Observed] = []

    async def body(m: Observed) -> None:
        seen.append(m)
        await commits_at(m, "p1", [0.0, 0.3])
        assert m.runs == []

    scenario(store, body)
    assert seen[0].runs == [("p1", pytest.approx(0.3))]


@pytest.mark.parametrize("apart", [0.0, 0.03], ids=["at-once", "30ms-apart"])
def test_plans_due_together_share_one_read_and_write_apart(store: Store, apart: float) -> None:
    """1,000 plans edited now and then: a pass per plan cost two transactions and three thread
    hops each; plans due within the pass's gathering time (0.1 s) are read in one transaction.
    They are written one transaction each: SQLite has one writer, and one write for all of
    them held the rooms' log appends back for as long (p99 twice as high, bench/)."""
    import crdt

    def edit_plans() -> list[tuple[str, int]]:
        plans = []
        with persistence.transaction(store.factory) as s:
            for i in range(3):
                plan = persistence.create_plan(
                    session=s, title=f"t{i}", customer="c", created_by=None
                )
                doc = crdt.new_doc()
                text = {"type": "text", "text": f"p{i}"}
                crdt.write_prosemirror(
                    doc, {"type": "doc", "content": [{"type": "paragraph", "content": [text]}]}
                )
                (top,) = persistence.append_updates(
                    session=s, plan_id=plan.id, entries=[(None, doc.get_update())]
                )
                plans.append((plan.id, top))
        return plans

    async def body(m: Observed) -> None:
        calls = {"read": 0, "write": 0}
        read, derived = store.read, store.run_derived

        async def counted_read(fn: Any) -> Any:
            calls["read"] += 1
            return await read(fn)

        async def counted_write(fn: Any) -> Any:
            calls["write"] += 1
            return await derived(fn)

        await m.caught_up.wait()
        plans = edit_plans()
        store.read, store.run_derived = counted_read, counted_write  # type: ignore[method-assign]
        try:
            for i, (plan_id, _) in enumerate(plans):
                await commits_at(m, plan_id, [i * apart])
            assert sorted(await m.settled()) == sorted(
                (p, pytest.approx(i * apart + QUIET)) for i, (p, _) in enumerate(plans)
            )
            while m._running:  # the database threads take real time: until the passes end
                await asyncio.wait(list(m._running))
        finally:
            del store.read, store.run_derived
        assert calls == {"read": 1, "write": len(plans)}
        with persistence.transaction(store.factory) as s:
            for plan_id, top in plans:
                assert persistence.projection_watermark(session=s, plan_id=plan_id) == top

    scenario(store, body)


def test_a_plan_a_shared_pass_hands_on_is_waited_for_to_the_end(store: Store) -> None:
    """A plan read in a shared pass that still needs ids goes on alone: asking for them, then
    writing. Its run, and leaving the materialiser, wait for that to end; the shared pass
    once cancelled what it handed on as soon as it returned, so a plan whose ids were asked
    for at shutdown could be left behind its log."""
    import crdt
    from crdt.templates import h, task, tasks

    def edit_plan() -> tuple[str, int]:
        with persistence.transaction(store.factory) as s:
            plan = persistence.create_plan(session=s, title="t", customer="c", created_by=None)
            doc = crdt.new_doc()
            crdt.write_prosemirror(
                doc, {"type": "doc", "content": [h(2, "Actions"), tasks(task("Send the deck"))]}
            )
            (top,) = persistence.append_updates(
                session=s, plan_id=plan.id, entries=[(None, doc.get_update())]
            )
            return plan.id, top

    asked = asyncio.Event()
    answer = asyncio.Event()

    async def assign(plan_id: str, author_id: int | None) -> int | None:
        asked.set()
        await answer.wait()
        return None  # nothing given: the task keeps no id, and its rows are written as read

    waiter: list[asyncio.Task[None]] = []

    async def main() -> None:
        m = Observed(store, assign, quiet=QUIET, max_wait=MAX_WAIT)
        async with m:
            await m.caught_up.wait()
            plan_id, top = edit_plan()  # after the catch-up, or it would take the plan alone
            m.on_event(Committed(plan_id, "plan", ((None, top),)))
            await asked.wait()  # the watchdog thread bounds it: a timer would jump the clock
            waiter.extend(m._running)
            assert waiter, "the plan's run ended while its own pass was still asking for ids"
            # Released only once the materialiser is being left.
            asyncio.get_running_loop().call_later(1.0, answer.set)
        assert all(t.done() and not t.cancelled() for t in waiter)
        with persistence.transaction(store.factory) as s:
            assert persistence.projection_watermark(session=s, plan_id=plan_id) == top

    run(main)

"""The one list of hook subscribers: a room's commit and each materialised change reach every
subscriber registered in the composition root's list, as typed events, and a failing
subscriber neither stops the others nor the room."""

from __future__ import annotations

from pathlib import Path

import pytest

import crdt
import persistence
from crdt.structure import set_task_checked
from crdt.templates import doc, task, tasks
from server.hooks import Event, Hooks
from server.live import Committed, RoomManager
from server.plan import Changed, Materialiser, TaskCompleted, TaskCreated, assign_through
from server.store import Store

pytestmark = pytest.mark.anyio


async def test_commits_and_materialised_changes_reach_every_subscriber(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    persistence.upgrade(url)
    store = Store.from_url(url)
    user = await store.run(
        lambda s: persistence.create_user(
            session=s, email="casey@vendor.example", name="Casey", password_hash=None
        )
    )
    plan = await store.run(
        lambda s: persistence.create_plan(session=s, title="P", customer="C", created_by=None)
    )
    author = user.id
    hooks = Hooks()
    rooms = RoomManager(store, hooks=hooks, idle_seconds=60, checkpoint_every=1000)
    materialiser = Materialiser(
        store, assign_through(rooms), hooks=hooks, quiet=0.01, max_wait=0.05
    )
    seen: list[Event] = []

    def broken(_event: Event) -> None:
        raise RuntimeError("a subscriber's bug")

    hooks.register([materialiser.on_event, broken, seen.append])
    try:
        async with materialiser, rooms:
            room = await rooms.open(plan.id)
            await room.apply_server_change(
                lambda d: crdt.write_prosemirror(d, doc(tasks(task("Kick-off call")))), author
            )
            await materialiser.flush(plan.id)  # gives the task its id, through the room
            await materialiser.flush(plan.id)
            created = [e for e in seen if isinstance(e, TaskCreated)]
            assert len(created) == 1 and created[0].plan_id == plan.id
            task_id = created[0].entity_id

            await room.apply_server_change(lambda d: set_task_checked(d, task_id, True), author)
            await materialiser.flush(plan.id)
    finally:
        store.dispose()

    commits = [e for e in seen if isinstance(e, Committed)]
    assert commits and all(c.plan_id == plan.id and c.doc == "plan" for c in commits)
    assert commits[0].entries[0][0] == author  # (author id, log id)
    completed = [e for e in seen if isinstance(e, TaskCompleted)]
    assert [(e.entity_id, e.author_id) for e in completed] == [(task_id, author)]
    assert all(isinstance(e, Changed | Committed) for e in seen)

"""Tasks as the API reads and writes them: the filters a task list takes, and changing one
task (status, checkbox, owner, due date) in the live document. Each refusal is an
``ApiError`` naming the field."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from typing import Any

from pycrdt import Doc

import crdt
import persistence
from server.live import RoomManager
from server.store import Store

from .errors import ApiError
from .fields import int_param
from .materialise import Tables
from .summary import TASK_SIDES

TASK_FILTERS = ("owner", "side", "status", "due_before", "due_after", "milestone")


def _date(value: Any, name: str) -> date:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ApiError(400, f"{name} must be a date as YYYY-MM-DD", field=name)


def task_filters(query: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in query:
        if name not in TASK_FILTERS:
            raise ApiError(
                400, f"unknown filter {name!r}; use {', '.join(TASK_FILTERS)}", field=name
            )
    if "owner" in query:
        out["owner"] = query["owner"]
    if "side" in query:
        if query["side"] not in TASK_SIDES:
            raise ApiError(
                400, "side must be vendor, customer, unknown or unassigned", field="side"
            )
        out["side"] = query["side"]
    if "status" in query:
        if query["status"] not in crdt.STATUSES:
            raise ApiError(400, f"status must be one of {', '.join(crdt.STATUSES)}", field="status")
        out["status"] = query["status"]
    for name in ("due_before", "due_after"):
        if name in query:
            out[name] = _date(query[name], name)
    if "milestone" in query:
        if query["milestone"] not in ("true", "false"):
            raise ApiError(400, "milestone must be true or false", field="milestone")
        out["milestone"] = query["milestone"] == "true"
    return out


def _user_ref(ref: str) -> int:
    return int_param(ref[5:], "owner", message="owner.id user:<id> must name a member by number")


def _owner(value: Any, people: dict[int, str]) -> crdt.Owner | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ApiError(400, "owner must be an object {id, label, side} or null", field="owner")
    ref, label, side = value.get("id"), value.get("label"), value.get("side")
    if (
        not isinstance(ref, str)
        or not ref.startswith(("user:", "contact:", "name:"))
        or len(ref) > 200
    ):
        raise ApiError(
            400, "owner.id must be user:<id>, contact:<id> or name:<text>", field="owner"
        )
    if side is not None and side not in crdt.SIDES:
        raise ApiError(400, "owner.side must be vendor, customer or null", field="owner")
    if label is None and ref.startswith("user:"):
        label = people.get(_user_ref(ref))
    if label is None and ref.startswith("name:"):
        label = ref[5:]
    if not isinstance(label, str) or not label.strip() or len(label) > 200:
        raise ApiError(400, "owner.label must be a non-empty name", field="owner")
    return crdt.Owner(ref, label.strip(), side)


async def change_task(
    store: Store,
    rooms: RoomManager,
    materialiser: Tables,
    plan_id: str,
    task_id: str,
    data: dict[str, Any],
    *,
    author_id: int | None,
) -> dict[str, Any]:
    """Change a task's status, checkbox, owner or due date (``data``, checked here) in the
    live document, as ``author_id``'s edit; the task's row once the tables have it."""
    for key in data:
        if key not in ("status", "checked", "owner", "due"):
            raise ApiError(
                400, f"{key!r} cannot be changed here; use status, checked, owner, due", field=key
            )
    if not data:
        raise ApiError(400, "nothing to change: send status, checked, owner or due")
    changes: list[Callable[[Doc], None]] = []
    if "status" in data:
        status = data["status"]
        if status not in crdt.STATUSES:
            raise ApiError(400, f"status must be one of {', '.join(crdt.STATUSES)}", field="status")
        changes.append(lambda d: crdt.set_task_status(d, task_id, status))
    if "checked" in data:
        if not isinstance(data["checked"], bool):
            raise ApiError(400, "checked must be true or false", field="checked")
        if "status" in data and (data["status"] == "done") != data["checked"]:
            raise ApiError(400, "checked contradicts status", field="checked")
        changes.append(lambda d: crdt.set_task_checked(d, task_id, data["checked"]))
    if "owner" in data:
        people: dict[int, str] = {}
        member: persistence.MemberRecord | None = None
        ref = data["owner"].get("id") if isinstance(data["owner"], dict) else None
        if isinstance(ref, str) and ref.startswith("user:"):
            # Only the plan's members can own its tasks (and only they can be looked up here).
            uid = _user_ref(ref)
            member = await store.run(
                lambda s: persistence.get_member(session=s, plan_id=plan_id, user_id=uid)
            )
            if member is None:
                raise ApiError(400, f"user {ref[5:]} is not a member of this plan", field="owner")
            people[member.user_id] = member.name
        owner = _owner(data["owner"], people)
        if owner is not None and owner.side is None and member is not None:
            # A member's side is known: the ball is in their side's court.
            owner = dataclasses.replace(owner, side=member.side)
        changes.append(lambda d: crdt.set_task_owner(d, task_id, owner))
    if "due" in data:
        due = None if data["due"] is None else _date(data["due"], "due").isoformat()
        changes.append(lambda d: crdt.set_task_due(d, task_id, due))

    def apply(doc: Doc) -> None:
        for change in changes:
            change(doc)

    room = await rooms.open(plan_id)
    try:
        await room.apply_server_change(apply, author_id)
    except crdt.TaskNotFound:
        raise ApiError(404, f"no task with id {task_id!r} in this plan") from None
    await materialiser.flush(plan_id)
    rows = await store.run(lambda s: persistence.list_tasks(session=s, plan_id=plan_id))
    row = next((r for r in rows if r["id"] == task_id), None)
    if row is None:
        raise ApiError(404, f"no task with id {task_id!r} in this plan")
    return row

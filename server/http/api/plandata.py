"""The JSON API of the plan as data: templates, tasks and the other tables, the summary, the
commitment history, writing a task back into the document, and the status override."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from typing import Any

from pycrdt import Doc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import crdt
import persistence
from crdt import structure
from server import plan as domain
from server.identity import Rule
from server.plan import TASK_SIDES, ApiError, int_param, task_json, text_field

from ..guard import identity_of, plan_of, rule
from ..responses import read_json, services

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
        if query["status"] not in structure.STATUSES:
            raise ApiError(
                400, f"status must be one of {', '.join(structure.STATUSES)}", field="status"
            )
        out["status"] = query["status"]
    for name in ("due_before", "due_after"):
        if name in query:
            out[name] = _date(query[name], name)
    if "milestone" in query:
        if query["milestone"] not in ("true", "false"):
            raise ApiError(400, "milestone must be true or false", field="milestone")
        out["milestone"] = query["milestone"] == "true"
    return out


@rule(Rule.SIGNED_IN)
async def list_templates(request: Request) -> Response:
    identity = identity_of(request)
    templates = await domain.list_templates(services(request).store, staff=identity.staff)
    return JSONResponse({"templates": templates})


# Taking access away, or reusing the content, is still allowed once archived.
@rule(Rule.PLAN_OWNER, on_archived=True)
async def save_as_template(request: Request) -> Response:
    identity = identity_of(request)
    plan = plan_of(request)
    if not identity.staff:
        # A template carries the plan's content to every staff member's new plans.
        raise ApiError(403, "only workspace staff can save templates; guests cannot")
    data = await read_json(request)
    name = text_field(data, "name")
    description = text_field(data, "description", max_len=1000, required=False)
    svc = services(request)
    doc = crdt.doc_from_updates([await svc.rooms.snapshot(plan.id)])
    content = domain.reusable_content(crdt.to_prosemirror(doc))
    record = await svc.store.run(
        lambda s: persistence.create_template(
            session=s,
            name=name,
            description=description,
            content=content,
            created_by=identity.user_id,
        )
    )
    return JSONResponse(
        {**domain.template_json(record), "copies": domain.TEMPLATE_COPIES}, status_code=201
    )


@rule(Rule.PLAN_VIEW)
async def list_tasks(request: Request) -> Response:
    plan = plan_of(request)
    filters = task_filters(request.query_params)
    rows = await services(request).store.run(
        lambda s: persistence.list_tasks(session=s, plan_id=plan.id, **filters)
    )
    return JSONResponse({"tasks": [task_json(r) for r in rows]})


@rule(Rule.PLAN_VIEW)
async def list_milestones(request: Request) -> Response:
    plan = plan_of(request)
    rows = await services(request).store.run(
        lambda s: persistence.list_tasks(session=s, plan_id=plan.id, milestone=True)
    )
    return JSONResponse({"milestones": [task_json(r) for r in rows]})


def _rows(table: str, key: str) -> Callable[[Request], Any]:
    @rule(Rule.PLAN_VIEW)
    async def handler(request: Request) -> Response:
        plan = plan_of(request)
        rows = await services(request).store.run(
            lambda s: persistence.list_rows(session=s, plan_id=plan.id, table=table)
        )
        for r in rows:
            r.pop("position", None)
        return JSONResponse({key: rows})

    return handler


@rule(Rule.PLAN_VIEW)
async def get_summary(request: Request) -> Response:
    plan = plan_of(request)
    return JSONResponse(await domain.plan_summary(services(request).store, plan.id))


def history_json(e: persistence.HistoryRecord) -> dict[str, Any]:
    return {
        "id": e.id,
        "entity": e.entity,
        "entity_id": e.entity_id,
        "kind": e.kind,
        "old": e.old,
        "new": e.new,
        "author": None if e.author_id is None else {"id": e.author_id, "name": e.author_name},
        "at": e.at.isoformat(),
        "update_id": e.update_id,
    }


@rule(Rule.PLAN_VIEW)
async def get_history(request: Request) -> Response:
    plan = plan_of(request)
    q = request.query_params
    before = None
    if "before" in q:
        before = int_param(q["before"], "before", message="before must be an event id")
    limit = int_param(q.get("limit", "200"), "limit", high=1000)
    events = await services(request).store.run(
        lambda s: persistence.list_history(
            session=s, plan_id=plan.id, before_id=before, limit=limit
        )
    )
    return JSONResponse({"events": [history_json(e) for e in events]})


def _user_ref(ref: str) -> int:
    return int_param(ref[5:], "owner", message="owner.id user:<id> must name a member by number")


def _owner(value: Any, people: dict[int, str]) -> structure.Owner | None:
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
    if side is not None and side not in structure.SIDES:
        raise ApiError(400, "owner.side must be vendor, customer or null", field="owner")
    if label is None and ref.startswith("user:"):
        label = people.get(_user_ref(ref))
    if label is None and ref.startswith("name:"):
        label = ref[5:]
    if not isinstance(label, str) or not label.strip() or len(label) > 200:
        raise ApiError(400, "owner.label must be a non-empty name", field="owner")
    return structure.Owner(ref, label.strip(), side)


@rule(Rule.PLAN_EDIT)
async def patch_task(request: Request) -> Response:
    identity = identity_of(request)
    plan = plan_of(request)
    task_id = request.path_params["task_id"]
    data = await read_json(request)
    svc = services(request)
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
        if status not in structure.STATUSES:
            raise ApiError(
                400, f"status must be one of {', '.join(structure.STATUSES)}", field="status"
            )
        changes.append(lambda d: structure.set_task_status(d, task_id, status))
    if "checked" in data:
        if not isinstance(data["checked"], bool):
            raise ApiError(400, "checked must be true or false", field="checked")
        if "status" in data and (data["status"] == "done") != data["checked"]:
            raise ApiError(400, "checked contradicts status", field="checked")
        changes.append(lambda d: structure.set_task_checked(d, task_id, data["checked"]))
    if "owner" in data:
        people: dict[int, str] = {}
        member: persistence.MemberRecord | None = None
        ref = data["owner"].get("id") if isinstance(data["owner"], dict) else None
        if isinstance(ref, str) and ref.startswith("user:"):
            # Only the plan's members can own its tasks (and only they can be looked up here).
            uid = _user_ref(ref)
            member = await svc.store.run(
                lambda s: persistence.get_member(session=s, plan_id=plan.id, user_id=uid)
            )
            if member is None:
                raise ApiError(400, f"user {ref[5:]} is not a member of this plan", field="owner")
            people[member.user_id] = member.name
        owner = _owner(data["owner"], people)
        if owner is not None and owner.side is None and member is not None:
            # A member's side is known: the ball is in their side's court.
            owner = dataclasses.replace(owner, side=member.side)
        changes.append(lambda d: structure.set_task_owner(d, task_id, owner))
    if "due" in data:
        due = None if data["due"] is None else _date(data["due"], "due").isoformat()
        changes.append(lambda d: structure.set_task_due(d, task_id, due))

    def apply(doc: Doc) -> None:
        for change in changes:
            change(doc)

    room = await svc.rooms.open(plan.id)
    try:
        await room.apply_server_change(apply, identity.user_id)
    except structure.TaskNotFound:
        raise ApiError(404, f"no task with id {task_id!r} in this plan") from None
    await svc.materialiser.flush(plan.id)
    rows = await svc.store.run(lambda s: persistence.list_tasks(session=s, plan_id=plan.id))
    row = next((r for r in rows if r["id"] == task_id), None)
    if row is None:
        raise ApiError(404, f"no task with id {task_id!r} in this plan")
    return JSONResponse(task_json(row))


@rule(Rule.PLAN_OWNER)
async def put_status(request: Request) -> Response:
    identity = identity_of(request)
    plan = plan_of(request)
    data = await read_json(request)
    await domain.override_status(
        services(request).store, plan.id, data.get("rag"), data.get("reason"), identity.user_id
    )
    return JSONResponse((await domain.plan_summary(services(request).store, plan.id))["status"])


@rule(Rule.PLAN_OWNER)
async def delete_status(request: Request) -> Response:
    plan = plan_of(request)
    await domain.clear_status(services(request).store, plan.id)
    return JSONResponse((await domain.plan_summary(services(request).store, plan.id))["status"])


list_key_results = _rows("key_results", "key_results")
list_risks = _rows("risks", "risks")
list_contacts = _rows("contacts", "contacts")

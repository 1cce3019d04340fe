"""The JSON API of the plan as data: templates, tasks and the other tables, the summary, the
commitment history, writing a task back into the document, and the status override."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import persistence
from server import plan as domain
from server.identity import Rule
from server.plan import ApiError, task_json, text_field

from ..guard import acting, identity_of, plan_of, rule
from ..responses import read_json, services


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
    record = await domain.save_template(
        svc.store, svc.rooms, acting(request), plan, name, description
    )
    return JSONResponse(
        {**domain.template_json(record), "copies": domain.TEMPLATE_COPIES}, status_code=201
    )


@rule(Rule.PLAN_VIEW)
async def list_tasks(request: Request) -> Response:
    plan = plan_of(request)
    filters = domain.task_filters(request.query_params)
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


@rule(Rule.PLAN_EDIT)
async def patch_task(request: Request) -> Response:
    svc = services(request)
    row = await domain.change_task(
        svc.store,
        svc.rooms,
        svc.materialiser,
        plan_of(request).id,
        request.path_params["task_id"],
        await read_json(request),
        author_id=identity_of(request).user_id,
    )
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

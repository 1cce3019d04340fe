"""The JSON API."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import crdt
import persistence

from . import catalog
from .channel import Identity
from .web import ApiError, api_caller, colour_for, read_json, services, text_field


def _person(identity: Identity) -> dict[str, Any]:
    return {"name": identity.name, "color": colour_for(identity)}


def plan_json(request: Request, plan: persistence.PlanRecord) -> dict[str, Any]:
    present = services(request).rooms.present(plan.id)
    return {
        "id": plan.id,
        "title": plan.title,
        "customer": plan.customer,
        "url": str(request.url_for("plan_page", plan_id=plan.id)),
        "created_at": plan.created_at.isoformat(),
        "updated_at": plan.updated_at.isoformat(),
        "present": [_person(i) for i in present],
    }


async def create_plan(request: Request) -> Response:
    identity = await api_caller(request)
    data = await read_json(request)
    title = text_field(data, "title")
    customer = text_field(data, "customer")
    svc = services(request)
    content = await catalog.template_content(svc.store, data.get("template"))
    plan = await catalog.create_plan(
        svc.store, title=title, customer=customer, user_id=identity.user_id, content=content
    )
    if content is not None:
        await svc.materialiser.flush(plan.id)
    return JSONResponse(plan_json(request, plan), status_code=201)


async def list_plans(request: Request) -> Response:
    await api_caller(request)
    plans = await services(request).store.run(lambda s: persistence.list_plans(session=s))
    return JSONResponse({"plans": [plan_json(request, p) for p in plans]})


async def plan_or_404(request: Request) -> persistence.PlanRecord:
    plan_id = request.path_params["plan_id"]
    plan = await services(request).store.run(
        lambda s: persistence.get_plan(session=s, plan_id=plan_id)
    )
    if plan is None:
        raise ApiError(404, f"no plan with id {plan_id!r}")
    return plan


async def get_plan(request: Request) -> Response:
    await api_caller(request)
    return JSONResponse(plan_json(request, await plan_or_404(request)))


async def get_document(request: Request) -> Response:
    await api_caller(request)
    plan = await plan_or_404(request)
    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "markdown"):
        raise ApiError(400, "format must be 'json' or 'markdown'", field="format")
    state = await services(request).rooms.snapshot(plan.id)
    doc = crdt.doc_from_updates([state])
    if fmt == "markdown":
        return PlainTextResponse(crdt.to_markdown(doc), media_type="text/markdown; charset=utf-8")
    return JSONResponse(crdt.to_prosemirror(doc))


routes = [
    Route("/api/plans", create_plan, methods=["POST"]),
    Route("/api/plans", list_plans, methods=["GET"]),
    Route("/api/plans/{plan_id}", get_plan, methods=["GET"]),
    Route("/api/plans/{plan_id}/document", get_document, methods=["GET"]),
]

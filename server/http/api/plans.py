"""The JSON API."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

import crdt
import persistence
from server import plan as domain
from server.identity import OWNER, Rule
from server.live import RoomKey, room_key
from server.plan import ApiError, text_field

from ..guard import identity_of, plan_of, rule
from ..history import document_at
from ..presenters import plan_json
from ..responses import read_json, services


@rule(Rule.STAFF)  # guests see the plans they are invited to, and create none
async def create_plan(request: Request) -> Response:
    identity = identity_of(request)
    data = await read_json(request)
    title = text_field(data, "title")
    customer = text_field(data, "customer")
    svc = services(request)
    content = await domain.template_content(svc.store, data.get("template"))
    plan = await domain.new_plan(
        svc.store,
        svc.materialiser,
        title=title,
        customer=customer,
        user_id=identity.user_id,
        content=content,
    )
    return JSONResponse(plan_json(request, plan, OWNER), status_code=201)


@rule(Rule.SIGNED_IN)
async def list_plans(request: Request) -> Response:
    """The caller's plans with their figures; query parameters: server/plan/listing.py."""
    query = domain.parse_query(request.query_params)
    rows = await domain.plan_rows(services(request).store, identity_of(request), query)
    return JSONResponse({"plans": [plan_list_item(request, row) for row in rows]})


def plan_list_item(request: Request, row: dict[str, Any]) -> dict[str, Any]:
    return {
        **plan_json(request, row["plan"], row["role"]),
        "status": row["status"],
        "progress": row["progress"],
        "overdue": row["overdue"],
        "next_milestone": row["next_milestone"],
    }


@rule(Rule.PLAN_VIEW)
async def get_plan(request: Request) -> Response:
    return JSONResponse(plan_json(request, plan_of(request), identity_of(request).role))


async def _document(request: Request, key: RoomKey) -> Response:
    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "markdown"):
        raise ApiError(400, "format must be 'json' or 'markdown'", field="format")
    then = await document_at(request, key, fmt)
    if then is not None:
        return then
    state = await services(request).rooms.snapshot(key)
    doc = crdt.doc_from_updates([state])
    if fmt == "markdown":
        return PlainTextResponse(crdt.to_markdown(doc), media_type="text/markdown; charset=utf-8")
    return JSONResponse(crdt.to_prosemirror(doc))


@rule(Rule.PLAN_VIEW)
async def get_document(request: Request) -> Response:
    return await _document(request, plan_of(request).id)


@rule(Rule.PLAN_VENDOR)
async def get_internal_document(request: Request) -> Response:
    return await _document(request, room_key(plan_of(request).id, "internal"))


@rule(Rule.PLAN_VIEW)
async def list_people(request: Request) -> Response:
    """The plan's members, offered as task owners (@mentions), with their side.

    Plan-scoped, and without emails: everyone in the plan may see who is in it, but nobody
    learns the rest of the workspace or anyone's address from it.
    """
    plan_id = plan_of(request).id
    members = await services(request).store.run(
        lambda s: persistence.list_members(session=s, plan_id=plan_id)
    )
    people = [{"id": f"user:{m.user_id}", "label": m.name, "side": m.side} for m in members]
    return JSONResponse({"people": people})

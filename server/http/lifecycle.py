"""A plan's life cycle: rename it, change its customer, archive and restore it, delete it.

Archiving makes the plan read-only for everyone at once (``guard.archived_view`` for new
requests and sockets; open sockets are switched here). Deleting closes its sockets, removes
every row of it, and leaves a workspace-level record in the access trail (``plan_id`` NULL).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

import crdt
import persistence
from server import plan as domain
from server.identity import VIEWER, Identity, Rule, actor, plan_nav
from server.live import Close, room_keys
from server.plan import ApiError, text_field

from .guard import client_ip, identity_of, plan_of, rule
from .presenters import plan_json
from .responses import read_json, render, services

log = logging.getLogger(__name__)

FIELDS = ("title", "customer", "archived")


class Refused(Exception):
    """A change the caller may not make as asked: (status, message, field)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def _read_only_now(conn: HTTPConnection, plan_id: str) -> None:
    """Every open socket of the plan becomes a viewer's; browsers that could edit are told
    (4405: their page reloads into the archived view), stock clients reconnect read-only."""
    for c in services(conn).rooms.plan_connections(plan_id):
        could_edit = not c.identity.read_only
        c.identity = dataclasses.replace(c.identity, read_only=True)
        if could_edit:
            c.close(Close.READ_ONLY, "plan archived")


def _writable_again(conn: HTTPConnection, plan_id: str) -> None:
    for c in services(conn).rooms.plan_connections(plan_id):
        c.identity = dataclasses.replace(c.identity, read_only=c.identity.role == VIEWER)


async def change_plan(
    conn: HTTPConnection, identity: Identity, plan: persistence.PlanRecord, changes: dict[str, Any]
) -> persistence.PlanRecord:
    """Apply validated ``changes`` (title, customer, archived) and record them."""
    archived = changes.get("archived")
    if plan.archived and archived is not False and ("title" in changes or "customer" in changes):
        raise Refused(409, "this plan is archived: restore it (archived: false) to rename it")
    who, ip = actor(identity), client_ip(conn)

    def write(s: Session) -> persistence.PlanRecord | None:
        updated = persistence.update_plan(
            session=s,
            plan_id=plan.id,
            title=changes.get("title"),
            customer=changes.get("customer"),
            archived=archived,
        )
        if updated is None:
            return None  # gone meanwhile: nothing changed, nothing to record
        for key, kind in (("title", "plan.renamed"), ("customer", "plan.customer_changed")):
            if key in changes and changes[key] != getattr(plan, key):
                persistence.record_access(
                    session=s,
                    plan_id=plan.id,
                    kind=kind,
                    actor=who,
                    subject=changes[key],
                    detail=f"was {getattr(plan, key)}",
                    ip=ip,
                )
        if archived is not None and archived != plan.archived:
            persistence.record_access(
                session=s,
                plan_id=plan.id,
                kind="plan.archived" if archived else "plan.restored",
                actor=who,
                subject=updated.title,
                ip=ip,
            )
        return updated

    updated = await services(conn).store.run(write)
    if updated is None:
        raise Refused(404, f"no plan with id {plan.id!r}")
    if updated.archived and not plan.archived:
        _read_only_now(conn, plan.id)
        log.info("plan %s archived by user %s", plan.id, identity.user_id)
    elif plan.archived and not updated.archived:
        _writable_again(conn, plan.id)
        log.info("plan %s restored by user %s", plan.id, identity.user_id)
    return updated


async def delete_plan(
    conn: HTTPConnection, identity: Identity, plan: persistence.PlanRecord, confirm: Any
) -> None:
    if not isinstance(confirm, str) or confirm.strip() != plan.title:
        raise Refused(400, "to delete this plan, type its title exactly as confirmation", "confirm")
    svc = services(conn)
    keys = room_keys(plan.id)
    # Sockets go first, then what the rooms and the materialiser still hold is written, so
    # that nothing lands after the rows are gone.
    for key in keys:
        await svc.rooms.discard(key, Close.PLAN_NOT_FOUND, "plan deleted")
    await svc.materialiser.flush(plan.id)
    who, ip = actor(identity), client_ip(conn)

    def remove(s: Session) -> bool:
        if not persistence.delete_plan(session=s, plan_id=plan.id):
            return False
        persistence.record_access(
            session=s,
            plan_id=None,  # survives the plan: a workspace-level record
            kind="plan.deleted",
            actor=who,
            subject=f"{plan.title} ({plan.customer})",
            detail=f"plan {plan.id}",
            ip=ip,
        )
        return True

    if not await svc.store.run(remove):
        raise Refused(404, f"no plan with id {plan.id!r}")
    for key in keys:  # anyone who reconnected in between
        await svc.rooms.discard(key, Close.PLAN_NOT_FOUND, "plan deleted")
    log.info("plan %s deleted by user %s", plan.id, identity.user_id)


def _changes(data: dict[str, Any]) -> dict[str, Any]:
    for key in data:
        if key not in FIELDS:
            raise ApiError(
                400, f"{key!r} cannot be changed here; use {', '.join(FIELDS)}", field=key
            )
    if not data:
        raise ApiError(400, f"nothing to change: send any of {', '.join(FIELDS)}")
    out: dict[str, Any] = {}
    for key in ("title", "customer"):
        if key in data:
            out[key] = text_field(data, key)
    if "archived" in data:
        if not isinstance(data["archived"], bool):
            raise ApiError(400, "archived must be true or false", field="archived")
        out["archived"] = data["archived"]
    return out


@rule(Rule.PLAN_OWNER, on_archived=True)
async def patch_plan(request: Request) -> Response:
    changes = _changes(await read_json(request))
    try:
        plan = await change_plan(request, identity_of(request), plan_of(request), changes)
    except Refused as exc:
        raise ApiError(exc.status, exc.message, field=exc.field) from None
    return JSONResponse(plan_json(request, plan, identity_of(request).role))


@rule(Rule.PLAN_OWNER, on_archived=True)
async def delete_plan_api(request: Request) -> Response:
    empty = request.headers.get("content-length", "0") == "0"
    data = {} if empty and "transfer-encoding" not in request.headers else await read_json(request)
    confirm = data.get("confirm", request.query_params.get("confirm"))
    try:
        await delete_plan(request, identity_of(request), plan_of(request), confirm)
    except Refused as exc:
        raise ApiError(exc.status, exc.message, field=exc.field) from None
    return Response(status_code=204)


async def save_template(
    conn: HTTPConnection, identity: Identity, plan: persistence.PlanRecord, name: str
) -> None:
    svc = services(conn)
    doc = crdt.doc_from_updates([await svc.rooms.snapshot(plan.id)])
    content = domain.reusable_content(crdt.to_prosemirror(doc))
    await svc.store.run(
        lambda s: persistence.create_template(
            session=s, name=name, description="", content=content, created_by=identity.user_id
        )
    )


# The page: /plans/{id}/settings, a form per action, working without JavaScript.


async def _settings(
    request: Request, *, error: str | None = None, field: str | None = None, status: int = 200
) -> Response:
    identity = identity_of(request)
    plan = plan_of(request)
    context = {
        "user": identity,
        "plan": plan,
        "error": error,
        "field": field,
        "active": "settings",
        **plan_nav(identity),
    }
    return render(request, "plan_settings.html", context, status)


@rule(Rule.PLAN_OWNER)
async def settings_page(request: Request) -> Response:
    return await _settings(request)


@rule(Rule.PLAN_OWNER, on_archived=True)
async def settings_action(request: Request) -> Response:
    identity = identity_of(request)
    plan = plan_of(request)
    form = await request.form()
    action = str(form.get("action", ""))
    back = f"/plans/{plan.id}/settings"
    try:
        if action == "rename":
            changes: dict[str, Any] = {}
            for key, label in (("title", "a title"), ("customer", "the customer's name")):
                value = str(form.get(key, "")).strip()
                if not value or len(value) > 200:
                    raise Refused(400, f"Enter {label}, up to 200 characters.", key)
                changes[key] = value
            await change_plan(request, identity, plan, changes)
        elif action in ("archive", "restore"):
            await change_plan(request, identity, plan, {"archived": action == "archive"})
            back = "/" if action == "archive" else f"/plans/{plan.id}"
        elif action == "template":
            name = str(form.get("name", "")).strip()
            if not name or len(name) > 200:
                raise Refused(400, "Name the template, in up to 200 characters.", "name")
            await save_template(request, identity, plan, name)
            back = "/"
        elif action == "delete":
            await delete_plan(request, identity, plan, form.get("confirm"))
            return RedirectResponse("/", status_code=303)
        else:
            raise Refused(400, "Unknown action.")
    except Refused as exc:
        return await _settings(request, error=exc.message, field=exc.field, status=exc.status)
    return RedirectResponse(back, status_code=303)

"""A plan's life cycle: rename it, change its customer, archive and restore it, save it as a
template, delete it. Written once for the settings page and the JSON API; each refusal is an
``ApiError``.

Archiving makes the plan read-only for everyone at once (the HTTP guard's archived view for
new requests and sockets; open sockets are switched here). Deleting closes its sockets, removes
every row of it, and leaves a workspace-level record in the access log (``plan_id`` NULL).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from sqlalchemy.orm import Session

import crdt
import persistence
from server.identity import VIEWER, Acting
from server.live import Close, RoomManager, room_keys
from server.store import Store

from .catalog import reusable_content
from .errors import ApiError
from .fields import text_field
from .materialise import Tables

log = logging.getLogger(__name__)

FIELDS = ("title", "customer", "archived")


def plan_changes(data: dict[str, Any]) -> dict[str, Any]:
    """The changes a JSON body asks for, checked: any of title, customer, archived."""
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


def _read_only_now(rooms: RoomManager, plan_id: str) -> None:
    """Every open socket of the plan becomes a viewer's; browsers that could edit are told
    (4405: their page reloads into the archived view), stock clients reconnect read-only."""
    for c in rooms.plan_connections(plan_id):
        could_edit = not c.identity.read_only
        c.identity = dataclasses.replace(c.identity, read_only=True)
        if could_edit:
            c.close(Close.READ_ONLY, "plan archived")


def _writable_again(rooms: RoomManager, plan_id: str) -> None:
    for c in rooms.plan_connections(plan_id):
        c.identity = dataclasses.replace(c.identity, read_only=c.identity.role == VIEWER)


async def change_plan(
    store: Store,
    rooms: RoomManager,
    by: Acting,
    plan: persistence.PlanRecord,
    changes: dict[str, Any],
) -> persistence.PlanRecord:
    """Apply checked ``changes`` (title, customer, archived) and record them."""
    archived = changes.get("archived")
    if plan.archived and archived is not False and ("title" in changes or "customer" in changes):
        raise ApiError(409, "this plan is archived: restore it (archived: false) to rename it")
    who, ip = by.actor, by.ip

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

    updated = await store.run(write)
    if updated is None:
        raise ApiError(404, f"no plan with id {plan.id!r}")
    if updated.archived and not plan.archived:
        _read_only_now(rooms, plan.id)
        log.info("plan %s archived by user %s", plan.id, by.identity.user_id)
    elif plan.archived and not updated.archived:
        _writable_again(rooms, plan.id)
        log.info("plan %s restored by user %s", plan.id, by.identity.user_id)
    return updated


async def delete_plan(
    store: Store,
    rooms: RoomManager,
    materialiser: Tables,
    by: Acting,
    plan: persistence.PlanRecord,
    confirm: Any,
) -> None:
    """Delete the plan, ``confirm`` being its title typed again."""
    if not isinstance(confirm, str) or confirm.strip() != plan.title:
        raise ApiError(
            400, "to delete this plan, type its title exactly as confirmation", field="confirm"
        )
    keys = room_keys(plan.id)
    # Sockets go first, then what the rooms and the materialiser still hold is written, so
    # that nothing lands after the rows are gone.
    for key in keys:
        await rooms.discard(key, Close.PLAN_NOT_FOUND, "plan deleted")
    await materialiser.flush(plan.id)
    who, ip = by.actor, by.ip

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

    if not await store.run(remove):
        raise ApiError(404, f"no plan with id {plan.id!r}")
    for key in keys:  # anyone who reconnected in between
        await rooms.discard(key, Close.PLAN_NOT_FOUND, "plan deleted")
    log.info("plan %s deleted by user %s", plan.id, by.identity.user_id)


async def save_template(
    store: Store,
    rooms: RoomManager,
    by: Acting,
    plan: persistence.PlanRecord,
    name: str,
    description: str = "",
) -> persistence.TemplateRecord:
    """Save the plan's content (without its people and dates) as a workspace template."""
    doc = crdt.doc_from_updates([await rooms.snapshot(plan.id)])
    content = reusable_content(crdt.to_prosemirror(doc))
    return await store.run(
        lambda s: persistence.create_template(
            session=s,
            name=name,
            description=description,
            content=content,
            created_by=by.identity.user_id,
        )
    )

"""The plan as data: tasks, key results, risks, contacts and the audit trail, projected from the
update log. Every write is one call inside the caller's transaction, guarded by the watermark
(``plan_projections.upto_id``), so a projection is never half-written or written twice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .models import (
    AuditEvent,
    PlanContact,
    PlanKeyResult,
    PlanProjection,
    PlanRisk,
    PlanTask,
    User,
)
from .records import now, utc

#: Entity tables by the name callers use.
TABLES: dict[str, Any] = {
    "tasks": PlanTask,
    "key_results": PlanKeyResult,
    "risks": PlanRisk,
    "contacts": PlanContact,
}


@dataclass(frozen=True)
class AuditRecord:
    id: int
    entity: str
    entity_id: str
    kind: str
    old: Any
    new: Any
    author_id: int | None
    author_name: str | None
    at: datetime
    update_id: int


def projection_watermark(*, session: Session, plan_id: str) -> int:
    """The last log id the projection has taken in (0: none)."""
    return (
        session.scalar(select(PlanProjection.upto_id).where(PlanProjection.plan_id == plan_id)) or 0
    )


def write_projection(
    *,
    session: Session,
    plan_id: str,
    expect_upto: int,
    upto_id: int,
    upserts: Mapping[str, Sequence[Mapping[str, Any]]],
    deletes: Mapping[str, Sequence[str]],
    events: Sequence[Mapping[str, Any]],
    replace: bool = False,
) -> bool:
    """Apply one step of the projection, if the watermark is still ``expect_upto``.

    ``upserts`` are full rows (``id`` included) per table name; ``deletes`` ids per table name;
    ``events`` audit rows (entity, entity_id, kind, old, new, author_id, at, update_id).
    With ``replace``, every row and event of the plan goes first (a rebuild). Returns False,
    writing nothing, when someone else moved the watermark meanwhile.
    """
    mark = session.execute(
        select(PlanProjection).where(PlanProjection.plan_id == plan_id).with_for_update()
    ).scalar_one_or_none()
    if not replace and (mark.upto_id if mark else 0) != expect_upto:
        return False
    if replace:
        for model in (*TABLES.values(), AuditEvent):
            session.execute(delete(model).where(model.plan_id == plan_id))
    for name, model in TABLES.items():
        gone = {*deletes.get(name, ()), *(r["id"] for r in upserts.get(name, ()))}
        if gone and not replace:
            session.execute(delete(model).where(model.plan_id == plan_id, model.id.in_(gone)))
        rows = upserts.get(name, ())
        if rows:
            session.add_all(model(plan_id=plan_id, **row) for row in rows)
    if events:
        session.add_all(AuditEvent(plan_id=plan_id, **e) for e in events)
    if mark is None:
        session.add(PlanProjection(plan_id=plan_id, upto_id=upto_id, updated_at=now()))
    else:
        mark.upto_id = upto_id
        mark.updated_at = now()
    session.flush()
    return True


def _plain(row: Any) -> dict[str, Any]:
    out = {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key != "plan_id"}
    return out


def list_tasks(
    *,
    session: Session,
    plan_id: str,
    owner: str | None = None,
    side: str | None = None,
    status: str | None = None,
    due_before: date | None = None,
    due_after: date | None = None,
    milestone: bool | None = None,
) -> list[dict[str, Any]]:
    """Tasks in document order. ``owner`` matches the mention id or, case-insensitively, its
    label; ``side`` is vendor, customer or unassigned (no owner side); dates are inclusive."""
    q = select(PlanTask).where(PlanTask.plan_id == plan_id)
    if owner is not None:
        q = q.where(
            (PlanTask.owner_ref == owner) | (func.lower(PlanTask.owner_label) == owner.lower())
        )
    if side == "unassigned":
        q = q.where(PlanTask.owner_side.is_(None))
    elif side is not None:
        q = q.where(PlanTask.owner_side == side)
    if status is not None:
        q = q.where(PlanTask.status == status)
    if due_before is not None:
        q = q.where(PlanTask.due <= due_before)
    if due_after is not None:
        q = q.where(PlanTask.due >= due_after)
    if milestone is not None:
        q = q.where(PlanTask.milestone.is_(milestone))
    return [_plain(r) for r in session.scalars(q.order_by(PlanTask.position)).all()]


def list_rows(*, session: Session, plan_id: str, table: str) -> list[dict[str, Any]]:
    """Key results, risks or contacts (``table``) in document order."""
    model = TABLES[table]
    q = select(model).where(model.plan_id == plan_id).order_by(model.position)
    return [_plain(r) for r in session.scalars(q).all()]


def list_audit(
    *, session: Session, plan_id: str, before_id: int | None = None, limit: int = 200
) -> list[AuditRecord]:
    """Audit events, newest first."""
    q = (
        select(AuditEvent, User.name)
        .outerjoin(User, User.id == AuditEvent.author_id)
        .where(AuditEvent.plan_id == plan_id)
    )
    if before_id is not None:
        q = q.where(AuditEvent.id < before_id)
    rows = session.execute(q.order_by(AuditEvent.id.desc()).limit(limit)).all()
    return [
        AuditRecord(
            id=e.id,
            entity=e.entity,
            entity_id=e.entity_id,
            kind=e.kind,
            old=e.old,
            new=e.new,
            author_id=e.author_id,
            author_name=name,
            at=utc(e.at),  # type: ignore[arg-type]
            update_id=e.update_id,
        )
        for e, name in rows
    ]

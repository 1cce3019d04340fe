"""Plans: the rows behind each document."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .db import rowcount
from .models import Base, Plan, PlanMember, PlanStatus, User
from .records import PlanRecord, now, utc


def _record(row: Plan) -> PlanRecord:
    return PlanRecord(
        id=row.id,
        title=row.title,
        customer=row.customer,
        created_by=row.created_by,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        archived_at=utc(row.archived_at),
    )


def new_plan_id() -> str:
    """Twelve URL-safe characters, never starting with "-": ``tandem plans rebuild -x...`` read
    such an id as an option (one plan in 64 had one)."""
    while True:
        value = secrets.token_urlsafe(9)
        if not value.startswith("-"):
            return value


def create_plan(
    *, session: Session, title: str, customer: str, created_by: int | None
) -> PlanRecord:
    at = now()
    row = Plan(
        id=new_plan_id(),
        title=title,
        customer=customer,
        created_by=created_by,
        created_at=at,
        updated_at=at,
    )
    session.add(row)
    session.flush()
    if created_by is not None:  # the creator owns the plan, on the vendor side
        session.add(
            PlanMember(plan_id=row.id, user_id=created_by, role="owner", side="vendor", added_at=at)
        )
        session.flush()
    return _record(row)


def get_plan(*, session: Session, plan_id: str) -> PlanRecord | None:
    row = session.get(Plan, plan_id)
    return _record(row) if row else None


def list_plans(*, session: Session) -> list[PlanRecord]:
    rows = session.scalars(select(Plan).order_by(Plan.updated_at.desc(), Plan.id)).all()
    return [_record(r) for r in rows]


@dataclass(frozen=True)
class StatusOverride:
    rag: str
    reason: str
    set_by: int | None
    set_by_name: str | None
    set_at: datetime


def get_status_override(*, session: Session, plan_id: str) -> StatusOverride | None:
    row = session.execute(
        select(PlanStatus, User.name)
        .outerjoin(User, User.id == PlanStatus.set_by)
        .where(PlanStatus.plan_id == plan_id)
    ).first()
    if row is None:
        return None
    status, name = row
    return StatusOverride(status.rag, status.reason, status.set_by, name, utc(status.set_at))


def set_status_override(
    *, session: Session, plan_id: str, rag: str, reason: str, set_by: int | None
) -> None:
    row = session.get(PlanStatus, plan_id)
    if row is None:
        row = PlanStatus(plan_id=plan_id)
        session.add(row)
    row.rag, row.reason, row.set_by, row.set_at = rag, reason, set_by, now()
    session.flush()


def clear_status_override(*, session: Session, plan_id: str) -> bool:
    return rowcount(session.execute(delete(PlanStatus).where(PlanStatus.plan_id == plan_id))) > 0


# A plan's life cycle


def update_plan(
    *,
    session: Session,
    plan_id: str,
    title: str | None = None,
    customer: str | None = None,
    archived: bool | None = None,
) -> PlanRecord | None:
    row = session.get(Plan, plan_id)
    if row is None:
        return None
    if title is not None:
        row.title = title
    if customer is not None:
        row.customer = customer
    if archived is not None and archived != (row.archived_at is not None):
        row.archived_at = now() if archived else None
    session.flush()
    return _record(row)


def delete_plan(*, session: Session, plan_id: str) -> bool:
    """Every row of the plan, in every table, then the plan itself; False if there was none.

    Driven by the schema rather than a list, so a table added later with a ``plan_id`` (or
    hanging off one that has it, as email codes hang off share links) is not forgotten; and
    explicit, because SQLite enforces no ``ON DELETE CASCADE`` unless asked to."""
    tables = Base.metadata.sorted_tables
    scoped = {t for t in tables if "plan_id" in t.c and t.name != Plan.__tablename__}
    for table in reversed(tables):
        if table in scoped or table.name == Plan.__tablename__:
            continue
        for fk in table.foreign_keys:
            parent = fk.column.table
            if parent in scoped:
                owned = select(fk.column).where(parent.c.plan_id == plan_id)
                session.execute(table.delete().where(fk.parent.in_(owned)))
    for table in reversed(tables):
        if table in scoped:
            session.execute(table.delete().where(table.c.plan_id == plan_id))
    return rowcount(session.execute(delete(Plan).where(Plan.id == plan_id))) > 0


def find_plans(
    *,
    session: Session,
    member_of: int | None,
    owned_by: int | None = None,
    archived: bool | None = False,
    text: str | None = None,
    customer: str | None = None,
) -> list[PlanRecord]:
    """Plans newest-edited first: those ``member_of`` is a member of (None: every plan), of
    which ``owned_by`` owns (None: any), archived or not (None: both), whose title or customer
    contains ``text`` and whose customer is ``customer`` (both case-insensitive)."""
    q = select(Plan)
    if member_of is not None:
        q = q.where(Plan.id.in_(select(PlanMember.plan_id).where(PlanMember.user_id == member_of)))
    if owned_by is not None:
        q = q.where(
            Plan.id.in_(
                select(PlanMember.plan_id).where(
                    PlanMember.user_id == owned_by, PlanMember.role == "owner"
                )
            )
        )
    if archived is not None:
        q = q.where(Plan.archived_at.is_not(None) if archived else Plan.archived_at.is_(None))
    if text:
        needle = text.lower()
        q = q.where(
            func.lower(Plan.title).contains(needle, autoescape=True)
            | func.lower(Plan.customer).contains(needle, autoescape=True)
        )
    if customer:
        q = q.where(func.lower(Plan.customer) == customer.lower())
    rows = session.scalars(q.order_by(Plan.updated_at.desc(), Plan.id)).all()
    return [_record(r) for r in rows]


def status_overrides(*, session: Session, plan_ids: list[str]) -> dict[str, StatusOverride]:
    """The owners' status overrides of many plans, in one query."""
    if not plan_ids:
        return {}
    rows = session.execute(
        select(PlanStatus, User.name)
        .outerjoin(User, User.id == PlanStatus.set_by)
        .where(PlanStatus.plan_id.in_(plan_ids))
    ).all()
    return {
        st.plan_id: StatusOverride(st.rag, st.reason, st.set_by, name, utc(st.set_at))
        for st, name in rows
    }

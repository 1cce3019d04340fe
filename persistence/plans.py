"""Plans: the rows behind each document."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .models import Plan, PlanMember, PlanStatus, User
from .records import PlanRecord, now, utc


def _record(row: Plan) -> PlanRecord:
    return PlanRecord(
        id=row.id,
        title=row.title,
        customer=row.customer,
        created_by=row.created_by,
        created_at=utc(row.created_at),  # type: ignore[arg-type]
        updated_at=utc(row.updated_at),  # type: ignore[arg-type]
    )


def create_plan(
    *, session: Session, title: str, customer: str, created_by: int | None
) -> PlanRecord:
    at = now()
    row = Plan(
        id=secrets.token_urlsafe(9),
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
    return StatusOverride(status.rag, status.reason, status.set_by, name, utc(status.set_at))  # type: ignore[arg-type]


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
    return session.execute(delete(PlanStatus).where(PlanStatus.plan_id == plan_id)).rowcount > 0

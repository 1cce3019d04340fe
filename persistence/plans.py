"""Plans: the rows behind each document."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Plan, PlanMember
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

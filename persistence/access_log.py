"""The access log (table ``access_events``): who gave, used or took away access to a plan or
the workspace (invitations, members, links, sign-ins, accounts), from where. Not the
commitment history of a plan's tasks (``commitment_history``, table ``audit_events``)."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .models import AccessEvent
from .records import AccessEventRecord, now, utc


def record_access(
    *,
    session: Session,
    plan_id: str | None,
    kind: str,
    actor: str,
    subject: str | None = None,
    detail: str | None = None,
    ip: str | None = None,
) -> None:
    """Add one entry to the access log; ``plan_id`` None for a workspace-level one."""
    session.add(
        AccessEvent(
            plan_id=plan_id,
            at=now(),
            kind=kind,
            actor=actor[:400],
            subject=subject[:400] if subject else None,
            detail=detail[:400] if detail else None,
            ip=ip,
        )
    )


def access_events(
    *, session: Session, plan_id: str, emails: list[str], limit: int = 500
) -> list[AccessEventRecord]:
    """A plan's events, and the sign-ins (good and failed) of the given people, newest first."""
    cond = AccessEvent.plan_id == plan_id
    if emails:
        cond = or_(cond, (AccessEvent.plan_id.is_(None)) & AccessEvent.subject.in_(emails))
    rows = session.scalars(
        select(AccessEvent)
        .where(cond)
        .order_by(AccessEvent.at.desc(), AccessEvent.id.desc())
        .limit(limit)
    )
    return [
        AccessEventRecord(
            id=r.id,
            plan_id=r.plan_id,
            at=utc(r.at),
            kind=r.kind,
            actor=r.actor,
            subject=r.subject,
            detail=r.detail,
            ip=r.ip,
        )
        for r in rows
    ]

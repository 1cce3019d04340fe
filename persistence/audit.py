"""The access log and the outgoing mail."""

from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from .models import AccessEvent, OutboxMail
from .records import AccessEventRecord, MailRecord, now, utc


def record_event(
    *,
    session: Session,
    plan_id: str | None,
    kind: str,
    actor: str,
    subject: str | None = None,
    detail: str | None = None,
    ip: str | None = None,
) -> None:
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


def queue_mail(
    *, session: Session, to_addr: str, subject: str, body: str, plan_id: str | None = None
) -> int:
    row = OutboxMail(to_addr=to_addr, subject=subject, body=body, created_at=now(), plan_id=plan_id)
    session.add(row)
    session.flush()
    return row.id


def mark_mail(*, session: Session, mail_id: int, error: str | None) -> None:
    values = {"error": error[:400]} if error else {"sent_at": now(), "error": None}
    session.execute(update(OutboxMail).where(OutboxMail.id == mail_id).values(**values))


def outbox(*, session: Session, limit: int = 100) -> list[MailRecord]:
    rows = session.scalars(select(OutboxMail).order_by(OutboxMail.id.desc()).limit(limit))
    return [
        MailRecord(
            id=r.id,
            to_addr=r.to_addr,
            subject=r.subject,
            body=r.body,
            created_at=utc(r.created_at),
            sent_at=utc(r.sent_at),
            error=r.error,
        )
        for r in rows
    ]

"""The outgoing mail: queued before sending, marked sent or failed."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .models import OutboxMail
from .records import MailRecord, now, utc


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

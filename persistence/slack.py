"""A plan's Slack channel: the incoming-webhook URL its owners set. The URL is a credential
(anyone holding it can post to the channel), so callers show it masked except to owners."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from .models import Base
from .records import now, utc


class PlanSlack(Base):
    __tablename__ = "plan_slack"
    plan_id: Mapped[str] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    webhook_url: Mapped[str] = mapped_column(String(500))
    set_by: Mapped[int | None] = mapped_column(Integer)
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class SlackRecord:
    plan_id: str
    webhook_url: str
    set_by: int | None
    set_at: datetime


def set_slack_webhook(
    *, session: Session, plan_id: str, webhook_url: str, set_by: int | None
) -> None:
    row = session.get(PlanSlack, plan_id)
    if row is None:
        session.add(
            PlanSlack(plan_id=plan_id, webhook_url=webhook_url, set_by=set_by, set_at=now())
        )
    else:
        row.webhook_url, row.set_by, row.set_at = webhook_url, set_by, now()


def get_slack_webhook(*, session: Session, plan_id: str) -> SlackRecord | None:
    row = session.get(PlanSlack, plan_id)
    if row is None:
        return None
    return SlackRecord(row.plan_id, row.webhook_url, row.set_by, utc(row.set_at))


def delete_slack_webhook(*, session: Session, plan_id: str) -> bool:
    """Remove the plan's webhook; whether there was one."""
    row = session.get(PlanSlack, plan_id)
    if row is None:
        return False
    session.delete(row)
    return True

"""Calendar feeds: one per person, a secret URL a calendar application subscribes to.

Only a hash of the feed's secret is kept, so the database alone cannot rebuild a feed's URL;
replacing the feed makes a new secret and deleting it ends the old URL at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import DateTime, ForeignKey, String, delete, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import rowcount
from .models import Base, Plan, PlanMember, PlanTask, User
from .records import now, utc


class CalendarFeed(Base):
    __tablename__ = "calendar_feeds"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class CalendarEntry:
    """A dated task in one of a person's plans: theirs, or a milestone."""

    plan_id: str
    plan_title: str
    customer: str
    task_id: str
    text: str
    owner_label: str | None
    due: date
    status: str
    milestone: bool
    mine: bool


def set_calendar_feed(*, session: Session, user_id: int, secret_hash: str) -> datetime:
    """Make (or replace) the person's feed; the old secret stops working."""
    at = now()
    row = session.get(CalendarFeed, user_id)
    if row is None:
        session.add(CalendarFeed(user_id=user_id, secret_hash=secret_hash, created_at=at))
    else:
        row.secret_hash, row.created_at = secret_hash, at
    session.flush()
    return at


def calendar_feed_created(*, session: Session, user_id: int) -> datetime | None:
    """When the person's feed was made; None when they have none."""
    return utc(
        session.scalar(select(CalendarFeed.created_at).where(CalendarFeed.user_id == user_id))
    )


def revoke_calendar_feed(*, session: Session, user_id: int) -> bool:
    """Delete the person's feed; False when they had none."""
    result = session.execute(delete(CalendarFeed).where(CalendarFeed.user_id == user_id))
    return rowcount(result) > 0


def calendar_feed_user(*, session: Session, secret_hash: str) -> int | None:
    """The active account whose feed has this secret, if any."""
    return session.scalar(
        select(CalendarFeed.user_id)
        .join(User, User.id == CalendarFeed.user_id)
        .where(CalendarFeed.secret_hash == secret_hash, User.deactivated_at.is_(None))
    )


def calendar_entries(*, session: Session, user_id: int) -> list[CalendarEntry]:
    """The person's dated tasks and the dated milestones of the live plans they are a member
    of, by due date."""
    ref = f"user:{user_id}"
    rows = session.execute(
        select(PlanTask, Plan.title, Plan.customer)
        .join(Plan, Plan.id == PlanTask.plan_id)
        .join(PlanMember, PlanMember.plan_id == Plan.id)
        .where(
            PlanMember.user_id == user_id,
            Plan.archived_at.is_(None),
            PlanTask.due.is_not(None),
            or_(PlanTask.owner_ref == ref, PlanTask.milestone.is_(True)),
        )
        .order_by(PlanTask.due, Plan.id, PlanTask.position)
    ).all()
    return [
        CalendarEntry(
            plan_id=t.plan_id,
            plan_title=title,
            customer=customer,
            task_id=t.id,
            text=t.text,
            owner_label=t.owner_label,
            due=t.due,
            status=t.status,
            milestone=t.milestone,
            mine=t.owner_ref == ref,
        )
        for t, title, customer in rows
        if t.due is not None
    ]

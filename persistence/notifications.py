"""Notifications: the outbox every notification is written to first, the action links that
have been used, and the people who unsubscribed.

A notification is a row before it is anything else. Its ``dedup_key`` is unique, so the same
event seen twice (a rebuild, a restart, a second process) queues it once. A sender claims a row
by moving its ``next_attempt_at`` forward in one conditional UPDATE (a lease): two senders never
hold the same row, and a sender that died mid-send leaves a row that is claimed again once its
lease runs out (that one message may then go twice; nothing else can).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import rowcount
from .models import Base, Plan, PlanTask
from .notify_prefs import DIGEST, DIGEST_KIND, OFF, notification_mode
from .records import now, utc

QUEUED, SENT, FAILED = "queued", "sent", "failed"
# A notification its recipient wants in the weekly digest waits as HELD (the dispatcher never
# claims it) until a digest takes it in (IN_DIGEST).
HELD, IN_DIGEST = "held", "in_digest"


class Notification(Base):
    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedup_key: Mapped[str] = mapped_column(String(300), unique=True)
    plan_id: Mapped[str | None] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), index=True
    )
    recipient_email: Mapped[str] = mapped_column(String(320))
    recipient_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(200))
    # What the channel renders the message from (task, plan, links...).
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_notifications_state_next", "state", "next_attempt_at"),)


# The table itself, for the outbox's hot statements (no ORM unit of work).
_NOTIFICATIONS = cast(Table, Notification.__table__)


class ActionUse(Base):
    """An action link (mark complete, move the due date, I'm blocked) that has been used: the
    signed token names this row's id, so it works once."""

    __tablename__ = "notification_actions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    # Who acted, as the commitment history names them ("Jordan Lee, by email link").
    actor: Mapped[str] = mapped_column(String(400))
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The logged update the action made, once made.
    update_id: Mapped[int | None] = mapped_column(Integer)


class Unsubscribe(Base):
    """A person who asked for no more notifications: about one plan, or ("") about any; of
    one kind (assigned, completed, due_soon, overdue), or ("") of any."""

    __tablename__ = "notification_unsubscribes"
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class NotificationRecord:
    id: int
    dedup_key: str
    plan_id: str | None
    recipient_email: str
    recipient_name: str
    kind: str
    channel: str
    subject: str
    payload: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None

    @property
    def untried(self) -> bool:
        """Never tried (``_untried``): it may still be refreshed or withdrawn, and has reached
        nobody."""
        return self.state == HELD or (self.state == QUEUED and self.attempts == 0)


def _record(r: Notification) -> NotificationRecord:
    return NotificationRecord(
        id=r.id,
        dedup_key=r.dedup_key,
        plan_id=r.plan_id,
        recipient_email=r.recipient_email,
        recipient_name=r.recipient_name,
        kind=r.kind,
        channel=r.channel,
        subject=r.subject,
        payload=dict(r.payload),
        state=r.state,
        attempts=r.attempts,
        next_attempt_at=utc(r.next_attempt_at),
        last_error=r.last_error,
        created_at=utc(r.created_at),
        sent_at=utc(r.sent_at),
    )


def queue_notification(
    *,
    session: Session,
    dedup_key: str,
    plan_id: str | None,
    recipient_email: str,
    recipient_name: str,
    kind: str,
    subject: str,
    payload: dict[str, Any],
    channel: str = "email",
    not_before: datetime | None = None,
    refresh: bool = False,
) -> int | None:
    """Queue one notification; None (nothing written) when its key was queued before, its
    recipient unsubscribed from the plan or turned its kind off. A kind its recipient wants in
    the weekly digest is written HELD, for the digest to take in (unless the digest is off).
    ``not_before``: not sent before then. With ``refresh``, a row of the same key not yet tried
    (waiting to be sent, or held for a digest) takes the new subject and payload (a value
    still being typed: the message, or the digest, says where it ended)."""
    email = recipient_email.strip().lower()
    if unsubscribed(session=session, email=email, plan_id=plan_id, kind=kind):
        return None
    state = QUEUED
    mode = notification_mode(session=session, email=email, plan_id=plan_id, kind=kind)
    if mode == OFF:
        return None
    if mode == DIGEST and kind != DIGEST_KIND and digest_wanted(session=session, email=email):
        state = HELD
    if session.scalar(select(Notification.id).where(Notification.dedup_key == dedup_key)):
        if refresh:
            session.execute(
                update(Notification)
                .where(Notification.dedup_key == dedup_key, _untried())
                .values(subject=subject[:200], payload=payload)
                .execution_options(synchronize_session=False)
            )
        return None
    at = now()
    row = Notification(
        dedup_key=dedup_key[:300],
        plan_id=plan_id,
        recipient_email=email,
        recipient_name=recipient_name[:200],
        kind=kind,
        channel=channel,
        subject=subject[:200],
        payload=payload,
        state=state,
        attempts=0,
        next_attempt_at=max(at, not_before) if not_before is not None else at,
        created_at=at,
    )
    try:
        with session.begin_nested():  # another process queued the same key meanwhile
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    return row.id


def _untried() -> ColumnElement[bool]:
    """A notification never tried: queued and never attempted, or held for a digest that has
    not taken it in (what may still be withdrawn)."""
    never_attempted = (Notification.state == QUEUED) & (Notification.attempts == 0)
    return or_(never_attempted, Notification.state == HELD)


def unsent_notifications(*, session: Session, plan_id: str, kind: str) -> list[NotificationRecord]:
    """Notifications of ``kind`` about ``plan_id`` not yet tried: queued and never attempted,
    or held for a digest that has not taken them in."""
    rows = session.scalars(
        select(Notification).where(
            Notification.plan_id == plan_id,
            Notification.kind == kind,
            _untried(),
        )
    )
    return [_record(r) for r in rows]


def notifications_keyed(
    *, session: Session, plan_id: str, kind: str, prefix: str
) -> list[NotificationRecord]:
    """The notifications of ``kind`` about ``plan_id`` whose key starts with ``prefix``, in
    any state, oldest first (the messages about one thing, sent or not)."""
    rows = session.scalars(
        select(Notification)
        .where(
            Notification.plan_id == plan_id,
            Notification.kind == kind,
            Notification.dedup_key.startswith(prefix, autoescape=True),
        )
        .order_by(Notification.id)
    )
    return [_record(r) for r in rows]


def withdraw_notifications(*, session: Session, notification_ids: list[int]) -> None:
    """These notifications go, if still not tried: what they tell was undone before they were
    sent. The row goes (not a state), so its key may be queued again if it comes true again;
    a row a sender claimed a moment ago may still be sent, once."""
    if notification_ids:
        session.execute(
            delete(Notification)
            .where(
                Notification.id.in_(notification_ids),
                _untried(),
            )
            .execution_options(synchronize_session=False)
        )


def digest_wanted(*, session: Session, email: str) -> bool:
    """Whether ``email`` gets the weekly digest (not turned off, not unsubscribed from)."""
    if unsubscribed(session=session, email=email, plan_id=None, kind=DIGEST_KIND):
        return False
    mode = notification_mode(session=session, email=email, plan_id=None, kind=DIGEST_KIND)
    return mode != OFF


def held_notifications(*, session: Session, email: str, upto: datetime) -> list[NotificationRecord]:
    """What waits for ``email``'s digest, oldest first."""
    rows = session.scalars(
        select(Notification)
        .where(
            Notification.recipient_email == email.strip().lower(),
            Notification.state == HELD,
            Notification.created_at <= upto,
        )
        .order_by(Notification.id)
    )
    return [_record(r) for r in rows]


def mark_in_digest(*, session: Session, notification_ids: list[int]) -> None:
    """These held notifications went into a digest (queued in the same transaction)."""
    if notification_ids:
        session.execute(
            update(Notification)
            .where(Notification.id.in_(notification_ids), Notification.state == HELD)
            .values(state=IN_DIGEST)
            .execution_options(synchronize_session=False)
        )


def unsubscribes_of(*, session: Session, email: str) -> set[tuple[str, str]]:
    """Every (plan id or "", kind or "") ``email`` unsubscribed from."""
    rows = session.execute(
        select(Unsubscribe.plan_id, Unsubscribe.kind).where(
            Unsubscribe.email == email.strip().lower()
        )
    ).all()
    return {(p, k) for p, k in rows}


def notification_queued(*, session: Session, dedup_key: str) -> bool:
    """Whether a notification with this key was queued before (to skip building it again)."""
    found = session.scalar(select(Notification.id).where(Notification.dedup_key == dedup_key))
    return found is not None


def claim_notifications(
    *,
    session: Session,
    lease: timedelta,
    limit: int = 50,
    channels: tuple[str, ...] | None = None,
) -> list[NotificationRecord]:
    """Queued notifications due now (on ``channels``, None: any), each leased to the caller
    for ``lease`` (``due_notifications`` then ``lease_notifications``, in one transaction)."""
    at = now()
    candidates = due_notifications(session=session, at=at, limit=limit, channels=channels)
    leased = lease_notifications(session=session, candidates=candidates, at=at, lease=lease)
    return [n for n in candidates if n.id in leased]


def due_notifications(
    *,
    session: Session,
    at: datetime,
    limit: int = 50,
    channels: tuple[str, ...] | None = None,
) -> list[NotificationRecord]:
    """Queued notifications due at ``at`` (on ``channels``, None: any), soonest first: only
    read, for ``lease_notifications`` to claim."""
    q = select(Notification).where(Notification.state == QUEUED, Notification.next_attempt_at <= at)
    if channels is not None:
        q = q.where(Notification.channel.in_(channels))
    rows = session.scalars(q.order_by(Notification.next_attempt_at, Notification.id).limit(limit))
    return [_record(r) for r in rows]


def lease_notifications(
    *,
    session: Session | Connection,
    candidates: list[NotificationRecord],
    at: datetime,
    lease: timedelta,
) -> set[int]:
    """Lease those of ``candidates`` still queued and due at ``at`` until ``at + lease``; the
    ids leased. One conditional UPDATE: on SQLite, a transaction holding only it holds the
    write lock (which the live rooms' commits wait for) for that statement and the commit, not
    for a statement per row. A row another sender leased since it was read no longer matches
    (its ``next_attempt_at`` moved past ``at``), nor one sent meanwhile."""
    if not candidates:
        return set()
    result = session.execute(
        update(_NOTIFICATIONS)
        .where(
            _NOTIFICATIONS.c.id.in_([n.id for n in candidates]),
            _NOTIFICATIONS.c.state == QUEUED,
            _NOTIFICATIONS.c.next_attempt_at <= at,
        )
        .values(next_attempt_at=at + lease)
        .returning(_NOTIFICATIONS.c.id)
    )
    return set(result.scalars())


def next_attempt(*, session: Session, channels: tuple[str, ...] | None = None) -> datetime | None:
    """When the earliest queued notification (on ``channels``, None: any) is due (None:
    nothing queued)."""
    q = select(Notification.next_attempt_at).where(Notification.state == QUEUED)
    if channels is not None:
        q = q.where(Notification.channel.in_(channels))
    return utc(session.scalar(q.order_by(Notification.next_attempt_at).limit(1)))


def mark_sent(*, session: Session, notification_id: int) -> None:
    mark_all_sent(session=session, notification_ids=[notification_id])


def mark_all_sent(*, session: Session | Connection, notification_ids: list[int]) -> None:
    """These notifications were sent: one UPDATE, however many."""
    if not notification_ids:
        return
    session.execute(
        update(_NOTIFICATIONS)
        .where(_NOTIFICATIONS.c.id.in_(notification_ids))
        .values(state=SENT, sent_at=now(), attempts=_NOTIFICATIONS.c.attempts + 1, last_error=None)
    )


def mark_failed(
    *,
    session: Session | Connection,
    notification_id: int,
    error: str,
    retry_at: datetime | None,
) -> None:
    """A failed attempt: tried again at ``retry_at``, or given up on when None."""
    table = _NOTIFICATIONS
    values: dict[str, Any] = {"attempts": table.c.attempts + 1, "last_error": error[:400]}
    if retry_at is None:
        values["state"] = FAILED
    else:
        values["next_attempt_at"] = retry_at
    session.execute(update(table).where(table.c.id == notification_id).values(**values))


def list_notifications(
    *, session: Session, plan_id: str | None = None, limit: int = 200
) -> list[NotificationRecord]:
    q = select(Notification).order_by(Notification.id.desc()).limit(limit)
    if plan_id is not None:
        q = q.where(Notification.plan_id == plan_id)
    return [_record(r) for r in session.scalars(q)]


def use_action(
    *, session: Session, action_id: str, plan_id: str, task_id: str, action: str, actor: str
) -> bool:
    """Record that an action link was used; False when it had been used before."""
    if session.get(ActionUse, action_id) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(
                ActionUse(
                    id=action_id,
                    plan_id=plan_id,
                    task_id=task_id,
                    action=action,
                    actor=actor[:400],
                    used_at=now(),
                )
            )
            session.flush()
    except IntegrityError:
        return False
    return True


def action_used(*, session: Session, action_id: str) -> bool:
    return session.get(ActionUse, action_id) is not None


def release_action(*, session: Session, action_id: str) -> None:
    """Give back a link whose change could not be made (nothing was changed)."""
    row = session.get(ActionUse, action_id)
    if row is not None and row.update_id is None:
        session.delete(row)


def record_action_update(*, session: Session, action_id: str, update_id: int) -> None:
    session.execute(update(ActionUse).where(ActionUse.id == action_id).values(update_id=update_id))


def action_actors(*, session: Session, plan_id: str, update_ids: list[int]) -> dict[int, str]:
    """Who made each of these logged updates by an action link, by update id."""
    if not update_ids:
        return {}
    rows = session.execute(
        select(ActionUse.update_id, ActionUse.actor).where(
            ActionUse.plan_id == plan_id, ActionUse.update_id.in_(update_ids)
        )
    ).all()
    return {u: a for u, a in rows if u is not None}


def unsubscribe(
    *, session: Session, email: str, plan_id: str | None, kind: str | None = None
) -> None:
    """No more notifications to ``email`` about ``plan_id`` (None: any plan) of ``kind``
    (None: any kind)."""
    key = (email.strip().lower(), plan_id or "", kind or "")
    if session.get(Unsubscribe, key) is None:
        session.add(Unsubscribe(email=key[0], plan_id=key[1], kind=key[2], at=now()))


def resubscribe(
    *, session: Session, email: str, plan_id: str | None, kind: str | None = None
) -> None:
    row = session.get(Unsubscribe, (email.strip().lower(), plan_id or "", kind or ""))
    if row is not None:
        session.delete(row)


def unsubscribed(
    *, session: Session, email: str, plan_id: str | None, kind: str | None = None
) -> bool:
    """Whether ``email`` opted out of notifications of ``kind`` about ``plan_id`` (or of
    every kind, or about every plan)."""
    return (
        session.scalar(
            select(Unsubscribe.email)
            .where(
                Unsubscribe.email == email.strip().lower(),
                Unsubscribe.plan_id.in_(("", plan_id or "")),
                Unsubscribe.kind.in_(("", kind or "")),
            )
            .limit(1)
        )
        is not None
    )


class Lease(Base):
    """Who runs a periodic job (the reminder clock) until when: with several server
    processes, exactly one holds it at a time."""

    __tablename__ = "notification_leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def take_lease(*, session: Session, name: str, holder: str, ttl: timedelta) -> bool:
    """Take (or renew) the lease ``name`` for ``ttl``; False while someone else holds it."""
    at = now()
    result = session.execute(
        update(Lease)
        .where(Lease.name == name, or_(Lease.expires_at <= at, Lease.holder == holder))
        .values(holder=holder, expires_at=at + ttl)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result):
        return True
    if session.get(Lease, name) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(Lease(name=name, holder=holder, expires_at=at + ttl))
            session.flush()
    except IntegrityError:
        return False
    return True


class ClockMark(Base):
    """How far a periodic job has looked (the weekly digests): a pass after the clock stood
    still (the server or its worker down) knows which moments it missed."""

    __tablename__ = "notification_clock"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    through: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def clock_mark(*, session: Session, name: str) -> datetime | None:
    """How far the job ``name`` has looked; None before its first pass."""
    return utc(session.scalar(select(ClockMark.through).where(ClockMark.name == name)))


def advance_clock_mark(*, session: Session, name: str, to: datetime) -> None:
    """Move ``name``'s mark forward to ``to``, never back (a pass run as if earlier leaves it)."""
    forward = (
        update(ClockMark)
        .where(ClockMark.name == name, ClockMark.through < to)
        .values(through=to)
        .execution_options(synchronize_session=False)
    )
    if rowcount(session.execute(forward)):
        return
    if session.scalar(select(ClockMark.name).where(ClockMark.name == name)) is not None:
        return
    try:
        with session.begin_nested():
            session.add(ClockMark(name=name, through=to))
            session.flush()
    except IntegrityError:  # another pass made it meanwhile
        session.execute(forward)


def outbox_depth(*, session: Session) -> int:
    """Notifications queued and not yet sent (due now or waiting for a retry)."""
    return int(
        session.execute(
            select(func.count()).select_from(Notification).where(Notification.state == QUEUED)
        ).scalar_one()
    )


def holds_lease(*, session: Session, name: str, holder: str) -> bool:
    """Whether ``holder`` holds the lease ``name`` now, and, on PostgreSQL, keeps the lease's
    row locked until the caller's transaction ends: someone taking the lease over waits for
    that transaction, so a write fenced by this call commits only under a lease still held."""
    result = session.execute(
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder, Lease.expires_at > now())
        .values(holder=holder)
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))


def lease_holder(*, session: Session, name: str) -> str | None:
    """Who holds the lease ``name`` now (None: nobody, or it lapsed)."""
    lease = session.get(Lease, name)
    if lease is None or utc(lease.expires_at) <= now():
        return None
    return lease.holder


def release_lease(*, session: Session, name: str, holder: str) -> None:
    session.execute(
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder)
        .values(expires_at=now())
        .execution_options(synchronize_session=False)
    )


def open_tasks_due(*, session: Session, upto: date) -> list[dict[str, Any]]:
    """Open tasks with an owner and a due date on or before ``upto``, in live plans."""
    q = (
        select(PlanTask)
        .join(Plan, Plan.id == PlanTask.plan_id)
        .where(
            Plan.archived_at.is_(None),
            PlanTask.status != "done",
            PlanTask.due.is_not(None),
            PlanTask.due <= upto,
            PlanTask.owner_ref.is_not(None),
        )
        .order_by(PlanTask.due, PlanTask.plan_id, PlanTask.position)
    )
    return [
        {"plan_id": t.plan_id, "id": t.id, "due": t.due, "owner_ref": t.owner_ref}
        for t in session.scalars(q)
    ]

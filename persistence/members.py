"""Plan members (role and side) and the invitations that make them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from .db import rowcount
from .models import Invite, Plan, PlanMember, User
from .records import InviteRecord, MemberRecord, PlanRecord, now, utc


def _member(m: PlanMember, u: User) -> MemberRecord:
    return MemberRecord(
        plan_id=m.plan_id,
        user_id=m.user_id,
        name=u.name,
        email=u.email,
        role=m.role,
        side=m.side,
        added_at=utc(m.added_at),
    )


def get_member(*, session: Session, plan_id: str, user_id: int) -> MemberRecord | None:
    row = session.execute(
        select(PlanMember, User)
        .join(User, User.id == PlanMember.user_id)
        .where(PlanMember.plan_id == plan_id, PlanMember.user_id == user_id)
    ).first()
    return _member(row[0], row[1]) if row else None


def list_members(*, session: Session, plan_id: str) -> list[MemberRecord]:
    rows = session.execute(
        select(PlanMember, User)
        .join(User, User.id == PlanMember.user_id)
        .where(PlanMember.plan_id == plan_id)
        .order_by(PlanMember.added_at, User.id)
    ).all()
    return [_member(m, u) for m, u in rows]


def set_member(*, session: Session, plan_id: str, user_id: int, role: str, side: str) -> bool:
    """Add the user to the plan, or change their role and side; True if they were new."""
    row = session.get(PlanMember, (plan_id, user_id))
    if row is None:
        session.add(
            PlanMember(plan_id=plan_id, user_id=user_id, role=role, side=side, added_at=now())
        )
        session.flush()
        return True
    row.role, row.side = role, side
    return False


def remove_member(*, session: Session, plan_id: str, user_id: int) -> bool:
    result = session.execute(
        delete(PlanMember).where(PlanMember.plan_id == plan_id, PlanMember.user_id == user_id)
    )
    return bool(rowcount(result))


def count_owners(*, session: Session, plan_id: str) -> int:
    return len(
        session.scalars(
            select(PlanMember.user_id).where(
                PlanMember.plan_id == plan_id, PlanMember.role == "owner"
            )
        ).all()
    )


def member_roles(*, session: Session, user_id: int) -> dict[str, str]:
    """Plan id -> the user's role in it, for every plan the user is a member of."""
    rows = session.execute(
        select(PlanMember.plan_id, PlanMember.role).where(PlanMember.user_id == user_id)
    )
    return {plan_id: role for plan_id, role in rows}


def member_plan_ids(*, session: Session, user_id: int) -> set[str]:
    return set(session.scalars(select(PlanMember.plan_id).where(PlanMember.user_id == user_id)))


def plans_of_member(*, session: Session, user_id: int) -> list[PlanRecord]:
    from .plans import _record

    rows = session.scalars(
        select(Plan)
        .join(PlanMember, PlanMember.plan_id == Plan.id)
        .where(PlanMember.user_id == user_id)
        .order_by(Plan.updated_at.desc(), Plan.id)
    ).all()
    return [_record(r) for r in rows]


# Invitations


def _invite(row: Invite) -> InviteRecord:
    return InviteRecord(
        id=row.id,
        plan_id=row.plan_id,
        email=row.email,
        role=row.role,
        side=row.side,
        invited_by=row.invited_by,
        created_at=utc(row.created_at),
        expires_at=utc(row.expires_at),
        accepted_at=utc(row.accepted_at),
        revoked_at=utc(row.revoked_at),
    )


def create_invite(
    *,
    session: Session,
    invite_id: str,
    plan_id: str,
    email: str,
    role: str,
    side: str,
    invited_by: int | None,
    expires_at: datetime,
) -> InviteRecord:
    row = Invite(
        id=invite_id,
        plan_id=plan_id,
        email=email.strip().lower(),
        role=role,
        side=side,
        invited_by=invited_by,
        created_at=now(),
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return _invite(row)


def get_invite(*, session: Session, invite_id: str) -> InviteRecord | None:
    row = session.get(Invite, invite_id)
    return _invite(row) if row else None


def pending_invites(*, session: Session, plan_id: str) -> list[InviteRecord]:
    rows = session.scalars(
        select(Invite)
        .where(Invite.plan_id == plan_id, Invite.accepted_at.is_(None), Invite.revoked_at.is_(None))
        .order_by(Invite.created_at)
    )
    at = now()
    return [r for r in map(_invite, rows) if r.expires_at > at]


def accept_invite(*, session: Session, invite_id: str) -> bool:
    """Mark the invitation used; False if it was already used, revoked or expired (single use)."""
    result = session.execute(
        update(Invite)
        .where(
            Invite.id == invite_id,
            Invite.accepted_at.is_(None),
            Invite.revoked_at.is_(None),
            Invite.expires_at > now(),
        )
        .values(accepted_at=now())
    )
    return bool(rowcount(result))


def revoke_invite(*, session: Session, plan_id: str, invite_id: str) -> bool:
    result = session.execute(
        update(Invite)
        .where(Invite.id == invite_id, Invite.plan_id == plan_id, Invite.revoked_at.is_(None))
        .values(revoked_at=now())
    )
    return bool(rowcount(result))

"""People, their browser sessions and their API tokens."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .db import rowcount
from .models import ApiToken, PasswordReset, PlanMember, User
from .models import Session as SessionRow
from .records import TokenRecord, UserRecord, now, utc


class DuplicateEmail(ValueError):
    """A user with this email already exists."""


def _user(row: User) -> UserRecord:
    return UserRecord(
        id=row.id,
        email=row.email,
        name=row.name,
        is_owner=row.is_owner,
        # The workspace owner is staff whatever the column says.
        is_staff=bool(row.is_staff or row.is_owner),
        deactivated_at=utc(row.deactivated_at),
    )


def count_users(*, session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def create_user(
    *,
    session: Session,
    email: str,
    name: str,
    password_hash: str | None,
    is_owner: bool = False,
    is_staff: bool = True,
) -> UserRecord:
    email = email.strip().lower()
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise DuplicateEmail(email)
    row = User(
        email=email,
        name=name,
        password_hash=password_hash,
        is_owner=is_owner,
        is_staff=is_staff or is_owner,
        created_at=now(),
    )
    session.add(row)
    session.flush()
    return _user(row)


def get_user(*, session: Session, user_id: int) -> UserRecord | None:
    row = session.get(User, user_id)
    return _user(row) if row else None


def find_user(*, session: Session, email: str) -> tuple[UserRecord, str | None] | None:
    """The user with this email and their password hash, for sign-in."""
    row = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    return (_user(row), row.password_hash) if row else None


def set_password_hash(*, session: Session, user_id: int, password_hash: str) -> None:
    session.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))


def set_staff(*, session: Session, user_id: int, staff: bool) -> UserRecord | None:
    """Make the account staff or a guest; a guest's memberships all move to the customer side,
    and a new staff member's to the vendor side: a member's side follows the account kind."""
    row = session.get(User, user_id)
    if row is None:
        return None
    row.is_staff = staff or row.is_owner
    side = "vendor" if row.is_staff else "customer"
    session.execute(update(PlanMember).where(PlanMember.user_id == user_id).values(side=side))
    session.flush()
    return _user(row)


def set_active(*, session: Session, user_id: int, active: bool) -> UserRecord | None:
    """Deactivate (ending every session and API token) or reactivate an account."""
    row = session.get(User, user_id)
    if row is None:
        return None
    if active:
        row.deactivated_at = None
    elif row.deactivated_at is None:
        at = now()
        row.deactivated_at = at
        session.execute(
            update(SessionRow)
            .where(SessionRow.user_id == user_id, SessionRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=at)
        )
    session.flush()
    return _user(row)


Account = tuple[UserRecord, list[tuple[str, str, str]], datetime | None]


def list_accounts(*, session: Session) -> list[Account]:
    """Every account with its (plan id, role, side) memberships and its last sign-in."""
    users = session.scalars(select(User).order_by(User.is_owner.desc(), User.name, User.id)).all()
    plans: dict[int, list[tuple[str, str, str]]] = {}
    for m in session.scalars(select(PlanMember).order_by(PlanMember.added_at)):
        plans.setdefault(m.user_id, []).append((m.plan_id, m.role, m.side))
    last: dict[int, datetime] = {
        uid: utc(at)
        for uid, at in session.execute(
            select(SessionRow.user_id, func.max(SessionRow.created_at)).group_by(SessionRow.user_id)
        )
    }
    return [(_user(u), plans.get(u.id, []), last.get(u.id)) for u in users]


def users_by_id(*, session: Session, ids: list[int]) -> dict[int, UserRecord]:
    if not ids:
        return {}
    return {r.id: _user(r) for r in session.scalars(select(User).where(User.id.in_(ids)))}


# Browser sessions


def create_session(
    *, session: Session, session_id: str, user_id: int, expires_at: datetime
) -> None:
    # In UTC before storing: SQLite keeps only the wall-clock time, which we read back as UTC.
    expires_at = expires_at.astimezone(UTC)
    session.add(SessionRow(id=session_id, user_id=user_id, created_at=now(), expires_at=expires_at))


def session_user(*, session: Session, session_id: str) -> UserRecord | None:
    """The user behind a live (unexpired, unrevoked) session."""
    row = session.get(SessionRow, session_id)
    if row is None or row.revoked_at is not None or utc(row.expires_at) <= now():
        return None
    user = get_user(session=session, user_id=row.user_id)
    return user if user is not None and user.deactivated_at is None else None


def revoke_session(*, session: Session, session_id: str) -> None:
    session.execute(
        update(SessionRow)
        .where(SessionRow.id == session_id, SessionRow.revoked_at.is_(None))
        .values(revoked_at=now())
    )


# API tokens


def _token(row: ApiToken) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        user_id=row.user_id,
        label=row.label,
        created_at=utc(row.created_at),
        expires_at=utc(row.expires_at),
        revoked_at=utc(row.revoked_at),
        last_used_at=utc(row.last_used_at),
    )


def create_token(
    *,
    session: Session,
    token_id: str,
    user_id: int,
    secret_hash: str,
    label: str | None,
    expires_at: datetime | None,
) -> TokenRecord:
    row = ApiToken(
        id=token_id,
        user_id=user_id,
        secret_hash=secret_hash,
        label=label,
        created_at=now(),
        # In UTC before storing: SQLite keeps only the wall-clock time, which we read back as UTC.
        expires_at=expires_at.astimezone(UTC) if expires_at is not None else None,
    )
    session.add(row)
    session.flush()
    return _token(row)


def token_secret(*, session: Session, token_id: str) -> tuple[TokenRecord, str] | None:
    """A token and its stored secret hash, whatever its state (the caller checks validity)."""
    row = session.get(ApiToken, token_id)
    return (_token(row), row.secret_hash) if row else None


def touch_token(*, session: Session, token_id: str) -> None:
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now()))


def list_tokens(*, session: Session, user_id: int) -> list[TokenRecord]:
    rows = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at)
    )
    return [_token(r) for r in rows]


def revoke_token(*, session: Session, token_id: str) -> bool:
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now())
    )
    return bool(rowcount(result))


def revoke_sessions(*, session: Session, user_id: int, keep: str | None = None) -> None:
    """End every live session of the account (but ``keep``)."""
    cond = [SessionRow.user_id == user_id, SessionRow.revoked_at.is_(None)]
    if keep is not None:
        cond.append(SessionRow.id != keep)
    session.execute(update(SessionRow).where(*cond).values(revoked_at=now()))


# Password resets (and the first password of staff invited by email)


def create_reset(*, session: Session, reset_id: str, user_id: int, expires_at: datetime) -> None:
    session.add(
        PasswordReset(
            id=reset_id, user_id=user_id, created_at=now(), expires_at=expires_at.astimezone(UTC)
        )
    )
    session.flush()


def reset_user(*, session: Session, reset_id: str) -> UserRecord | None:
    """The active account a live (unused, unexpired) reset is for."""
    row = session.get(PasswordReset, reset_id)
    if row is None or row.used_at is not None or utc(row.expires_at) <= now():
        return None
    user = get_user(session=session, user_id=row.user_id)
    return user if user is not None and user.deactivated_at is None else None


def use_reset(*, session: Session, reset_id: str, password_hash: str) -> UserRecord | None:
    """Set the new password and mark the reset used (single use), ending every session and
    every other reset of the account; None if the reset was not live."""
    user = reset_user(session=session, reset_id=reset_id)
    if user is None:
        return None
    result = session.execute(
        update(PasswordReset)
        .where(PasswordReset.id == reset_id, PasswordReset.used_at.is_(None))
        .values(used_at=now())
    )
    if not rowcount(result):
        return None
    session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now())
    )
    set_password_hash(session=session, user_id=user.id, password_hash=password_hash)
    revoke_sessions(session=session, user_id=user.id)
    return user

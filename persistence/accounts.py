"""People, their browser sessions and their API tokens."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .models import ApiToken, User
from .models import Session as SessionRow
from .records import TokenRecord, UserRecord, now, utc


class DuplicateEmail(ValueError):
    """A user with this email already exists."""


def _user(row: User) -> UserRecord:
    return UserRecord(id=row.id, email=row.email, name=row.name, is_owner=row.is_owner)


def count_users(*, session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def create_user(
    *, session: Session, email: str, name: str, password_hash: str | None, is_owner: bool = False
) -> UserRecord:
    email = email.strip().lower()
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise DuplicateEmail(email)
    row = User(
        email=email, name=name, password_hash=password_hash, is_owner=is_owner, created_at=now()
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
    if row is None or row.revoked_at is not None or utc(row.expires_at) <= now():  # type: ignore[operator]
        return None
    return get_user(session=session, user_id=row.user_id)


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
        created_at=utc(row.created_at),  # type: ignore[arg-type]
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
    return bool(result.rowcount)  # type: ignore[attr-defined]

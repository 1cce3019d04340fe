"""Plain values that persistence functions return: callers never hold ORM objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class UserRecord:
    id: int
    email: str
    name: str
    is_owner: bool


@dataclass(frozen=True)
class PlanRecord:
    id: str
    title: str
    customer: str
    created_by: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class TokenRecord:
    id: str
    user_id: int
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class PlanHistory:
    """What it takes to load a plan: the newest checkpoint and the log after it."""

    checkpoint: bytes | None
    checkpoint_upto: int
    updates: list[bytes]
    last_id: int

"""Plain values that persistence functions return: callers never hold ORM objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import overload


def now() -> datetime:
    return datetime.now(UTC)


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
@overload
def utc(value: datetime | None) -> datetime | None: ...
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
    is_staff: bool = True
    deactivated_at: datetime | None = None


@dataclass(frozen=True)
class PlanRecord:
    id: str
    title: str
    customer: str
    created_by: int | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


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


@dataclass(frozen=True)
class MemberRecord:
    plan_id: str
    user_id: int
    name: str
    email: str
    role: str
    side: str
    added_at: datetime


@dataclass(frozen=True)
class InviteRecord:
    id: str
    plan_id: str
    email: str
    role: str
    side: str
    invited_by: int | None
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class LinkRecord:
    id: str
    plan_id: str
    kind: str
    role: str
    label: str | None
    domain: str | None
    created_by: int | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    uses: int
    history: bool = False

    def usable(self, at: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > at


@dataclass(frozen=True)
class AccessEventRecord:
    id: int
    plan_id: str | None
    at: datetime
    kind: str
    actor: str
    subject: str | None
    detail: str | None
    ip: str | None


@dataclass(frozen=True)
class MailRecord:
    id: int
    to_addr: str
    subject: str
    body: str
    created_at: datetime
    sent_at: datetime | None
    error: str | None

"""Share links and CRM embed URLs, and the one-time email codes of domain-locked links."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .db import rowcount
from .models import EmailCode, ShareLink
from .records import LinkRecord, now, utc


def _link(row: ShareLink) -> LinkRecord:
    return LinkRecord(
        id=row.id,
        plan_id=row.plan_id,
        kind=row.kind,
        role=row.role,
        label=row.label,
        domain=row.domain,
        created_by=row.created_by,
        created_at=utc(row.created_at),
        expires_at=utc(row.expires_at),
        revoked_at=utc(row.revoked_at),
        last_used_at=utc(row.last_used_at),
        uses=row.uses or 0,
        history=bool(row.history),
    )


def create_link(
    *,
    session: Session,
    link_id: str,
    plan_id: str,
    kind: str,
    role: str,
    label: str | None,
    domain: str | None,
    created_by: int | None,
    expires_at: datetime,
    history: bool = False,
) -> LinkRecord:
    row = ShareLink(
        id=link_id,
        plan_id=plan_id,
        kind=kind,
        role=role,
        label=label,
        domain=domain,
        created_by=created_by,
        created_at=now(),
        expires_at=expires_at,
        uses=0,
        history=history,
    )
    session.add(row)
    session.flush()
    return _link(row)


def get_link(*, session: Session, link_id: str) -> LinkRecord | None:
    row = session.get(ShareLink, link_id)
    return _link(row) if row else None


def list_links(*, session: Session, plan_id: str) -> list[LinkRecord]:
    rows = session.scalars(
        select(ShareLink).where(ShareLink.plan_id == plan_id).order_by(ShareLink.created_at)
    )
    return [_link(r) for r in rows]


def touch_link(*, session: Session, link_id: str, count: bool) -> None:
    values: dict[str, object] = {"last_used_at": now()}
    if count:
        values["uses"] = ShareLink.uses + 1
    session.execute(update(ShareLink).where(ShareLink.id == link_id).values(**values))


def revoke_link(*, session: Session, plan_id: str, link_id: str) -> bool:
    result = session.execute(
        update(ShareLink)
        .where(
            ShareLink.id == link_id, ShareLink.plan_id == plan_id, ShareLink.revoked_at.is_(None)
        )
        .values(revoked_at=now())
    )
    return bool(rowcount(result))


# One-time codes


def create_code(
    *,
    session: Session,
    code_id: str,
    link_id: str,
    email: str,
    code_hash: str,
    expires_at: datetime,
) -> None:
    session.add(
        EmailCode(
            id=code_id,
            link_id=link_id,
            email=email,
            code_hash=code_hash,
            created_at=now(),
            expires_at=expires_at,
            attempts=0,
        )
    )


def use_code(
    *,
    session: Session,
    code_id: str,
    link_id: str,
    email: str,
    matches: Callable[[str], bool],
    max_attempts: int,
) -> bool:
    """Spend one attempt on a code; True (and the code used up) if ``matches(code_hash)``."""
    row = session.get(EmailCode, code_id, with_for_update=True)
    if row is None or row.link_id != link_id or row.email != email or row.used_at is not None:
        return False
    if utc(row.expires_at) <= now() or row.attempts >= max_attempts:
        return False
    row.attempts += 1
    if not matches(row.code_hash):
        return False
    row.used_at = now()
    return True

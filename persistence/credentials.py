"""Which credentials behind open connections have lapsed since they were checked."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import ApiToken, ShareLink, User
from .models import Session as SessionRow
from .records import now, utc

# Ids per query, well under SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK = 500


@dataclass(frozen=True)
class Lapsed:
    """Ids that are no longer good: revoked, expired, gone, or their account deactivated."""

    sessions: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)
    links: set[str] = field(default_factory=set)


def _chunks(ids: Collection[str]) -> Iterator[list[str]]:
    items = sorted(ids)
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def lapsed_credentials(
    *,
    session: Session,
    session_ids: Collection[str] = (),
    token_ids: Collection[str] = (),
    link_ids: Collection[str] = (),
) -> Lapsed:
    """Of these sessions, API tokens and share or embed links, the ones no longer valid."""
    at = now()
    live_sessions: set[str] = set()
    for chunk in _chunks(session_ids):
        rows = session.execute(
            select(SessionRow.id, SessionRow.revoked_at, SessionRow.expires_at)
            .join(User, User.id == SessionRow.user_id)
            .where(SessionRow.id.in_(chunk), User.deactivated_at.is_(None))
        )
        live_sessions |= {r.id for r in rows if r.revoked_at is None and utc(r.expires_at) > at}
    live_tokens: set[str] = set()
    for chunk in _chunks(token_ids):
        rows = session.execute(
            select(ApiToken.id, ApiToken.revoked_at, ApiToken.expires_at)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.id.in_(chunk), User.deactivated_at.is_(None))
        )
        live_tokens |= {
            r.id
            for r in rows
            if r.revoked_at is None and (r.expires_at is None or utc(r.expires_at) > at)
        }
    live_links: set[str] = set()
    for chunk in _chunks(link_ids):
        rows = session.execute(
            select(ShareLink.id, ShareLink.revoked_at, ShareLink.expires_at).where(
                ShareLink.id.in_(chunk)
            )
        )
        live_links |= {r.id for r in rows if r.revoked_at is None and utc(r.expires_at) > at}
    return Lapsed(
        sessions=set(session_ids) - live_sessions,
        tokens=set(token_ids) - live_tokens,
        links=set(link_ids) - live_links,
    )

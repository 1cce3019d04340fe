"""Version history over the update log: named versions, the history segments that make "the
plan at any moment" fast, the cached editing sessions, and where each person last saw each plan.

Everything here but the named versions and the visits is derived from the log and can be
dropped and rebuilt; the log itself is never touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from .models import Base, Checkpoint, HistoryEvent, LogId, PlanUpdate, User
from .records import now, utc


class PlanVersion(Base):
    """A name someone gave the plan's state at one point of its log."""

    __tablename__ = "plan_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    upto_id: Mapped[int] = mapped_column(LogId)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (Index("ix_plan_versions_plan_id_upto_id", "plan_id", "upto_id"),)


class HistorySnapshot(Base):
    """A segment of a document's log (derived): its updates after ``after_id`` up to
    ``upto_id``, merged into one update. Segments follow one another from the log's start, so
    the plan at any point is a room checkpoint, whole segments and a short tail of the log.
    (A row written before segments holds the whole state up to ``upto_id``: ``after_id`` 0.)"""

    __tablename__ = "history_snapshots"
    plan_id: Mapped[str] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    doc: Mapped[str] = mapped_column(String(16), primary_key=True)
    upto_id: Mapped[int] = mapped_column(LogId, primary_key=True)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    after_id: Mapped[int] = mapped_column(LogId, server_default="0")


class HistorySession(Base):
    """One closed editing session of a document (derived): its log range, people and text."""

    __tablename__ = "history_sessions"
    plan_id: Mapped[str] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    doc: Mapped[str] = mapped_column(String(16), primary_key=True)
    first_id: Mapped[int] = mapped_column(LogId, primary_key=True)
    last_id: Mapped[int] = mapped_column(LogId)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updates: Mapped[int] = mapped_column(Integer)
    authors: Mapped[list[Any]] = mapped_column(JSON)
    text: Mapped[list[Any]] = mapped_column(JSON)


class PlanVisit(Base):
    """The last point of a plan's log a person has seen, for "since your last visit"."""

    __tablename__ = "plan_visits"
    plan_id: Mapped[str] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    seen_id: Mapped[int] = mapped_column(LogId)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class VersionRecord:
    id: int
    plan_id: str
    name: str
    upto_id: int
    created_at: datetime
    created_by: int | None
    author_name: str | None


@dataclass(frozen=True)
class SessionRecord:
    first_id: int
    last_id: int
    started_at: datetime
    ended_at: datetime
    updates: int
    authors: list[int | None]
    text: list[dict[str, Any]]


# --- named versions --------------------------------------------------------------------------


def create_version(
    *, session: Session, plan_id: str, name: str, upto_id: int, created_by: int | None
) -> VersionRecord:
    row = PlanVersion(
        plan_id=plan_id, name=name, upto_id=upto_id, created_at=now(), created_by=created_by
    )
    session.add(row)
    session.flush()
    return get_version(session=session, plan_id=plan_id, version_id=row.id)  # type: ignore[return-value]  # just written


def _version_query() -> Any:
    return select(PlanVersion, User.name).outerjoin(User, User.id == PlanVersion.created_by)


def _version(row: PlanVersion, name: str | None) -> VersionRecord:
    return VersionRecord(
        id=row.id,
        plan_id=row.plan_id,
        name=row.name,
        upto_id=row.upto_id,
        created_at=utc(row.created_at),
        created_by=row.created_by,
        author_name=name,
    )


def get_version(*, session: Session, plan_id: str, version_id: int) -> VersionRecord | None:
    found = session.execute(
        _version_query().where(PlanVersion.plan_id == plan_id, PlanVersion.id == version_id)
    ).first()
    return _version(*found) if found else None


def list_versions(*, session: Session, plan_id: str) -> list[VersionRecord]:
    rows = session.execute(
        _version_query()
        .where(PlanVersion.plan_id == plan_id)
        .order_by(PlanVersion.upto_id.desc(), PlanVersion.id.desc())
    ).all()
    return [_version(r, n) for r, n in rows]


# --- the log, read for history ---------------------------------------------------------------


def log_id_at(*, session: Session, plan_id: str, at: datetime, doc: str = "plan") -> int:
    """The last log id written at or before ``at`` (0: none yet)."""
    return (
        session.scalar(
            select(func.max(PlanUpdate.id)).where(
                PlanUpdate.plan_id == plan_id, PlanUpdate.doc == doc, PlanUpdate.created_at <= at
            )
        )
        or 0
    )


def log_span(
    *, session: Session, plan_id: str, doc: str = "plan"
) -> tuple[datetime, datetime, int, int] | None:
    """(first time, last time, first id, last id) of a document's log, or None when empty."""
    row = session.execute(
        select(
            func.min(PlanUpdate.created_at),
            func.max(PlanUpdate.created_at),
            func.min(PlanUpdate.id),
            func.max(PlanUpdate.id),
        ).where(PlanUpdate.plan_id == plan_id, PlanUpdate.doc == doc)
    ).first()
    if row is None or row[2] is None:
        return None
    return utc(row[0]), utc(row[1]), row[2], row[3]


def log_time(*, session: Session, plan_id: str, log_id: int, doc: str = "plan") -> datetime | None:
    found = session.scalar(
        select(PlanUpdate.created_at).where(
            PlanUpdate.plan_id == plan_id, PlanUpdate.doc == doc, PlanUpdate.id == log_id
        )
    )
    return utc(found)


def log_bytes(*, session: Session, plan_id: str, doc: str = "plan") -> int:
    return (
        session.scalar(
            select(func.sum(func.length(PlanUpdate.data))).where(
                PlanUpdate.plan_id == plan_id, PlanUpdate.doc == doc
            )
        )
        or 0
    )


def history_bytes(*, session: Session, plan_id: str, doc: str | None = None) -> int:
    """What history adds beside the log: its segments (sessions and versions are small)."""
    q = select(func.sum(func.length(HistorySnapshot.state))).where(
        HistorySnapshot.plan_id == plan_id
    )
    if doc is not None:
        q = q.where(HistorySnapshot.doc == doc)
    return session.scalar(q) or 0


def replay_base(
    *, session: Session, plan_id: str, upto_id: int, doc: str = "plan"
) -> tuple[int, bytes | None]:
    """The newest room checkpoint at or before ``upto_id``: ``(its log id, its state)``."""
    row = session.execute(
        select(Checkpoint.upto_id, Checkpoint.state)
        .where(Checkpoint.plan_id == plan_id, Checkpoint.doc == doc, Checkpoint.upto_id <= upto_id)
        .order_by(Checkpoint.upto_id.desc())
        .limit(1)
    ).first()
    return (row.upto_id, row.state) if row is not None else (0, None)


def segments_between(
    *, session: Session, plan_id: str, after_id: int, upto_id: int, doc: str = "plan"
) -> list[tuple[int, int, bytes]]:
    """``(after_id, upto_id, update)`` of the segments ending in ``(after_id, upto_id]``, in
    log order."""
    rows = session.execute(
        select(HistorySnapshot.after_id, HistorySnapshot.upto_id, HistorySnapshot.state)
        .where(
            HistorySnapshot.plan_id == plan_id,
            HistorySnapshot.doc == doc,
            HistorySnapshot.upto_id > after_id,
            HistorySnapshot.upto_id <= upto_id,
        )
        .order_by(HistorySnapshot.upto_id)
    ).all()
    return [(r.after_id, r.upto_id, r.state) for r in rows]


def segments_end(*, session: Session, plan_id: str, doc: str = "plan") -> int:
    """The log id the segments reach (0: none yet)."""
    return (
        session.scalar(
            select(func.max(HistorySnapshot.upto_id)).where(
                HistorySnapshot.plan_id == plan_id, HistorySnapshot.doc == doc
            )
        )
        or 0
    )


def save_segments(
    *,
    session: Session,
    plan_id: str,
    segments: Sequence[tuple[int, int, bytes]],
    doc: str = "plan",
) -> int:
    """Keep ``(after_id, upto_id, update)`` segments; one already there is left as it is.
    Returns how many were added."""
    kept = 0
    for after_id, upto_id, data in segments:
        if session.get(HistorySnapshot, (plan_id, doc, upto_id)) is None:
            session.add(
                HistorySnapshot(
                    plan_id=plan_id, doc=doc, upto_id=upto_id, after_id=after_id, state=data
                )
            )
            kept += 1
    session.flush()
    return kept


def updates_between(
    *, session: Session, plan_id: str, after_id: int, upto_id: int, doc: str = "plan"
) -> list[tuple[int, bytes]]:
    rows = session.execute(
        select(PlanUpdate.id, PlanUpdate.data)
        .where(
            PlanUpdate.plan_id == plan_id,
            PlanUpdate.doc == doc,
            PlanUpdate.id > after_id,
            PlanUpdate.id <= upto_id,
        )
        .order_by(PlanUpdate.id)
    ).all()
    return [(r.id, r.data) for r in rows]


def holds_updates_after(
    *, session: Session, plan_id: str, after_id: int, count: int, doc: str = "plan"
) -> bool:
    """Whether the log holds at least ``count`` entries after ``after_id``: ``count`` steps
    along the (plan, doc, id) index, reading no update."""
    return (
        session.scalar(
            select(PlanUpdate.id)
            .where(PlanUpdate.plan_id == plan_id, PlanUpdate.doc == doc, PlanUpdate.id > after_id)
            .order_by(PlanUpdate.id)
            .offset(count - 1)
            .limit(1)
        )
        is not None
    )


def updates_after(
    *, session: Session, plan_id: str, after_id: int, doc: str = "plan", limit: int = 1000
) -> list[tuple[int, datetime, bytes]]:
    """``(id, written at, update)`` of the first ``limit`` log entries after ``after_id``."""
    rows = session.execute(
        select(PlanUpdate.id, PlanUpdate.created_at, PlanUpdate.data)
        .where(PlanUpdate.plan_id == plan_id, PlanUpdate.doc == doc, PlanUpdate.id > after_id)
        .order_by(PlanUpdate.id)
        .limit(limit)
    ).all()
    return [(r.id, utc(r.created_at), r.data) for r in rows]


def log_marks_before(
    *, session: Session, plan_id: str, before_id: int | None, doc: str = "plan", limit: int = 5000
) -> list[tuple[int, datetime, int | None]]:
    """``(id, written at, author)`` of the log entries before ``before_id`` (all: None),
    newest first, without their updates."""
    q = select(PlanUpdate.id, PlanUpdate.created_at, PlanUpdate.author_id).where(
        PlanUpdate.plan_id == plan_id, PlanUpdate.doc == doc
    )
    if before_id is not None:
        q = q.where(PlanUpdate.id < before_id)
    rows = session.execute(q.order_by(PlanUpdate.id.desc()).limit(limit)).all()
    return [(r.id, utc(r.created_at), r.author_id) for r in rows]


def log_position(*, session: Session, plan_id: str, upto_id: int, doc: str = "plan") -> int:
    """How many entries of a document's log are at or before ``upto_id``."""
    return (
        session.scalar(
            select(func.count()).where(
                PlanUpdate.plan_id == plan_id, PlanUpdate.doc == doc, PlanUpdate.id <= upto_id
            )
        )
        or 0
    )


def cached_session_ends(
    *, session: Session, plan_id: str, low: int, high: int, doc: str = "plan"
) -> set[int]:
    """The last log ids of the cached sessions ending in ``[low, high]``."""
    return set(
        session.scalars(
            select(HistorySession.last_id).where(
                HistorySession.plan_id == plan_id,
                HistorySession.doc == doc,
                HistorySession.last_id >= low,
                HistorySession.last_id <= high,
            )
        )
    )


def log_rows(
    *, session: Session, plan_id: str, after_id: int, doc: str = "plan", limit: int = 5000
) -> list[tuple[int, datetime, int | None, bytes]]:
    rows = session.execute(
        select(PlanUpdate.id, PlanUpdate.created_at, PlanUpdate.author_id, PlanUpdate.data)
        .where(PlanUpdate.plan_id == plan_id, PlanUpdate.doc == doc, PlanUpdate.id > after_id)
        .order_by(PlanUpdate.id)
        .limit(limit)
    ).all()
    return [(r.id, utc(r.created_at), r.author_id, r.data) for r in rows]


# --- cached sessions -------------------------------------------------------------------------


def _session(r: HistorySession) -> SessionRecord:
    return SessionRecord(
        first_id=r.first_id,
        last_id=r.last_id,
        started_at=utc(r.started_at),
        ended_at=utc(r.ended_at),
        updates=r.updates,
        authors=list(r.authors),
        text=list(r.text),
    )


def save_sessions(
    *, session: Session, plan_id: str, sessions: Sequence[SessionRecord], doc: str = "plan"
) -> None:
    for s in sessions:
        found = session.get(HistorySession, (plan_id, doc, s.first_id))
        if found is not None:
            if found.last_id == s.last_id:
                continue
            session.delete(found)  # cut differently before: the new reading replaces it
            session.flush()
        session.add(
            HistorySession(
                plan_id=plan_id,
                doc=doc,
                first_id=s.first_id,
                last_id=s.last_id,
                started_at=s.started_at,
                ended_at=s.ended_at,
                updates=s.updates,
                authors=s.authors,
                text=s.text,
            )
        )
    session.flush()


def cached_sessions(
    *,
    session: Session,
    plan_id: str,
    before_id: int | None = None,
    limit: int = 50,
    doc: str = "plan",
) -> list[SessionRecord]:
    """Closed sessions, newest first, starting before log id ``before_id``."""
    q = select(HistorySession).where(HistorySession.plan_id == plan_id, HistorySession.doc == doc)
    if before_id is not None:
        q = q.where(HistorySession.first_id < before_id)
    rows = session.scalars(q.order_by(HistorySession.first_id.desc()).limit(limit))
    return [_session(r) for r in rows]


# --- commitment events in a log range ----------------------------------------------------------


def audit_between(
    *, session: Session, plan_id: str, after_id: int, upto_id: int
) -> list[dict[str, Any]]:
    """Commitment-history events made by updates in ``(after_id, upto_id]``, oldest first."""
    rows = session.execute(
        select(HistoryEvent, User.name)
        .outerjoin(User, User.id == HistoryEvent.author_id)
        .where(
            HistoryEvent.plan_id == plan_id,
            HistoryEvent.update_id > after_id,
            HistoryEvent.update_id <= upto_id,
        )
        .order_by(HistoryEvent.update_id, HistoryEvent.id)
    ).all()
    return [
        {
            "id": e.id,
            "entity": e.entity,
            "entity_id": e.entity_id,
            "kind": e.kind,
            "old": e.old,
            "new": e.new,
            "author_id": e.author_id,
            "author_name": name,
            "at": utc(e.at),
            "update_id": e.update_id,
        }
        for e, name in rows
    ]


def user_names(*, session: Session, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.name).where(User.id.in_(ids))).tuples().all())


# --- last visits -----------------------------------------------------------------------------


def last_seen(*, session: Session, plan_id: str, user_id: int) -> int | None:
    return session.scalar(
        select(PlanVisit.seen_id).where(PlanVisit.plan_id == plan_id, PlanVisit.user_id == user_id)
    )


def mark_seen(*, session: Session, plan_id: str, user_id: int, seen_id: int) -> None:
    row = session.get(PlanVisit, (plan_id, user_id))
    if row is None:
        session.add(PlanVisit(plan_id=plan_id, user_id=user_id, seen_id=seen_id, seen_at=now()))
    else:
        row.seen_id = max(row.seen_id, seen_id)
        row.seen_at = now()
    session.flush()

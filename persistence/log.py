"""The append-only update log and its checkpoints."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from .models import Checkpoint, Plan, PlanProjection, PlanUpdate
from .records import PlanHistory, now, utc

# A plan keeps this many newest checkpoints: the newest, and one before it in case it is
# unreadable (plus the newest its projected tables have reached; see save_checkpoint).
KEEP_CHECKPOINTS = 2


def append_updates(
    *,
    session: Session | Connection,
    plan_id: str,
    entries: Sequence[tuple[int | None, bytes]],
    doc: str = "plan",
    touch: bool = True,
) -> list[int]:
    """Append ``(author_id, update)`` entries to a plan's log in order; return their ids.

    One call is one group commit: the caller's transaction makes all of them durable at once.
    With ``touch`` the plan's ``updated_at`` becomes the time they were logged (a busy room
    touches it now and then rather than on every commit: one page less to write and fsync).

    Core statements, not ORM objects: this runs for every batch of keystrokes, and the ORM's
    unit of work cost three times the SQL itself; one entry (the usual batch) is one plain
    INSERT ... RETURNING. Works in a Session or on a bare Connection (the rooms' writer).
    """
    at = now()
    rows = [
        {"plan_id": plan_id, "doc": doc, "created_at": at, "author_id": a, "data": d}
        for a, d in entries
    ]
    if len(rows) == 1:
        ids = [session.execute(_INSERT_ONE, rows[0]).scalar_one()]
    else:
        ids = list(session.execute(_INSERT_MANY, rows).scalars())
    if touch and doc == "plan":  # internal edits must not show customers when the vendor was busy
        session.execute(_PLANS.update().where(_PLANS.c.id == plan_id).values(updated_at=at))
    return ids


def append_updates_chained(
    *,
    session: Connection,
    plan_id: str,
    entries: Sequence[tuple[int | None, bytes]],
    doc: str = "plan",
    touch: bool = True,
) -> tuple[int, list[int]]:
    """``append_updates`` for several processes writing one document (PostgreSQL only): also
    returns the id of the document's newest entry before these (0: none).

    A transaction-scoped advisory lock on the document is taken before the ids are drawn, so
    the document's entries commit in id order: whoever sees an entry of it sees every one
    with a smaller id. Ids come from one sequence, so without the lock a transaction that
    drew a smaller id could commit after one that drew a larger. With the previous id each
    batch names its predecessor, and a reader can tell whether it has all of them.
    """
    session.execute(_LOCK, {"key": f"tandem-log:{plan_id}:{doc}"})
    prev = session.execute(_LAST, {"plan_id": plan_id, "doc": doc}).scalar() or 0
    return prev, append_updates(
        session=session, plan_id=plan_id, entries=entries, doc=doc, touch=touch
    )


def log_after(
    *, session: Session | Connection, plan_id: str, after_id: int, doc: str = "plan"
) -> list[tuple[int, bytes]]:
    """``(id, update)`` of a document's entries after ``after_id``, oldest first."""
    q = (
        select(PlanUpdate.id, PlanUpdate.data)
        .where(PlanUpdate.plan_id == plan_id, PlanUpdate.doc == doc, PlanUpdate.id > after_id)
        .order_by(PlanUpdate.id)
    )
    return [(r.id, r.data) for r in session.execute(q).all()]


def log_tops(
    *, session: Session | Connection, rooms: Sequence[tuple[str, str]]
) -> list[tuple[str, str, int]]:
    """``(plan id, doc, newest id)`` of each of ``rooms`` (``(plan id, doc)`` pairs) that has
    entries: one backward step in the (plan, doc, id) index each, in one statement per 200."""
    out: list[tuple[str, str, int]] = []
    for start in range(0, len(rooms), 200):
        top = [
            select(
                literal(plan_id),
                literal(doc),
                select(func.max(PlanUpdate.id))
                .where(PlanUpdate.plan_id == plan_id, PlanUpdate.doc == doc)
                .scalar_subquery(),
            )
            for plan_id, doc in rooms[start : start + 200]
        ]
        rows = session.execute(union_all(*top)).all()
        out += [(str(p), str(d), int(t)) for p, d, t in rows if t is not None]
    return out


# A mapped class's __table__ is a Table; the declarative base types it as any FromClause.
_UPDATES = cast(Table, PlanUpdate.__table__)
_PLANS = cast(Table, Plan.__table__)
_INSERT_ONE = insert(_UPDATES).returning(_UPDATES.c.id)
_INSERT_MANY = insert(_UPDATES).returning(_UPDATES.c.id, sort_by_parameter_order=True)
_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_LAST = select(func.max(_UPDATES.c.id)).where(
    _UPDATES.c.plan_id == bindparam("plan_id"), _UPDATES.c.doc == bindparam("doc")
)


def load_history(*, session: Session, plan_id: str, doc: str = "plan") -> PlanHistory:
    """The newest checkpoint of a plan and every update logged after it, oldest first."""
    cp = session.execute(
        select(Checkpoint.state, Checkpoint.upto_id)
        .where(Checkpoint.plan_id == plan_id, Checkpoint.doc == doc)
        .order_by(Checkpoint.upto_id.desc())
        .limit(1)
    ).first()
    upto = cp.upto_id if cp else 0
    rows = session.execute(
        select(PlanUpdate.id, PlanUpdate.data)
        .where(PlanUpdate.plan_id == plan_id, PlanUpdate.doc == doc, PlanUpdate.id > upto)
        .order_by(PlanUpdate.id)
    ).all()
    last = rows[-1].id if rows else upto
    return PlanHistory(
        checkpoint=cp.state if cp else None,
        checkpoint_upto=upto,
        updates=[r.data for r in rows],
        last_id=last,
    )


def checkpoint_at_or_before(
    *, session: Session, plan_id: str, upto_id: int, doc: str = "plan"
) -> tuple[int, bytes] | None:
    """``(upto_id, state)`` of the newest checkpoint that covers no update after ``upto_id``,
    if one is still kept."""
    row = session.execute(
        select(Checkpoint.upto_id, Checkpoint.state)
        .where(Checkpoint.plan_id == plan_id, Checkpoint.doc == doc)
        .where(Checkpoint.upto_id <= upto_id)
        .order_by(Checkpoint.upto_id.desc())
        .limit(1)
    ).first()
    return (row.upto_id, row.state) if row else None


def log_entries(
    *,
    session: Session,
    plan_id: str,
    after_id: int = 0,
    upto_id: int | None = None,
    doc: str = "plan",
) -> list[tuple[int, datetime, int | None, bytes]]:
    """Raw log rows ``(id, created_at, author_id, update)`` in order, for replay and audits."""
    q = select(PlanUpdate.id, PlanUpdate.created_at, PlanUpdate.author_id, PlanUpdate.data).where(
        PlanUpdate.plan_id == plan_id, PlanUpdate.doc == doc, PlanUpdate.id > after_id
    )
    if upto_id is not None:
        q = q.where(PlanUpdate.id <= upto_id)
    # utc(): SQLite hands back naive datetimes; callers get aware UTC on every backend.
    return [
        (r.id, utc(r.created_at), r.author_id, r.data)
        for r in session.execute(q.order_by(PlanUpdate.id)).all()
    ]


def count_updates(*, session: Session, plan_id: str, doc: str = "plan") -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(PlanUpdate)
            .where(PlanUpdate.plan_id == plan_id, PlanUpdate.doc == doc)
        )
        or 0
    )


def save_checkpoint(
    *, session: Session, plan_id: str, upto_id: int, state: bytes, doc: str = "plan"
) -> None:
    """Record the merged state up to ``upto_id``, keeping the two newest checkpoints and, for
    the shared document, the newest one the projected tables have caught up with.

    Each checkpoint is a whole copy of the document, so keeping all of them grows with the
    square of a plan's history; the log itself is never shortened, so nothing is lost. The
    third one is what the materialiser rebuilds its view from after a restart: when the tables
    lag more than two checkpoints behind (a busy plan, a crash), it would otherwise replay the
    whole log.
    """
    session.add(
        Checkpoint(plan_id=plan_id, doc=doc, upto_id=upto_id, created_at=now(), state=state)
    )
    session.flush()
    mine = select(Checkpoint.id).where(Checkpoint.plan_id == plan_id, Checkpoint.doc == doc)
    newest = mine.order_by(Checkpoint.upto_id.desc(), Checkpoint.id.desc())
    keep = set(session.scalars(newest.limit(KEEP_CHECKPOINTS)))
    if doc == "plan":
        mark = select(PlanProjection.upto_id).where(PlanProjection.plan_id == plan_id)
        seen = session.scalar(newest.where(Checkpoint.upto_id <= mark.scalar_subquery()).limit(1))
        if seen is not None:
            keep.add(seen)
    session.execute(
        delete(Checkpoint).where(
            Checkpoint.plan_id == plan_id, Checkpoint.doc == doc, Checkpoint.id.not_in(keep)
        )
    )


def last_log_id(*, session: Session, plan_id: str | None = None, doc: str = "plan") -> int:
    """The newest log id (0: none): of one plan's ``doc``, or of the whole log (every plan,
    every document) when ``plan_id`` is None."""
    q = select(func.max(PlanUpdate.id))
    if plan_id is not None:
        q = q.where(PlanUpdate.plan_id == plan_id, PlanUpdate.doc == doc)
    return session.scalar(q) or 0


def log_heads(*, session: Session, after_id: int) -> list[tuple[str, int]]:
    """``(plan id, its newest log id)`` for plans whose shared document has entries after
    ``after_id``: what a follower of the log polls for (a range scan of the primary key)."""
    q = (
        select(PlanUpdate.plan_id, func.max(PlanUpdate.id))
        .where(PlanUpdate.id > after_id, PlanUpdate.doc == "plan")
        .group_by(PlanUpdate.plan_id)
    )
    return [(plan_id, top) for plan_id, top in session.execute(q).all()]

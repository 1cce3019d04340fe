"""The plan as data: tasks, key results, risks and contacts, projected from the update log,
with the commitment history written in the same step (``commitment_history``). Every write is
one call inside the caller's transaction, guarded by the watermark
(``plan_projections.upto_id``), so a projection is never half-written or written twice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .commitment_history import Merge, record_changes
from .models import (
    HistoryEvent,
    Plan,
    PlanContact,
    PlanKeyResult,
    PlanProjection,
    PlanRisk,
    PlanTask,
    PlanUpdate,
)
from .records import now, utc

#: Entity tables by the name callers use.
TABLES: dict[str, Any] = {
    "tasks": PlanTask,
    "key_results": PlanKeyResult,
    "risks": PlanRisk,
    "contacts": PlanContact,
}


def projection_watermark(*, session: Session, plan_id: str) -> int:
    """The last log id the projection has taken in (0: none)."""
    return (
        session.scalar(select(PlanProjection.upto_id).where(PlanProjection.plan_id == plan_id)) or 0
    )


def plans_behind(*, session: Session) -> list[tuple[str, int | None]]:
    """``(plan id, author of its last update)`` for plans whose update log goes further than
    their projection (a crash, an upgrade): the materialiser catches them up at start."""
    last = (
        select(PlanUpdate.plan_id, func.max(PlanUpdate.id).label("last"))
        # Only the shared document is projected: the internal account plan never reaches
        # these customer-visible tables.
        .where(PlanUpdate.doc == "plan")
        .group_by(PlanUpdate.plan_id)
        .subquery()
    )
    q = (
        select(last.c.plan_id, PlanUpdate.author_id)
        .join(PlanUpdate, PlanUpdate.id == last.c.last)
        .outerjoin(PlanProjection, PlanProjection.plan_id == last.c.plan_id)
        .where(last.c.last > func.coalesce(PlanProjection.upto_id, 0))
        .order_by(last.c.plan_id)
    )
    return [(plan_id, author_id) for plan_id, author_id in session.execute(q).all()]


def worker_lag(*, session: Session) -> tuple[int, int, datetime | None]:
    """How far the projection is behind the log: ``(plans behind, updates not yet
    materialised, when the oldest of them was logged)`` (None: nothing waits). One index
    range per plan, from its watermark on: cheap when the worker keeps up."""
    mark = func.coalesce(PlanProjection.upto_id, 0)
    waiting = (
        select(
            PlanUpdate.plan_id,
            func.count().label("n"),
            func.min(PlanUpdate.created_at).label("oldest"),
        )
        .select_from(Plan)
        .outerjoin(PlanProjection, PlanProjection.plan_id == Plan.id)
        .join(
            PlanUpdate,
            (PlanUpdate.plan_id == Plan.id) & (PlanUpdate.doc == "plan") & (PlanUpdate.id > mark),
        )
        .group_by(PlanUpdate.plan_id)
        .subquery()
    )
    plans, updates, oldest = session.execute(
        select(func.count(), func.coalesce(func.sum(waiting.c.n), 0), func.min(waiting.c.oldest))
    ).one()
    return int(plans), int(updates), utc(oldest)


def write_projection(
    *,
    session: Session,
    plan_id: str,
    expect_upto: int,
    upto_id: int,
    upserts: Mapping[str, Sequence[Mapping[str, Any]]],
    deletes: Mapping[str, Sequence[str]],
    events: Sequence[Mapping[str, Any]],
    replace: bool = False,
    merge: Merge | None = None,
    merge_window: timedelta = timedelta(seconds=60),
) -> bool:
    """Apply one step of the projection, if the watermark is still ``expect_upto``.

    ``upserts`` are full rows (``id`` included) per table name; ``deletes`` ids per table name;
    ``events`` commitment-history rows (entity, entity_id, kind, old, new, author_id, at,
    update_id).
    With ``replace``, every row and event of the plan goes first (a rebuild). ``merge`` folds an
    event into the entity's latest one when it returns ``(old, new)``: only for the same author
    within ``merge_window`` of it, so a sentence typed key by key is one event. Returns False,
    writing nothing, when someone else moved the watermark meanwhile.
    """
    mark = session.execute(
        select(PlanProjection).where(PlanProjection.plan_id == plan_id).with_for_update()
    ).scalar_one_or_none()
    if not replace and (mark.upto_id if mark else 0) != expect_upto:
        return False
    before: list[Any] = []
    if replace:
        before = list(session.execute(_entries(plan_id)).all())
        for model in (*TABLES.values(), HistoryEvent):
            session.execute(delete(model).where(model.plan_id == plan_id))
    for name, model in TABLES.items():
        gone = {*deletes.get(name, ()), *(r["id"] for r in upserts.get(name, ()))}
        if gone and not replace:
            session.execute(delete(model).where(model.plan_id == plan_id, model.id.in_(gone)))
        rows = upserts.get(name, ())
        if rows:
            session.add_all(model(plan_id=plan_id, **row) for row in rows)
    added = record_changes(session, plan_id, events, merge, merge_window, fresh=replace)
    _keep_ids(before, added)
    if mark is None:
        session.add(PlanProjection(plan_id=plan_id, upto_id=upto_id, updated_at=now()))
    else:
        mark.upto_id = upto_id
        mark.updated_at = now()
    session.flush()
    return True


_SAME = ("entity", "entity_id", "kind", "old", "new", "author_id", "update_id")


def _entries(plan_id: str) -> Any:
    """A plan's history entries as plain rows (not objects the session would keep), in order."""
    columns = (HistoryEvent.id, *(getattr(HistoryEvent, name) for name in _SAME))
    return select(*columns).where(HistoryEvent.plan_id == plan_id).order_by(HistoryEvent.id)


def _keep_ids(before: Sequence[Any], added: Sequence[HistoryEvent]) -> None:
    """A rebuild gives the entries it writes again the ids they had, as far as the history
    written anew is the history that was there: messages are keyed by an entry's id (a key
    result moved, a risk raised), and an entry with a new id would be news again to whoever
    folds a key into it. From the first entry that differs on, new ids, so that ids still
    follow the order entries were made in."""
    for old, row in zip(before, added, strict=False):
        if any(getattr(old, name) != getattr(row, name) for name in _SAME):
            return
        row.id = old.id


def _plain(row: Any) -> dict[str, Any]:
    out = {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key != "plan_id"}
    return out


def list_tasks(
    *,
    session: Session,
    plan_id: str,
    owner: str | None = None,
    side: str | None = None,
    status: str | None = None,
    due_before: date | None = None,
    due_after: date | None = None,
    milestone: bool | None = None,
) -> list[dict[str, Any]]:
    """Tasks in document order. ``owner`` matches the mention id or, case-insensitively, its
    label; ``side`` is vendor, customer, unknown (an owner with no side) or unassigned (no
    owner); dates are inclusive."""
    q = select(PlanTask).where(PlanTask.plan_id == plan_id)
    if owner is not None:
        q = q.where(
            (PlanTask.owner_ref == owner) | (func.lower(PlanTask.owner_label) == owner.lower())
        )
    if side == "unassigned":
        q = q.where(PlanTask.owner_ref.is_(None), PlanTask.owner_label.is_(None))
    elif side == "unknown":  # an owner whose side nobody gave (a bare typed name)
        q = q.where(PlanTask.owner_side.is_(None), PlanTask.owner_label.is_not(None))
    elif side is not None:
        q = q.where(PlanTask.owner_side == side)
    if status is not None:
        q = q.where(PlanTask.status == status)
    if due_before is not None:
        q = q.where(PlanTask.due <= due_before)
    if due_after is not None:
        q = q.where(PlanTask.due >= due_after)
    if milestone is not None:
        q = q.where(PlanTask.milestone.is_(milestone))
    return [_plain(r) for r in session.scalars(q.order_by(PlanTask.position)).all()]


def list_rows(*, session: Session, plan_id: str, table: str) -> list[dict[str, Any]]:
    """Key results, risks or contacts (``table``) in document order."""
    model = TABLES[table]
    q = select(model).where(model.plan_id == plan_id).order_by(model.position)
    return [_plain(r) for r in session.scalars(q).all()]


def rows_of_plans(
    *, session: Session, plan_ids: list[str], table: str
) -> dict[str, list[dict[str, Any]]]:
    """Tasks, key results or risks of many plans in one query, by plan, in document order."""
    model = TABLES[table]
    out: dict[str, list[dict[str, Any]]] = {p: [] for p in plan_ids}
    if not plan_ids:
        return out
    q = select(model).where(model.plan_id.in_(plan_ids)).order_by(model.plan_id, model.position)
    for r in session.scalars(q).all():
        out[r.plan_id].append(_plain(r))
    return out

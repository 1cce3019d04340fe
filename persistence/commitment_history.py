"""The commitment history (table ``audit_events``, named before the access log had a name of
its own): each change to a task, key result, risk or contact, attributed from the update log.
The materialiser writes it with the projection (``write_projection``); pages and the API read
it. Not the access log (``access_log``: who gave, used or took away access)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import HistoryEvent, User
from .records import utc


@dataclass(frozen=True)
class HistoryRecord:
    """One entry of the commitment history: a change to a task, key result, risk or contact."""

    id: int
    entity: str
    entity_id: str
    kind: str
    old: Any
    new: Any
    author_id: int | None
    author_name: str | None
    at: datetime
    update_id: int


#: ``merge(previous, event)``: both as dicts with kind, old, new; ``(old, new)`` to fold.
Merge = Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[Any, Any] | None]


def record_changes(
    session: Session,
    plan_id: str,
    events: Sequence[Mapping[str, Any]],
    merge: Merge | None,
    window: timedelta,
    *,
    fresh: bool,
) -> list[HistoryEvent]:
    """Add ``events`` to the commitment history of a plan, folding each into the entity's
    latest entry where ``merge`` says so (``fresh``: the plan's history was just emptied).
    Returns the entries added, in the order they were made (not yet flushed: no ids)."""
    latest: dict[tuple[str, str], HistoryEvent | None] = {}
    added: list[HistoryEvent] = []
    for e in events:
        key = (e["entity"], e["entity_id"])
        if merge is not None:
            if key not in latest and not fresh:
                latest[key] = session.scalars(
                    select(HistoryEvent)
                    .where(
                        HistoryEvent.plan_id == plan_id,
                        HistoryEvent.entity_id == e["entity_id"],
                        HistoryEvent.entity == e["entity"],
                    )
                    .order_by(HistoryEvent.id.desc())
                    .limit(1)
                ).first()
            prev = latest.get(key)
            if (
                prev is not None
                and prev.author_id == e["author_id"]
                and e["at"] - utc(prev.at) <= window
            ):
                folded = merge({"kind": prev.kind, "old": prev.old, "new": prev.new}, e)
                if folded is not None:
                    if prev.kind != "created" and folded[0] == folded[1]:
                        # Typed and typed back: nothing changed, so no entry at all.
                        if prev in session.new:
                            session.expunge(prev)
                            added.remove(prev)
                        else:
                            session.delete(prev)
                        latest[key] = None
                        continue
                    prev.old, prev.new = folded
                    prev.at, prev.update_id = e["at"], e["update_id"]
                    continue
        row = HistoryEvent(plan_id=plan_id, **e)
        session.add(row)
        added.append(row)
        latest[key] = row
    return added


def latest_change(
    *, session: Session, plan_id: str, entity: str, entity_id: str, kind: str
) -> HistoryRecord | None:
    """The newest commitment-history entry of one entity of ``kind``: what its last changes
    of that kind were folded into (its ``update_id`` is the last update folded in, its ``id``
    stays). One update may make entries of several kinds (a key result's value and its
    target), so the newest of any kind would not be the value's."""
    row = session.execute(
        select(HistoryEvent, User.name)
        .outerjoin(User, User.id == HistoryEvent.author_id)
        .where(
            HistoryEvent.plan_id == plan_id,
            HistoryEvent.entity == entity,
            HistoryEvent.entity_id == entity_id,
            HistoryEvent.kind == kind,
        )
        .order_by(HistoryEvent.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return _record(*row)


def get_change(*, session: Session, plan_id: str, change_id: int) -> HistoryRecord | None:
    """One entry of a plan's commitment history by its id; None once it is gone (typed back)."""
    row = session.execute(
        select(HistoryEvent, User.name)
        .outerjoin(User, User.id == HistoryEvent.author_id)
        .where(HistoryEvent.plan_id == plan_id, HistoryEvent.id == change_id)
    ).first()
    return None if row is None else _record(*row)


def list_history(
    *, session: Session, plan_id: str, before_id: int | None = None, limit: int = 200
) -> list[HistoryRecord]:
    """A plan's commitment history, newest first, ``limit`` at a time after ``before_id``."""
    q = (
        select(HistoryEvent, User.name)
        .outerjoin(User, User.id == HistoryEvent.author_id)
        .where(HistoryEvent.plan_id == plan_id)
    )
    if before_id is not None:
        # A folded event takes the time of its last change but keeps its id: the page is in
        # time order, and the cursor continues after the (time, id) of the event it names.
        cursor = session.get(HistoryEvent, before_id)
        if cursor is not None:
            q = q.where(
                (HistoryEvent.at < cursor.at)
                | ((HistoryEvent.at == cursor.at) & (HistoryEvent.id < cursor.id))
            )
        else:
            q = q.where(HistoryEvent.id < before_id)
    newest = (HistoryEvent.at.desc(), HistoryEvent.id.desc())
    rows = session.execute(q.order_by(*newest).limit(limit)).all()
    return [_record(e, name) for e, name in rows]


def _record(e: HistoryEvent, name: str | None) -> HistoryRecord:
    return HistoryRecord(
        id=e.id,
        entity=e.entity,
        entity_id=e.entity_id,
        kind=e.kind,
        old=e.old,
        new=e.new,
        author_id=e.author_id,
        author_name=name,
        at=utc(e.at),
        update_id=e.update_id,
    )

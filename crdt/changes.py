"""What changed between two structure snapshots, as typed events with old and new values."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .structure import Mention, Owner, Row, Structure, Task


class Entity(StrEnum):
    TASK = "task"
    KEY_RESULT = "key_result"
    RISK = "risk"
    CONTACT = "contact"
    MENTION = "mention"  # never in the commitment history: see ``new_mentions``


ENTITY_OF_ROW = {
    "key_results": Entity.KEY_RESULT,
    "risks": Entity.RISK,
    "contacts": Entity.CONTACT,
}


class Kind(StrEnum):
    CREATED = "created"
    REMOVED = "removed"
    TEXT_CHANGED = "text_changed"
    REASSIGNED = "reassigned"
    DUE_MOVED = "due_moved"
    COMPLETED = "completed"
    REOPENED = "reopened"
    STATUS_CHANGED = "status_changed"
    MILESTONE_CHANGED = "milestone_changed"
    KR_VALUE_CHANGED = "kr_value_changed"
    RISK_SEVERITY_CHANGED = "risk_severity_changed"
    FIELD_CHANGED = "field_changed"
    MENTIONED = "mentioned"


@dataclass(frozen=True)
class Event:
    """One change to one entity. ``old``/``new`` are JSON values (None when absent)."""

    entity: Entity
    entity_id: str
    kind: Kind
    old: Any
    new: Any


def owner_json(owner: Owner | None) -> dict[str, Any] | None:
    if owner is None:
        return None
    return {"id": owner.id, "label": owner.label, "side": owner.side}


def task_json(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "text": task.text,
        "owner": owner_json(task.owner),
        "due": task.due,
        "status": task.status,
        "checked": task.checked,
        "milestone": task.milestone,
        "section": list(task.section),
    }


def row_json(row: Row) -> dict[str, Any]:
    return {"id": row.id, **dict(row.fields)}


def _wording(task: Task) -> str:
    """The task's text without its owner chip: a new owner is a reassignment, not a rewording."""
    if task.owner is None:
        return task.text
    return " ".join(task.text.replace(f"@{task.owner.label}", " ", 1).split())


def _blank_task(task: Task) -> bool:
    return not task.text and task.owner is None and task.due is None and not task.checked


def _task_events(old: Task, new: Task) -> list[Event]:
    out: list[Event] = []

    def ev(kind: Kind, a: Any, b: Any) -> None:
        out.append(Event(Entity.TASK, new.id, kind, a, b))

    if _wording(old) != _wording(new):
        ev(Kind.TEXT_CHANGED, old.text, new.text)
    if old.owner != new.owner:
        ev(Kind.REASSIGNED, owner_json(old.owner), owner_json(new.owner))
    if old.due != new.due:
        ev(Kind.DUE_MOVED, old.due, new.due)
    if old.status != new.status:
        if new.status == "done":
            ev(Kind.COMPLETED, old.status, new.status)
        elif old.status == "done":
            ev(Kind.REOPENED, old.status, new.status)
        else:
            ev(Kind.STATUS_CHANGED, old.status, new.status)
    if old.milestone != new.milestone:
        ev(Kind.MILESTONE_CHANGED, old.milestone, new.milestone)
    return out


def _row_events(old: Row, new: Row) -> list[Event]:
    entity = ENTITY_OF_ROW[new.kind]
    a, b = dict(old.fields), dict(new.fields)
    out: list[Event] = []
    rest_old, rest_new = {}, {}
    for name in sorted(set(a) | set(b)):
        va, vb = a.get(name, ""), b.get(name, "")
        if va == vb:
            continue
        if entity is Entity.KEY_RESULT and name == "current":
            out.append(Event(entity, new.id, Kind.KR_VALUE_CHANGED, va, vb))
        elif entity is Entity.RISK and name == "severity":
            out.append(Event(entity, new.id, Kind.RISK_SEVERITY_CHANGED, va, vb))
        elif entity is Entity.RISK and name == "owner":
            out.append(Event(entity, new.id, Kind.REASSIGNED, va, vb))
        else:
            rest_old[name], rest_new[name] = va, vb
    if rest_old:
        out.append(Event(entity, new.id, Kind.FIELD_CHANGED, rest_old, rest_new))
    return out


@dataclass(frozen=True)
class Touched:
    """What may differ between two structures, from whoever made the second out of the first
    (``StructureReader.touched``): the ids of tasks and rows, in document order, where the two
    hold the same tasks and rows in the same places, and the anchors of changed mentions.
    Given to ``diff``, ``changed_ids`` and ``new_mentions``, they compare only those."""

    tasks: tuple[str, ...] = ()
    rows: tuple[str, ...] = ()
    anchors: frozenset[str] = frozenset()
    # When tasks or rows were added or removed: those that were there, in their order then.
    old_tasks: tuple[str, ...] | None = None
    old_rows: tuple[str, ...] | None = None

    def __or__(self, other: Touched) -> Touched:
        """Both together, for ``changed_ids`` (not for ``diff``: the order is lost)."""

        def ids(t: Touched, rows: bool) -> tuple[str, ...]:
            return (t.rows + (t.old_rows or ())) if rows else (t.tasks + (t.old_tasks or ()))

        return Touched(
            tuple(dict.fromkeys(ids(self, False) + ids(other, False))),
            tuple(dict.fromkeys(ids(self, True) + ids(other, True))),
            self.anchors | other.anchors,
        )


def _old(before: tuple[str, ...] | None, ids: tuple[str, ...]) -> tuple[str, ...]:
    return ids if before is None else before


def diff(old: Structure, new: Structure, touched: Touched | None = None) -> list[Event]:
    """Events turning ``old`` into ``new``: tasks first, then rows, each in document order.

    A blank task (Enter pressed, nothing in it yet) is not a commitment, as a blank table row is
    not a row (the reader skips those): it has no events. It is "created" once something is
    written in it, and "removed" when it is emptied or deleted after that.
    """
    new_order = new.tasks if touched is None else [i for i in touched.tasks if i in new.tasks]
    old_order = (
        old.tasks
        if touched is None
        else [i for i in _old(touched.old_tasks, touched.tasks) if i in old.tasks]
    )
    out: list[Event] = []
    for task_id in new_order:
        task = new.tasks[task_id]
        if _blank_task(task):
            continue
        before = old.tasks.get(task_id)
        if before is None or _blank_task(before):
            out.append(Event(Entity.TASK, task_id, Kind.CREATED, None, task_json(task)))
        elif before != task:
            out.extend(_task_events(before, task))
    for task_id in old_order:
        task = old.tasks[task_id]
        if _blank_task(task):
            continue
        after = new.tasks.get(task_id)
        if after is None or _blank_task(after):
            out.append(Event(Entity.TASK, task_id, Kind.REMOVED, task_json(task), None))
    new_rows = new.rows if touched is None else [i for i in touched.rows if i in new.rows]
    old_rows = (
        old.rows
        if touched is None
        else [i for i in _old(touched.old_rows, touched.rows) if i in old.rows]
    )
    for row_id in new_rows:
        row = new.rows[row_id]
        was = old.rows.get(row_id)
        if was is None or was.kind != row.kind:
            if was is not None:
                out.append(
                    Event(ENTITY_OF_ROW[was.kind], row_id, Kind.REMOVED, row_json(was), None)
                )
            out.append(Event(ENTITY_OF_ROW[row.kind], row_id, Kind.CREATED, None, row_json(row)))
        elif was.fields != row.fields:
            out.extend(_row_events(was, row))
    for row_id in old_rows:
        if row_id not in new.rows:
            row = old.rows[row_id]
            out.append(Event(ENTITY_OF_ROW[row.kind], row_id, Kind.REMOVED, row_json(row), None))
    return out


def changed_ids(
    old: Structure, new: Structure, touched: Touched | None = None
) -> tuple[set[str], set[str]]:
    """(task ids to upsert or delete, row ids to upsert or delete): position moves included."""
    if touched is None:
        task_ids, row_ids = set(old.tasks) | set(new.tasks), set(old.rows) | set(new.rows)
    else:
        task_ids = set(touched.tasks) | set(touched.old_tasks or ())
        row_ids = set(touched.rows) | set(touched.old_rows or ())
    tasks = {i for i in task_ids if old.tasks.get(i) != new.tasks.get(i)}
    rows = {i for i in row_ids if old.rows.get(i) != new.rows.get(i)}
    return tasks, rows


def new_mentions(old: Structure, new: Structure, touched: Touched | None = None) -> list[Event]:
    """A MENTIONED event for each person mentioned more often in a task, a table row or (anchor
    "") the text outside them than before: ``old`` the count before, ``new`` the mention (its
    ``count`` the count now). A mention has no id, so its identity is (anchor, person, count):
    a mention deleted and written again is not new; one more mention of the same person is.
    Edits around a mention, or moving it within its anchor, are nothing."""

    if touched is not None and (old.mentions is new.mentions or not touched.anchors):
        return []

    def grouped(s: Structure) -> dict[tuple[str, str], list[Mention]]:
        out: dict[tuple[str, str], list[Mention]] = {}
        for m in s.mentions:
            if touched is None or m.anchor in touched.anchors:
                out.setdefault((m.anchor, m.ref), []).append(m)
        return out

    before, after = grouped(old), grouped(new)
    out: list[Event] = []
    for (anchor, ref), now in after.items():
        was = before.get((anchor, ref), [])
        if len(now) <= len(was):
            continue
        # The one written now: the first whose paragraph was not there with it before.
        texts = [m.text for m in was]
        fresh = next((m for m in now if m.text not in texts), now[-1])
        new_value = {
            "ref": ref,
            "label": fresh.label,
            "anchor": anchor,
            "section": list(fresh.section),
            "text": fresh.text,
            "count": len(now),
        }
        out.append(Event(Entity.MENTION, ref, Kind.MENTIONED, len(was), new_value))
    return out

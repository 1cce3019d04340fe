"""From update log entries to table rows and commitment-history events: the one computation
that both the live materialiser and ``tandem plans rebuild`` run, so the two always agree.

Attribution: every log entry is applied on its own to a shadow copy of the document and the
structure diffed after it, so each event carries the author, time and id of the very update
that made it, however many people's updates one materialisation takes in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pycrdt import Doc

import crdt
from crdt import (
    Entity,
    Kind,
    Row,
    Structure,
    StructureReader,
    Task,
    Touched,
    changed_ids,
    diff,
    new_mentions,
    parse_number,
)

LogEntry = tuple[int, datetime, int | None, bytes]


@dataclass
class Shadow:
    """The document as the tables last saw it, its structure, and the reader that keeps the
    structure up to date by re-reading only what each update touched."""

    doc: Doc
    structure: Structure
    upto_id: int
    reader: StructureReader

    @classmethod
    def empty(cls) -> Shadow:
        doc = crdt.new_doc()
        return cls(doc, Structure(), 0, StructureReader(doc))

    @classmethod
    def replayed(
        cls, entries: Sequence[LogEntry], *, base: bytes | None = None, upto: int
    ) -> Shadow:
        """The document as of log id ``upto``: ``entries`` replayed on ``base`` (the state of
        a checkpoint that covers the log up to where ``entries`` start), when given."""
        doc = crdt.doc_from_updates((e[3] for e in entries), base=base)
        reader = StructureReader(doc)
        return cls(doc, reader.read(), upto, reader)


@dataclass
class Step:
    """One all-or-nothing write: rows to upsert and delete per table, and history events;
    ``mentions``: events published with them but not written (@mentions are no commitment)."""

    expect_upto: int
    upto_id: int
    upserts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    deletes: dict[str, list[str]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    mentions: list[dict[str, Any]] = field(default_factory=list)


def task_row(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "position": task.position,
        "text": task.text,
        "owner_ref": task.owner.id if task.owner else None,
        "owner_label": task.owner.label if task.owner else None,
        "owner_side": task.owner.side if task.owner else None,
        "due": date.fromisoformat(task.due) if task.due else None,
        "status": task.status,
        "checked": task.checked,
        "milestone": task.milestone,
        "section": list(task.section),
    }


_ROW_FIELDS = {
    "key_results": ("metric", "baseline", "target", "current", "unit", "date"),
    "risks": ("risk", "severity", "owner", "mitigation"),
    "contacts": ("name", "role", "email", "side"),
}


def table_row(row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row.id, "position": row.position, "section": list(row.section)}
    out.update({name: row.get(name) for name in _ROW_FIELDS[row.kind]})
    if row.kind == "key_results":
        for name in ("baseline", "target", "current"):
            out[f"{name}_value"] = parse_number(row.get(name))
    return out


def advance(shadow: Shadow, entries: Sequence[LogEntry]) -> Step:
    """Apply ``entries`` (log order, all after ``shadow.upto_id``) to the shadow, one by one."""
    step = Step(expect_upto=shadow.upto_id, upto_id=shadow.upto_id)
    before = shadow.structure
    current = before
    # What changed since ``before`` as the reader saw it (None: compare everything), so the
    # comparisons cost what the edits touched, not what the plan holds.
    since: Touched | None = Touched()
    for log_id, logged_at, author_id, data in entries:
        # SQLite hands back naive datetimes; the log is written in UTC.
        at = logged_at if logged_at.tzinfo else logged_at.replace(tzinfo=UTC)
        shadow.doc.apply_update(data)
        after = shadow.reader.read()
        step.upto_id = log_id
        if after is current:  # only text outside tasks, tables and mentions changed
            continue
        touched = shadow.reader.touched if shadow.reader.previous is current else None
        since = None if since is None or touched is None else since | touched
        for into, found in ((step.events, diff), (step.mentions, new_mentions)):
            for e in found(current, after, touched):
                into.append(
                    {
                        "entity": e.entity.value,
                        "entity_id": e.entity_id,
                        "kind": e.kind.value,
                        "old": e.old,
                        "new": e.new,
                        "author_id": author_id,
                        "at": at,
                        "update_id": log_id,
                    }
                )
        current = after
    shadow.structure, shadow.upto_id = current, step.upto_id
    tasks, rows = changed_ids(before, current, since)
    for task_id in tasks:
        if task_id in current.tasks:
            step.upserts.setdefault("tasks", []).append(task_row(current.tasks[task_id]))
        else:
            step.deletes.setdefault("tasks", []).append(task_id)
    for row_id in rows:
        old, new = before.rows.get(row_id), current.rows.get(row_id)
        if old is not None and (new is None or new.kind != old.kind):
            step.deletes.setdefault(old.kind, []).append(row_id)
        if new is not None:
            step.upserts.setdefault(new.kind, []).append(table_row(new))
    return step


# Changes folded into an entity's previous event (same author, within the merge window):
# what a field of a "created" snapshot becomes, or the same kind of change again.
_ABSORBED = {
    (Entity.TASK.value, Kind.TEXT_CHANGED.value): "text",
    (Entity.KEY_RESULT.value, Kind.KR_VALUE_CHANGED.value): "current",
    (Entity.RISK.value, Kind.RISK_SEVERITY_CHANGED.value): "severity",
    (Entity.RISK.value, Kind.REASSIGNED.value): "owner",
}
_TYPED = {Kind.TEXT_CHANGED.value, Kind.KR_VALUE_CHANGED.value, Kind.FIELD_CHANGED.value}
_TYPED_ROWS = {Kind.RISK_SEVERITY_CHANGED.value, Kind.REASSIGNED.value}


def merge_events(prev: Mapping[str, Any], event: Mapping[str, Any]) -> tuple[Any, Any] | None:
    """Fold text typed key by key into one event: ``(old, new)`` for the previous event, or
    None to keep ``event`` as an event of its own."""
    kind, entity = event["kind"], event["entity"]
    if prev["kind"] == Kind.CREATED.value and isinstance(prev["new"], dict):
        name = _ABSORBED.get((entity, kind))
        if name is not None:
            return prev["old"], {**prev["new"], name: event["new"]}
        if kind == Kind.FIELD_CHANGED.value:
            return prev["old"], {**prev["new"], **event["new"]}
        return None
    if prev["kind"] != kind:
        return None
    if kind == Kind.FIELD_CHANGED.value:
        return {**event["old"], **prev["old"]}, {**prev["new"], **event["new"]}
    if kind in _TYPED or (entity != Entity.TASK.value and kind in _TYPED_ROWS):
        return prev["old"], event["new"]
    return None

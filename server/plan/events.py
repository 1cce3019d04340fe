"""What the materialiser publishes to the hook list (``server.hooks``): one small frozen
dataclass per materialised change to a task or a table row, after the tables hold it.

``old`` and ``new`` are the JSON values the commitment history records (None when absent);
``author_id`` is the account whose update made the change (None for the server's own),
``update_id`` that update's id in the plan's log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crdt import Entity, Kind
from server.hooks import Event


@dataclass(frozen=True)
class Changed(Event):
    """A materialised change; the subclasses below name the ones reactions care about."""

    entity: str  # "task", "key_result", "risk", "contact" or "mention"
    entity_id: str
    kind: str  # crdt.changes.Kind
    old: Any
    new: Any
    author_id: int | None
    at: datetime
    update_id: int


@dataclass(frozen=True)
class TaskCreated(Changed):
    pass


@dataclass(frozen=True)
class TaskRemoved(Changed):
    pass


@dataclass(frozen=True)
class TaskReassigned(Changed):
    pass


@dataclass(frozen=True)
class TaskDueMoved(Changed):
    pass


@dataclass(frozen=True)
class TaskCompleted(Changed):
    pass


@dataclass(frozen=True)
class TaskReopened(Changed):
    pass


@dataclass(frozen=True)
class TaskStatusChanged(Changed):
    pass


@dataclass(frozen=True)
class KeyResultValueChanged(Changed):
    pass


@dataclass(frozen=True)
class RiskSeverityChanged(Changed):
    pass


@dataclass(frozen=True)
class Mentioned(Changed):
    """A person mentioned once more in a task, a table row or the text outside them
    (``crdt.new_mentions``); ``entity_id`` is the person's reference, ``new`` the mention.
    Published, never written to the commitment history."""


_TYPES: dict[tuple[str, str], type[Changed]] = {
    (Entity.TASK, Kind.CREATED): TaskCreated,
    (Entity.TASK, Kind.REMOVED): TaskRemoved,
    (Entity.TASK, Kind.REASSIGNED): TaskReassigned,
    (Entity.TASK, Kind.DUE_MOVED): TaskDueMoved,
    (Entity.TASK, Kind.COMPLETED): TaskCompleted,
    (Entity.TASK, Kind.REOPENED): TaskReopened,
    (Entity.TASK, Kind.STATUS_CHANGED): TaskStatusChanged,
    (Entity.KEY_RESULT, Kind.KR_VALUE_CHANGED): KeyResultValueChanged,
    (Entity.RISK, Kind.RISK_SEVERITY_CHANGED): RiskSeverityChanged,
    (Entity.MENTION, Kind.MENTIONED): Mentioned,
}


def changed(plan_id: str, event: dict[str, Any]) -> Changed:
    """The typed event for one of a projection step's event rows (see ``projection.advance``)."""
    cls = _TYPES.get((event["entity"], event["kind"]), Changed)
    return cls(
        plan_id=plan_id,
        entity=event["entity"],
        entity_id=event["entity_id"],
        kind=event["kind"],
        old=event["old"],
        new=event["new"],
        author_id=event["author_id"],
        at=event["at"],
        update_id=event["update_id"],
    )

"""What notifies whom, from the materialiser's typed events (``server.plan.events``).

- assigned: a task's owner becomes someone reachable (a plan member, or a Key contacts row with
  an email) -> that person, with the task, its plan, its due date, who assigned it and the links
  to act on it;
- completed: a task or milestone done -> the plan's owners; a milestone -> everyone in the plan.

Nothing goes to the person whose change it was. Each notification's key is the event's identity
(kind, plan, task, the logged update that made the change, recipient): the same event published
again (a rebuild, a restart, a second process) queues nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

import persistence
from server.plan import Changed, TaskCompleted, TaskCreated, TaskReassigned

from .links import Links
from .people import Person, everyone, name_of, owners, reachable, task_of

ASSIGNED, COMPLETED = "assigned", "completed"
# Events about changes older than this notify nobody: a rebuild or a catch-up replaying a
# plan's history must not send what happened long ago (and was never mail then).
STALE = timedelta(hours=24)


def wanted(event: object) -> bool:
    """Whether ``event`` may notify anyone (cheap: no database)."""
    if isinstance(event, TaskReassigned):
        return True
    if isinstance(event, TaskCreated):
        return isinstance(event.new, dict) and bool(event.new.get("owner"))
    return isinstance(event, TaskCompleted)


def _owner_ref(event: Changed) -> str | None:
    value = event.new.get("owner") if isinstance(event, TaskCreated) else event.new
    ref = value.get("id") if isinstance(value, dict) else None
    return ref if isinstance(ref, str) else None


def _key(kind: str, event: Changed, person: Person) -> str:
    return f"{kind}:{event.plan_id}:{event.entity_id}:{event.update_id}:{person.email}"


def _base(
    s: Session, event: Changed, task: dict[str, Any], links: Links, person: Person, kind: str
) -> dict[str, Any]:
    by = name_of(s, event.author_id)
    return task_payload(s, event.plan_id, task, links, person, kind=kind, by=by)


def task_payload(
    s: Session,
    plan_id: str,
    task: dict[str, Any],
    links: Links,
    person: Person,
    *,
    kind: str,
    by: str | None = None,
) -> dict[str, Any]:
    """What a message about ``task`` to ``person`` is rendered from."""
    plan = persistence.get_plan(session=s, plan_id=plan_id)
    return {
        "plan_id": plan_id,
        "plan_title": plan.title if plan else "",
        "customer": plan.customer if plan else "",
        "plan_url": f"{links.base_url}/plans/{plan_id}",
        "task_id": task["id"],
        "task_text": task["wording"],
        "due": task["due"].isoformat() if task.get("due") else None,
        "milestone": bool(task.get("milestone")),
        "recipient": person.name,
        "by": by,
        "unsubscribe": links.unsubscribe(email=person.email, plan_id=plan_id, kind=kind),
    }


def queue_for(s: Session, event: Changed, links: Links) -> int:
    """Queue the notifications ``event`` calls for; how many were new."""
    if event.at < datetime.now(UTC) - STALE:
        return 0
    task = task_of(s, event.plan_id, event.entity_id)
    if task is None:
        return 0
    queued = 0
    if isinstance(event, (TaskReassigned, TaskCreated)):
        person = reachable(s, event.plan_id, _owner_ref(event))
        # The task may have moved on since (the materialiser publishes after the fact): only
        # its current owner hears about it.
        if person is None or task.get("owner_ref") != person.ref:
            return 0
        if person.user_id is not None and person.user_id == event.author_id:
            return 0
        payload = _base(s, event, task, links, person, ASSIGNED)
        payload["actions"] = links.actions(plan_id=event.plan_id, task_id=task["id"], person=person)
        subject = f"[{payload['plan_title']}] Assigned to you: {short(task['wording'])}"
        queued += _queue(s, ASSIGNED, event, person, subject, payload)
    elif isinstance(event, TaskCompleted):
        milestone = bool(task.get("milestone"))
        people = everyone(s, event.plan_id) if milestone else owners(s, event.plan_id)
        what = "Milestone reached" if milestone else "Done"
        for person in people:
            if person.user_id is not None and person.user_id == event.author_id:
                continue
            payload = _base(s, event, task, links, person, COMPLETED)
            subject = f"[{payload['plan_title']}] {what}: {short(task['wording'])}"
            queued += _queue(s, COMPLETED, event, person, subject, payload)
    return queued


def _queue(
    s: Session, kind: str, event: Changed, person: Person, subject: str, payload: dict[str, Any]
) -> int:
    new = persistence.queue_notification(
        session=s,
        dedup_key=_key(kind, event, person),
        plan_id=event.plan_id,
        recipient_email=person.email,
        recipient_name=person.name,
        kind=kind,
        subject=subject,
        payload=payload,
    )
    return 0 if new is None else 1


def short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

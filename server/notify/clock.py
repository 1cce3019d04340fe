"""Reminders from the clock: *due soon* (``soon_days`` before the due date, default 2) and
*overdue* (from the day after it) -> the task's owner, with the links to act on it; then
*escalation* (``escalate_days`` days overdue, default 3) -> the plan's owners, naming whose
court the ball is in (the task owner's name and side); and the weekly digests whose moment has
come (``digest.py``).

One pass looks at every open, owned task due by then; its key names the due date, so a pass
run again (by cron, by a second process, by ``tandem notifications run --at``) queues nothing
new, and moving the due date arms the reminders again. Passes run under a lease in the
database, so with several server processes one does the work.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

import persistence
from server.store import Store

from . import slack
from .digest import queue_digests
from .dispatcher import Dispatcher
from .links import Links
from .people import Person, owners, reachable, task_of
from .rules import short, task_payload

log = logging.getLogger(__name__)

DUE_SOON, OVERDUE, ESCALATION = "due_soon", "overdue", "escalation"
SIDE_NAMES = {"vendor": "vendor", "customer": "customer"}
LEASE = "reminders"


@dataclass(frozen=True)
class Queued:
    kind: str
    plan_id: str
    task_id: str
    email: str
    subject: str


def queue_reminders(
    s: Session, at: datetime, links: Links, soon_days: int = 2, escalate_days: int = 3
) -> list[Queued]:
    """Queue the reminders and escalations due at ``at``; what was new."""
    today = at.astimezone(UTC).date()
    out: list[Queued] = []
    for row in persistence.open_tasks_due(session=s, upto=today + timedelta(days=soon_days)):
        task = task_of(s, row["plan_id"], row["id"])
        if task is None:
            continue
        person = reachable(s, row["plan_id"], row["owner_ref"])
        if person is None:
            # Nobody to remind (a template's placeholder such as @CSM, someone not in the
            # plan): no reminders, and no escalation saying they were reminded.
            continue
        kind = OVERDUE if row["due"] < today else DUE_SOON
        payload = task_payload(s, row["plan_id"], task, links, person, kind=kind)
        payload["actions"] = links.actions(plan_id=row["plan_id"], task_id=row["id"], person=person)
        label = "Overdue" if kind == OVERDUE else "Due"
        subject = f"[{payload['plan_title']}] {label} {row['due']}: {short(task['wording'])}"
        out += _queue(s, kind, row, person, subject, payload)
        late = (today - row["due"]).days
        if escalate_days > 0 and late >= escalate_days:
            out += _escalate(s, row, task, links, late)
    return out


def _escalate(
    s: Session, row: dict[str, Any], task: dict[str, Any], links: Links, late: int
) -> list[Queued]:
    """``late`` days overdue -> the plan's owners (not the task's owner: they were reminded),
    naming whose court the ball is in."""
    court = (task.get("owner_label") or row["owner_ref"] or "").strip()
    side = SIDE_NAMES.get(task.get("owner_side") or "")
    out: list[Queued] = []
    for person in owners(s, row["plan_id"]):
        if person.ref == row["owner_ref"]:
            continue
        payload = task_payload(s, row["plan_id"], task, links, person, kind=ESCALATION)
        payload.update(court=court, side=side, days_overdue=late)
        whose = f"{court} ({side})" if side else court
        subject = (
            f"[{payload['plan_title']}] {late} days overdue, with {whose}: "
            f"{short(task['wording'], 60)}"
        )
        out += _queue(s, ESCALATION, row, person, subject, payload)
    return out


def _queue(
    s: Session,
    kind: str,
    row: dict[str, Any],
    person: Person,
    subject: str,
    payload: dict[str, Any],
) -> list[Queued]:
    """The one place the clock queues a notification; its key names the due date, so a
    pass run again queues nothing and moving the date arms it again."""
    key = f"{kind}:{row['plan_id']}:{row['id']}:{row['due']}:{person.email}"
    new = persistence.queue_notification(
        session=s,
        dedup_key=key,
        plan_id=row["plan_id"],
        recipient_email=person.email,
        recipient_name=person.name,
        kind=kind,
        subject=subject,
        payload=payload,
    )
    if new is None:
        return []
    return [Queued(kind, row["plan_id"], row["id"], person.email, subject)]


def holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def run_pass(
    store: Store,
    links: Links,
    at: datetime,
    *,
    soon_days: int = 2,
    escalate_days: int = 3,
    lease_seconds: float = 120,
) -> list[Queued] | None:
    """One pass as if at ``at``, under the lease; None when another process holds it."""
    me = holder()
    ttl = timedelta(seconds=lease_seconds)
    if not await store.run(
        lambda s: persistence.take_lease(session=s, name=LEASE, holder=me, ttl=ttl)
    ):
        return None
    try:
        queued = await store.run(lambda s: queue_reminders(s, at, links, soon_days, escalate_days))
        # The plans' Slack channels hear each reminder once, not once per person.
        posted = await store.run(lambda s: slack.queue_reminders(s, at, links, soon_days))
        digests = await store.run(lambda s: queue_digests(s, at, links))
        return (
            queued
            + [Queued(k, p, t, slack.RECIPIENT, subject) for k, p, t, subject in posted]
            + [Queued("digest", "", "", d.email, d.subject) for d in digests]
        )
    finally:
        await store.run(lambda s: persistence.release_lease(session=s, name=LEASE, holder=me))


class Clock:
    """The reminder pass inside the server, every ``every`` seconds."""

    def __init__(
        self,
        store: Store,
        links: Links,
        dispatcher: Dispatcher | None,
        *,
        every: float,
        soon_days: int = 2,
        escalate_days: int = 3,
    ) -> None:
        self.store = store
        self.links = links
        self.dispatcher = dispatcher
        self.every = every
        self.soon_days = soon_days
        self.escalate_days = escalate_days

    async def run(self) -> None:
        while True:
            try:
                queued = await run_pass(
                    self.store,
                    self.links,
                    datetime.now(UTC),
                    soon_days=self.soon_days,
                    escalate_days=self.escalate_days,
                )
                if queued and self.dispatcher is not None:
                    self.dispatcher.wake()
            except Exception:
                log.exception("the reminder pass failed")
            await asyncio.sleep(self.every)

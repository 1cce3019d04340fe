"""Reminders from the clock: *due soon* (``soon_days`` before the due date, default 2) and
*overdue* (from the day after it) -> the task's owner, with the links to act on it; and the
weekly digests whose moment has come (``digest.py``).

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

from sqlalchemy.orm import Session

import persistence
from server.store import Store

from .digest import queue_digests
from .dispatcher import Dispatcher
from .links import Links
from .people import reachable, task_of
from .rules import short, task_payload

log = logging.getLogger(__name__)

DUE_SOON, OVERDUE = "due_soon", "overdue"
LEASE = "reminders"


@dataclass(frozen=True)
class Queued:
    kind: str
    plan_id: str
    task_id: str
    email: str
    subject: str


def queue_reminders(s: Session, at: datetime, links: Links, soon_days: int = 2) -> list[Queued]:
    """Queue the reminders due at ``at``; what was new."""
    today = at.astimezone(UTC).date()
    out = []
    for row in persistence.open_tasks_due(session=s, upto=today + timedelta(days=soon_days)):
        person = reachable(s, row["plan_id"], row["owner_ref"])
        task = task_of(s, row["plan_id"], row["id"])
        if person is None or task is None:
            continue
        kind = OVERDUE if row["due"] < today else DUE_SOON
        payload = task_payload(s, row["plan_id"], task, links, person, kind=kind)
        payload["actions"] = links.actions(plan_id=row["plan_id"], task_id=row["id"], person=person)
        label = "Overdue" if kind == OVERDUE else "Due"
        subject = f"[{payload['plan_title']}] {label} {row['due']}: {short(task['wording'])}"
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
        if new is not None:
            out.append(Queued(kind, row["plan_id"], row["id"], person.email, subject))
    return out


def holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def run_pass(
    store: Store, links: Links, at: datetime, *, soon_days: int = 2, lease_seconds: float = 120
) -> list[Queued] | None:
    """One pass as if at ``at``, under the lease; None when another process holds it."""
    me = holder()
    ttl = timedelta(seconds=lease_seconds)
    if not await store.run(
        lambda s: persistence.take_lease(session=s, name=LEASE, holder=me, ttl=ttl)
    ):
        return None
    try:
        queued = await store.run(lambda s: queue_reminders(s, at, links, soon_days))
        digests = await store.run(lambda s: queue_digests(s, at, links))
        return queued + [Queued("digest", "", "", d.email, d.subject) for d in digests]
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
    ) -> None:
        self.store = store
        self.links = links
        self.dispatcher = dispatcher
        self.every = every
        self.soon_days = soon_days

    async def run(self) -> None:
        while True:
            try:
                queued = await run_pass(
                    self.store, self.links, datetime.now(UTC), soon_days=self.soon_days
                )
                if queued and self.dispatcher is not None:
                    self.dispatcher.wake()
            except Exception:
                log.exception("the reminder pass failed")
            await asyncio.sleep(self.every)

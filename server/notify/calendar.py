"""The calendar feed (RFC 5545): a person's dated tasks and their plans' milestones, at a
secret URL that Google Calendar, Outlook and Apple Calendar subscribe to.

The URL carries a signed token (its own purpose, so no other link works here) holding a random
secret; the database keeps only the secret's hash, per person, so replacing the feed or
deleting it ends the old URL at once, and a database dump cannot rebuild one.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import icalendar
from sqlalchemy.orm import Session

import persistence
from server.identity import Signer
from server.store import Store

PRODID = "-//Tandem//Mutual Success Plans//EN"
# How often calendar applications are asked to fetch the feed again (Outlook and Apple read
# these; Google Calendar keeps its own schedule, several hours).
REFRESH = timedelta(hours=1)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_feed_token(signer: Signer) -> tuple[str, str]:
    """A fresh feed token and the hash of its secret (what the database keeps)."""
    secret = secrets.token_urlsafe(24)
    return signer.dumps("calendar", secret), _hash(secret)


def feed_hash(signer: Signer, token: str) -> str | None:
    """The secret hash a valid token names; None for a tampered or foreign token."""
    secret: Any = signer.loads("calendar", token)
    return _hash(secret) if isinstance(secret, str) and secret else None


def feed_url(base_url: str, token: str) -> str:
    return f"{base_url}/calendar/{token}.ics"


def _wording(entry: persistence.CalendarEntry) -> str:
    """The task's text without its owner's chip, as messages show it."""
    text = entry.text
    if entry.owner_label:
        text = text.replace(f"@{entry.owner_label}", " ", 1)
    return " ".join(text.split()) or "Untitled task"


def _summary(entry: persistence.CalendarEntry) -> str:
    done = entry.status == "done"
    if entry.milestone:
        return f"{'Milestone reached' if done else 'Milestone'}: {_wording(entry)}"
    return f"{'Done' if done else 'Due'}: {_wording(entry)}"


def calendar(
    entries: list[persistence.CalendarEntry],
    *,
    name: str,
    base_url: str,
    stamp: datetime | None = None,
) -> bytes:
    """The feed as an iCalendar document: one all-day event per entry, whose UID stays the same
    for the same task however often the feed is fetched or replaced."""
    host = urlsplit(base_url).hostname or "tandem.invalid"
    stamp = stamp or datetime.now(UTC)
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"Tandem: {name}")
    cal.add("x-wr-caldesc", "Your tasks' due dates and your plans' milestones, from Tandem.")
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", REFRESH)
    for entry in entries:
        plan_url = f"{base_url}/plans/{entry.plan_id}"
        lines = [f"Plan: {entry.plan_title} ({entry.customer})"]
        if entry.milestone and entry.owner_label:
            lines.append(f"Owner: {entry.owner_label}")
        lines.append(f"Status: {entry.status}")
        lines.append(plan_url)
        event = icalendar.Event()
        event.add("uid", f"task-{entry.task_id}.plan-{entry.plan_id}@{host}")
        event.add("dtstamp", stamp)
        event.add("dtstart", entry.due)
        event.add("dtend", entry.due + timedelta(days=1))
        event.add("summary", _summary(entry))
        event.add("description", "\n".join(lines))
        event.add("url", plan_url)
        event.add("transp", "TRANSPARENT")  # a due date does not make anyone busy
        event.add("categories", ["Milestone" if entry.milestone else "Task"])
        cal.add_component(event)
    ical: bytes = cal.to_ical()
    return ical


async def create_feed(store: Store, signer: Signer, user_id: int) -> tuple[str, datetime]:
    """Make (or replace) the person's feed: its new token and when it was made."""
    token, hashed = new_feed_token(signer)
    at = await store.run(
        lambda s: persistence.set_calendar_feed(session=s, user_id=user_id, secret_hash=hashed)
    )
    return token, at


async def revoke_feed(store: Store, user_id: int) -> bool:
    return await store.run(lambda s: persistence.revoke_calendar_feed(session=s, user_id=user_id))


async def feed_created(store: Store, user_id: int) -> datetime | None:
    return await store.read(lambda s: persistence.calendar_feed_created(session=s, user_id=user_id))


async def read_feed(
    store: Store, signer: Signer, token: str
) -> tuple[str, list[persistence.CalendarEntry]] | None:
    """(the person's name, their entries) for a live feed token; None otherwise."""
    hashed = feed_hash(signer, token)
    if hashed is None:
        return None

    def load(s: Session) -> tuple[str, list[persistence.CalendarEntry]] | None:
        user_id = persistence.calendar_feed_user(session=s, secret_hash=hashed)
        user = persistence.get_user(session=s, user_id=user_id) if user_id is not None else None
        if user is None:
            return None
        return user.name, persistence.calendar_entries(session=s, user_id=user.id)

    return await store.read(load)

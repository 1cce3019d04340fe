"""The weekly digest: per person (plan members, and Key contacts with an email), on their
weekday and hour in their time zone (Monday 08:00 UTC unless they chose otherwise).

It holds their open tasks across all their plans (overdue first), what the other side owes them
(open tasks owned by the other side in their plans), milestones coming up, what changed in their
plans since their last digest moment (the commitment history), and the notifications they chose
to get in the digest instead of at once. The clock pass queues it (under the reminders' lease)
at the first pass after its moment; its key names the person and the ISO week in their zone, so
it is queued once a week however often passes run.

The database keeps how far the passes have looked (``CLOCK``). A pass after the clock stood
still (the server or its worker down across someone's moment) finds the moments it missed and
queues one digest per person for the newest of them, covering everything since the moment
before the first one missed: one catch-up, not one per missed week, and its key is that of the
newest week, so a second process or a pass after another restart queues nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

import persistence
from server.plan import CHANGE_VERBS, ENTITY_NAMES

from .links import Links
from .prefs import DIGEST, BadPreference, zone

# The passes' mark in the database (``persistence.clock_mark``).
CLOCK = "digest"
# Before any pass was recorded (a database from before the mark), a moment passed longer ago
# than this is taken to have been seen, as it was then.
LATE = timedelta(hours=24)
MILESTONE_DAYS = 14


@dataclass
class Reader:
    """Someone a digest may go to, with where they are in which plan."""

    email: str
    name: str
    # (plan, owner reference, side) for each plan they are in
    places: list[tuple[persistence.PlanRecord, str, str | None]] = field(default_factory=list)


def readers(s: Session) -> dict[str, Reader]:
    out: dict[str, Reader] = {}
    for plan in persistence.list_plans(session=s):
        if plan.archived:
            continue
        for m in persistence.list_members(session=s, plan_id=plan.id):
            r = out.setdefault(m.email.lower(), Reader(m.email.lower(), m.name))
            r.places.append((plan, f"user:{m.user_id}", m.side))
        for row in persistence.list_rows(session=s, plan_id=plan.id, table="contacts"):
            email = (row.get("email") or "").strip().lower()
            if "@" not in email or " " in email:
                continue
            name = (row.get("name") or email).strip()
            side = (row.get("side") or "").strip().lower() or None
            r = out.setdefault(email, Reader(email, name))
            r.places.append((plan, f"contact:{row['id']}", side))
    return out


def moment(at: datetime, settings: persistence.NotifySettingsRecord) -> datetime:
    """The latest digest moment for ``settings`` at or before ``at``, in the person's zone."""
    try:
        tz: ZoneInfo = zone(settings.time_zone)
    except BadPreference:
        tz = ZoneInfo("UTC")
    local = at.astimezone(tz)
    day = local.date() - timedelta(days=(local.weekday() - settings.digest_weekday) % 7)
    when = datetime.combine(day, time(settings.digest_hour), tzinfo=tz)
    if when > local:
        when = datetime.combine(day - timedelta(days=7), time(settings.digest_hour), tzinfo=tz)
    return when


def _wording(row: dict[str, Any]) -> str:
    text, label = row["text"], row.get("owner_label")
    if label:
        text = text.replace(f"@{label}", " ", 1)
    return " ".join(text.split())


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        if "label" in value:
            return f"@{value['label']}"
        for key in ("text", "metric", "risk", "name"):
            if value.get(key):
                return str(value[key])
        return ""
    return "" if value is None else str(value)


def content(
    s: Session, reader: Reader, when: datetime, since: datetime, at: datetime, links: Links
) -> dict[str, Any]:
    """What ``reader``'s digest for ``when`` says: changes from ``since`` (the moment before,
    or an earlier one when digests were missed) to ``at``."""
    today = when.date()
    mine: list[dict[str, Any]] = []
    owed: list[dict[str, Any]] = []
    milestones: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for plan, ref, side in reader.places:
        url = f"{links.base_url}/plans/{plan.id}"
        tasks = persistence.list_tasks(session=s, plan_id=plan.id)
        texts = {t["id"]: _wording(t) for t in tasks}
        for t in tasks:
            if t["status"] == "done":
                continue
            item = {
                "plan_title": plan.title,
                "plan_url": url,
                "text": texts[t["id"]],
                "due": t["due"].isoformat() if t.get("due") else None,
                "overdue": bool(t.get("due") and t["due"] < today),
                "owner": t.get("owner_label"),
                "_due": t.get("due") or date.max,
            }
            if t.get("owner_ref") == ref:
                mine.append(item)
            elif side in ("vendor", "customer") and t.get("owner_side") not in (None, side):
                owed.append(item)
            if (
                t.get("milestone")
                and t.get("due")
                and today <= t["due"] <= today + timedelta(days=MILESTONE_DAYS)
            ):
                milestones.append(item)
        for e in persistence.list_history(session=s, plan_id=plan.id, limit=200):
            if not since <= e.at <= at:
                continue
            what = texts.get(e.entity_id) if e.entity == "task" else None
            what = what or _describe(e.new) or _describe(e.old)
            changes.append(
                {
                    "plan_title": plan.title,
                    "plan_url": url,
                    "who": e.author_name or "Someone",
                    "did": CHANGE_VERBS.get(e.kind, "edited"),
                    "entity": ENTITY_NAMES.get(e.entity, e.entity),
                    "what": what,
                    "at": e.at,
                }
            )
    mine.sort(key=lambda i: (not i["overdue"], i["_due"]))
    owed.sort(key=lambda i: (not i["overdue"], i["_due"]))
    milestones.sort(key=lambda i: i["_due"])
    changes.sort(key=lambda i: i["at"], reverse=True)
    for item in (*mine, *owed, *milestones):
        del item["_due"]
    for c in changes:
        c["at"] = c["at"].astimezone(when.tzinfo).strftime("%a %d %b %H:%M")
    return {
        "recipient": reader.name,
        "week_of": (today - timedelta(days=today.weekday())).isoformat(),
        "time_zone": str(when.tzinfo),
        "mine": mine,
        "owed": owed,
        "milestones": milestones,
        "changes": changes[:50],
        "more_changes": max(0, len(changes) - 50),
        "base_url": links.base_url,
    }


@dataclass(frozen=True)
class QueuedDigest:
    email: str
    subject: str


def queue_digests(s: Session, at: datetime, links: Links) -> list[QueuedDigest]:
    """Queue the digests whose moment has come since the last pass, by ``at``; what was new."""
    at = at.astimezone(UTC)
    mark = persistence.clock_mark(session=s, name=CLOCK)
    # Moments after ``seen`` are due. A mark past ``at`` (a pass run as if later, by --at)
    # says nothing about the moments before it.
    seen = mark if mark is not None and mark <= at else at - LATE
    persistence.advance_clock_mark(session=s, name=CLOCK, to=at)
    settings = persistence.all_notify_settings(session=s)
    out = []
    for email, reader in sorted(readers(s).items()):
        mine = settings.get(email) or persistence.NotifySettingsRecord(email)
        when = moment(at, mine)
        if when <= seen:
            continue  # an earlier pass saw it come
        year, week, _ = when.date().isocalendar()
        key = f"{DIGEST}:{email}:{year}-W{week:02d}"
        if persistence.notification_queued(session=s, dedup_key=key):
            continue  # this week's went already (a pass run again as if earlier, a second process)
        if not persistence.digest_wanted(session=s, email=email):
            continue
        held = persistence.held_notifications(session=s, email=email, upto=at)
        # From the moment before the first one due: a week back, or more when some were missed.
        since = moment(seen, mine)
        payload = content(s, reader, when, since, at, links)
        if since < when - timedelta(days=7):
            payload["since"] = since.date().isoformat()
        payload["held"] = [
            {"subject": n.subject, "kind": n.kind, "at": n.created_at.isoformat()} for n in held
        ]
        if not any(payload[k] for k in ("mine", "owed", "milestones", "changes", "held")):
            continue  # nothing to say: no mail
        payload["unsubscribe"] = links.unsubscribe(email=email, plan_id=None, kind=DIGEST)
        payload["preferences"] = payload["unsubscribe"]
        subject = f"Your week in Tandem: {len(payload['mine'])} open task(s)"
        overdue = sum(1 for i in payload["mine"] if i["overdue"])
        if overdue:
            subject += f", {overdue} overdue"
        new = persistence.queue_notification(
            session=s,
            dedup_key=key,
            plan_id=None,
            recipient_email=email,
            recipient_name=reader.name,
            kind=DIGEST,
            subject=subject,
            payload=payload,
        )
        if new is not None:
            persistence.mark_in_digest(session=s, notification_ids=[n.id for n in held])
            out.append(QueuedDigest(email, subject))
    return out

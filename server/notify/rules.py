"""What notifies whom, from the materialiser's typed events (``server.plan.events``).

- assigned: a task's owner becomes someone reachable (a plan member, or a Key contacts row with
  an email) -> that person, with the task, its plan, its due date, who assigned it and the links
  to act on it;
- completed: a task or milestone done -> the plan's owners; a milestone -> everyone in the plan;
- mentioned: an @mention (not a task's owner chip) of a plan member or a Key contacts row with
  an email -> that person; its identity is (task or row it is in, person, count), see
  ``crdt.new_mentions``;
- kr_moved: a key result's current value changes -> the plan's owners;
- risk_high: a risk's severity becomes high -> the plan's owners.

Nothing goes to the person whose change it was. Each notification's key is the event's identity
(kind, plan, entity, the logged update that made the change or the mention's identity,
recipient): the same event published again (a restart, a second process) queues nothing,
and a rebuild gives history entries back their ids (``persistence.write_projection``).
A key result's value and a risk's severity are typed key by key: their key is the
commitment-history entry the keystrokes are folded into, and only the event of its last
update queues (the earlier ones of a burst find a later update folded in, and step aside).
Typed back before it is sent (the entry gone, or no longer a move or a raise), its message
goes unsent. Typed on or back by the same person after its message was sent (folded into the
same entry), it is corrected by a message of its own: a value "now X (was what we sent)", or
"back to" where it started; a risk "no longer high (now medium)", or high again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

import persistence
from server.plan import (
    Changed,
    KeyResultValueChanged,
    Mentioned,
    RiskSeverityChanged,
    TaskCompleted,
    TaskCreated,
    TaskReassigned,
)

from .links import Links
from .people import Person, everyone, name_of, owners, reachable, task_of

ASSIGNED, COMPLETED = "assigned", "completed"
MENTIONED, KR_MOVED, RISK_HIGH = "mentioned", "kr_moved", "risk_high"
# Events about changes older than this notify nobody: a rebuild or a catch-up replaying a
# plan's history must not send what happened long ago (and was never mail then).
STALE = timedelta(hours=24)
# A key result's value or a risk's severity is sent this long after it is typed: keys typed
# meanwhile (folded into the same history entry) update the message still waiting.
SETTLE = timedelta(seconds=60)
# The field of the row a key result moved or risk raised is about, and those its message shows.
_FIELD = {KR_MOVED: "current", RISK_HIGH: "severity"}
_DETAILS = {
    KR_MOVED: ("metric", "baseline", "target", "unit"),
    RISK_HIGH: ("risk", "owner", "mitigation"),
}


def wanted(event: object) -> bool:
    """Whether ``event`` may notify anyone (cheap: no database)."""
    if isinstance(event, TaskReassigned):
        return True
    if isinstance(event, TaskCreated):
        return isinstance(event.new, dict) and bool(event.new.get("owner"))
    if isinstance(event, Mentioned):
        return event.entity_id.startswith(("user:", "contact:"))
    # A risk's every severity key: raised to high, lowered from it (undoing a message still
    # waiting, or correcting one sent), or typed on to where it ends (the correction says
    # where): whether it is news is the folded history entry's to say (``_row_changed``).
    return isinstance(event, (TaskCompleted, KeyResultValueChanged, RiskSeverityChanged))


def high(severity: object) -> bool:
    return isinstance(severity, str) and severity.strip().lower() == "high"


def _owner_ref(event: Changed) -> str | None:
    value = event.new.get("owner") if isinstance(event, TaskCreated) else event.new
    ref = value.get("id") if isinstance(value, dict) else None
    return ref if isinstance(ref, str) else None


def _key(kind: str, event: Changed, person: Person, identity: str | None = None) -> str:
    which = identity if identity is not None else event.update_id
    return f"{kind}:{event.plan_id}:{event.entity_id}:{which}:{person.email}"


def _is_author(s: Session, event: Changed, person: Person) -> bool:
    """Whether ``person`` made the change: their account, or a contact row with its address."""
    if event.author_id is None:
        return False
    if person.user_id is not None:
        return person.user_id == event.author_id
    author = persistence.get_user(session=s, user_id=event.author_id)
    return author is not None and author.email.strip().lower() == person.email


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
    return {
        **plan_payload(s, plan_id, links, person, kind=kind, by=by),
        "task_id": task["id"],
        "task_text": task["wording"],
        "due": task["due"].isoformat() if task.get("due") else None,
        "milestone": bool(task.get("milestone")),
    }


def plan_payload(
    s: Session, plan_id: str, links: Links, person: Person, *, kind: str, by: str | None = None
) -> dict[str, Any]:
    """What any message about the plan to ``person`` is rendered from."""
    plan = persistence.get_plan(session=s, plan_id=plan_id)
    return {
        "plan_id": plan_id,
        "plan_title": plan.title if plan else "",
        "customer": plan.customer if plan else "",
        "plan_url": f"{links.base_url}/plans/{plan_id}",
        "recipient": person.name,
        "by": by,
        "unsubscribe": links.unsubscribe(email=person.email, plan_id=plan_id, kind=kind),
    }


def queue_for(s: Session, event: Changed, links: Links, settle: timedelta = SETTLE) -> int:
    """Queue the notifications ``event`` calls for; how many were new."""
    if event.at < datetime.now(UTC) - STALE:
        return 0
    if isinstance(event, Mentioned):
        return _mentioned(s, event, links)
    if isinstance(event, (KeyResultValueChanged, RiskSeverityChanged)):
        return _row_changed(s, event, links, settle)
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


def _mentioned(s: Session, event: Mentioned, links: Links) -> int:
    mention = event.new if isinstance(event.new, dict) else {}
    person = reachable(s, event.plan_id, event.entity_id)
    if person is None or _is_author(s, event, person):
        return 0
    anchor = str(mention.get("anchor") or "")
    payload = plan_payload(
        s, event.plan_id, links, person, kind=MENTIONED, by=name_of(s, event.author_id)
    )
    task = task_of(s, event.plan_id, anchor) if anchor else None
    payload.update(
        text=str(mention.get("text") or ""),
        section=" › ".join(str(h) for h in mention.get("section") or [] if h),
        task_text=task["wording"] if task else None,
    )
    who = payload["by"] or "Someone"
    subject = f"[{payload['plan_title']}] {who} mentioned you: {short(payload['text'])}"
    # Its identity: where it is and how many mentions of this person are there now.
    identity = f"{anchor or '-'}:{mention.get('count')}"
    return _queue(s, MENTIONED, event, person, subject, payload, identity)


def _row_changed(
    s: Session, event: KeyResultValueChanged | RiskSeverityChanged, links: Links, settle: timedelta
) -> int:
    """A key result moved, or a risk raised to high -> the plan's owners, once per history
    entry: the keystrokes of one burst are folded into one (``persistence.write_projection``).
    Sent ``settle`` after it is first queued; later keys of the burst update it meanwhile,
    and those that type it back withdraw it. Typed on after its message was sent, it is a
    correction (``_correction``)."""
    is_kr = isinstance(event, KeyResultValueChanged)
    kind = KR_MOVED if is_kr else RISK_HIGH
    table = "key_results" if is_kr else "risks"
    row = next(
        (
            r
            for r in persistence.list_rows(session=s, plan_id=event.plan_id, table=table)
            if r["id"] == event.entity_id
        ),
        None,
    )
    _withdraw_undone(s, event, kind, row)
    # The newest entry of the event's own kind: the same update may also have changed other
    # fields of the row (its target, its metric), an entry of their own made after it.
    entry = persistence.latest_change(
        session=s,
        plan_id=event.plan_id,
        entity=event.entity,
        entity_id=event.entity_id,
        kind=event.kind,
    )
    # Folded into a "created" (a new row being filled in), typed back (no entry), or a later
    # update folded in (its own event queues, with the value as it ended).
    if entry is None or entry.update_id != event.update_id:
        if row is not None:
            return _typed_back_after_sent(s, event, kind, links, settle, entry, row)
        return 0
    if row is None:
        return 0
    # No longer news (a risk raised and lowered again): only a correction, if it was sent.
    notable = _notable(kind, entry)
    sent = _sent(s, event, kind, entry.id)
    by = name_of(s, event.author_id)
    queued = 0
    for person in owners(s, event.plan_id):
        if _is_author(s, event, person):
            continue
        if person.email in sent:
            mine = sent[person.email]
            queued += _correction(s, event, kind, links, settle, person, entry.id, mine, row, by)
            continue
        if not notable:
            continue
        payload = _row_payload(
            s, event, kind, links, person, by, row, old=entry.old or "", new=entry.new or ""
        )
        if is_kr:
            what = f"Key result moved: {short(payload['metric'], 60)}: {payload['new']}"
        else:
            what = f"Risk raised to high: {short(payload['risk'], 60)}"
        subject = f"[{payload['plan_title']}] {what}"
        queued += _queue(s, kind, event, person, subject, payload, f"h{entry.id}", settle)
    return queued


def _notable(kind: str, entry: persistence.HistoryRecord) -> bool:
    """Whether a folded history entry is news: a value that moved, a risk raised to high."""
    if kind == KR_MOVED:
        return bool(entry.old != entry.new)
    return high(entry.new) and not high(entry.old)


def _same_news(kind: str, a: object, b: object) -> bool:
    """Whether a row's field at ``a`` tells its owners what ``b`` told them: the same value;
    for a risk, high or not alike ("High" and "high" are one severity to its owners)."""
    if kind == KR_MOVED:
        return a == b
    return high(a) == high(b)


def _prefix(kind: str, event: KeyResultValueChanged | RiskSeverityChanged) -> str:
    """How the keys of a row's messages of ``kind`` begin; ``h<entry id>`` follows."""
    return f"{kind}:{event.plan_id}:{event.entity_id}:h"


def _row_payload(
    s: Session,
    event: KeyResultValueChanged | RiskSeverityChanged,
    kind: str,
    links: Links,
    person: Person,
    by: str | None,
    row: dict[str, Any],
    **values: object,
) -> dict[str, Any]:
    """What a message about the row to ``person`` is rendered from: the plan, the row's
    section and details, and ``values`` (old, new and, for a correction, what was sent)."""
    payload = plan_payload(s, event.plan_id, links, person, kind=kind, by=by)
    payload.update(values, section=" › ".join(row.get("section") or []))
    payload.update({k: row.get(k) or "" for k in _DETAILS[kind]})
    return payload


def _sent(
    s: Session, event: KeyResultValueChanged | RiskSeverityChanged, kind: str, chain: int
) -> dict[str, list[persistence.NotificationRecord]]:
    """The messages about history entry ``chain`` that were tried, by recipient, oldest
    first: the first, then each correction."""
    prefix = _prefix(kind, event)
    out: dict[str, list[persistence.NotificationRecord]] = {}
    for n in persistence.notifications_keyed(
        session=s, plan_id=event.plan_id, kind=kind, prefix=f"{prefix}{chain}"
    ):
        if not n.untried and (_chain_id(n.dedup_key, prefix) or (None,))[0] == chain:
            out.setdefault(n.recipient_email, []).append(n)
    return out


def _chain_id(dedup_key: str, prefix: str) -> tuple[int, int] | None:
    """(history entry id, correction number: 0 for the first message) from a message's key,
    None when the key is not one of the row's."""
    if not dedup_key.startswith(prefix):
        return None
    entry, _, number = dedup_key[len(prefix) :].split(":", 1)[0].partition(".")
    return int(entry), int(number or 0)


def _withdraw_undone(
    s: Session,
    event: KeyResultValueChanged | RiskSeverityChanged,
    kind: str,
    row: dict[str, Any] | None,
) -> None:
    """Withdraw the row's messages still waiting whose history entry (named in their key) was
    typed back since: gone, or no longer news; and the corrections still waiting whose value
    was typed back to what was sent (``row``: the row as it now is). Another entry's message
    stands (another person's change, or an earlier burst)."""
    prefix = _prefix(kind, event)
    current = str((row or {}).get(_FIELD[kind]) or "")
    undone = []
    for n in persistence.unsent_notifications(session=s, plan_id=event.plan_id, kind=kind):
        found = _chain_id(n.dedup_key, prefix)
        if found is None:
            continue
        change_id, number = found
        if number:
            if row is None or _same_news(kind, current, n.payload.get("was")):
                undone.append(n.id)
            continue
        entry = persistence.get_change(session=s, plan_id=event.plan_id, change_id=change_id)
        if entry is None or not _notable(kind, entry):
            undone.append(n.id)
    persistence.withdraw_notifications(session=s, notification_ids=undone)


def _typed_back_after_sent(
    s: Session,
    event: KeyResultValueChanged | RiskSeverityChanged,
    kind: str,
    links: Links,
    settle: timedelta,
    entry: persistence.HistoryRecord | None,
    row: dict[str, Any],
) -> int:
    """A value or severity typed back to where it was before its burst (its history entry
    gone) after the burst's message was sent: the newest entry told of, if nothing was
    entered after it, gets its correction."""
    prefix = _prefix(kind, event)
    told = [
        found[0]
        for n in persistence.notifications_keyed(
            session=s, plan_id=event.plan_id, kind=kind, prefix=prefix
        )
        if not n.untried and (found := _chain_id(n.dedup_key, prefix)) is not None
    ]
    if not told:
        return 0
    chain = max(told)
    if entry is not None and entry.id > chain:
        return 0  # entered again since (its own message tells of it)
    if persistence.get_change(session=s, plan_id=event.plan_id, change_id=chain) is not None:
        return 0  # still there: not typed back, a later update's event will see to it
    sent = _sent(s, event, kind, chain)
    by = name_of(s, event.author_id)
    queued = 0
    for person in owners(s, event.plan_id):
        if person.email in sent and not _is_author(s, event, person):
            mine = sent[person.email]
            queued += _correction(s, event, kind, links, settle, person, chain, mine, row, by)
    return queued


def _correction(
    s: Session,
    event: KeyResultValueChanged | RiskSeverityChanged,
    kind: str,
    links: Links,
    settle: timedelta,
    person: Person,
    chain: int,
    told: list[persistence.NotificationRecord],
    row: dict[str, Any],
    by: str | None,
) -> int:
    """A key result's value or a risk's severity typed on by the same person (folded into
    the history entry ``chain``) after ``person`` was sent its message: a correction, from
    what they were last sent to the field as it now is ("back to" when that is where the
    burst started; a risk no longer high, or high again). Keyed by the entry and how many of
    its messages were sent to ``person`` (``told``, oldest first: ``_sent``): waiting, it is
    refreshed like the first, and typed back to what was sent it is withdrawn
    (``_withdraw_undone``); once sent, the next change makes the next."""
    was, start = str(told[-1].payload.get("new") or ""), str(told[0].payload.get("old") or "")
    current = str(row.get(_FIELD[kind]) or "")
    if _same_news(kind, current, was):
        return 0
    back = current == start
    payload = _row_payload(
        s, event, kind, links, person, by, row, old=start, new=current, was=was, back=back
    )
    if kind == KR_MOVED:
        now = f"back to {current or '(empty)'}" if back else f"now {current or '(empty)'}"
        what = (
            f"Key result corrected: {short(payload['metric'], 60)}: {now} (was {was or '(empty)'})"
        )
    else:
        payload["high"] = high(current)
        risk = short(payload["risk"], 60)
        now = f"(now {current or '(empty)'})"
        what = (
            f"Risk high again: {risk}" if payload["high"] else f"Risk no longer high: {risk} {now}"
        )
    subject = f"[{payload['plan_title']}] {what}"
    identity = f"h{chain}.{len(told)}"
    return _queue(s, kind, event, person, subject, payload, identity, settle)


def _queue(
    s: Session,
    kind: str,
    event: Changed,
    person: Person,
    subject: str,
    payload: dict[str, Any],
    identity: str | None = None,
    settle: timedelta | None = None,
) -> int:
    """The one place rules queue a notification; ``identity`` names the event in its key when
    the logged update that made it does not (a mention, a folded history entry); ``settle``:
    sent that long after, and updated meanwhile by the same key queued again."""
    new = persistence.queue_notification(
        session=s,
        dedup_key=_key(kind, event, person, identity),
        plan_id=event.plan_id,
        recipient_email=person.email,
        recipient_name=person.name,
        kind=kind,
        subject=subject,
        payload=payload,
        not_before=datetime.now(UTC) + settle if settle is not None else None,
        refresh=settle is not None,
    )
    return 0 if new is None else 1


def short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

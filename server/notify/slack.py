"""The Slack channel: a plan whose owners set an incoming-webhook URL hears about it in Slack.

What goes to the channel, once per event and not once per person (the channel is the plan's,
not anyone's inbox):

- *assigned*: a task got an owner (whoever made the change: the channel is told who did);
- *completed*: a task done, a milestone reached;
- *due soon* and *overdue*: once per task and due date, naming whose court the ball is in.

Personal messages (a digest, a mention of one person) stay in their inboxes. Any other kind
queued here with ``post`` is rendered from its subject with a link to the plan.

A message about an open task carries its actions as buttons: *Mark complete* completes the
task in place when ``TANDEM_SLACK_SIGNING_SECRET`` is set (an interactive button whose value is
signed for that plan and task), and the signed action links of the task's owner otherwise;
*Move the due date* and *I'm blocked* are those links, and *Open plan* the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

import persistence
from server.plan import Changed, TaskCompleted, TaskCreated, TaskReassigned

from .dispatcher import Undeliverable
from .links import Links
from .outgoing import Refused, post_json
from .people import name_of, reachable, task_of
from .rules import ASSIGNED, COMPLETED, STALE, short

CHANNEL = "slack"
RECIPIENT = "slack"  # the outbox row's recipient: the plan's channel, not a person
COMPLETE_ACTION = "tandem_complete"
SIGNED = "slack"  # the signer's purpose for a Mark complete button's value
DUE_SOON, OVERDUE = "due_soon", "overdue"  # as the clock names them


def escape(text: str) -> str:
    """Slack mrkdwn: people's text shows as typed, never as a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Queueing


def post(
    s: Session, *, kind: str, plan_id: str, key: str, subject: str, payload: dict[str, Any]
) -> int:
    """Queue one message to the plan's channel, if it has one; 1 if new. ``key`` names the
    event without a recipient, so it is posted once however many people it also mails."""
    if persistence.get_slack_webhook(session=s, plan_id=plan_id) is None:
        return 0
    new = persistence.queue_notification(
        session=s,
        dedup_key=f"{CHANNEL}:{key}",
        plan_id=plan_id,
        recipient_email=RECIPIENT,
        recipient_name="Slack channel",
        kind=kind,
        subject=subject,
        payload=payload,
        channel=CHANNEL,
    )
    return 0 if new is None else 1


def _payload(
    s: Session, plan_id: str, task: dict[str, Any], links: Links, by: str | None = None
) -> dict[str, Any]:
    plan = persistence.get_plan(session=s, plan_id=plan_id)
    out: dict[str, Any] = {
        "plan_id": plan_id,
        "plan_title": plan.title if plan else "",
        "customer": plan.customer if plan else "",
        "plan_url": f"{links.base_url}/plans/{plan_id}",
        "task_id": task["id"],
        "task_text": task["wording"],
        "due": task["due"].isoformat() if task.get("due") else None,
        "milestone": bool(task.get("milestone")),
        "owner": task.get("owner_label"),
        "by": by,
    }
    person = reachable(s, plan_id, task.get("owner_ref"))
    if person is not None and task.get("status") != "done":
        out["actions"] = links.actions(plan_id=plan_id, task_id=task["id"], person=person)
    return out


def queue_for(s: Session, event: Changed, links: Links) -> int:
    """The channel's message about ``event``, if it calls for one and the plan has a
    channel; how many were new."""
    if not isinstance(event, (TaskReassigned, TaskCreated, TaskCompleted)):
        return 0
    if event.at < datetime.now(UTC) - STALE:
        return 0
    if persistence.get_slack_webhook(session=s, plan_id=event.plan_id) is None:
        return 0
    task = task_of(s, event.plan_id, event.entity_id)
    if task is None:
        return 0
    key = f"{event.plan_id}:{event.entity_id}:{event.update_id}"
    by = name_of(s, event.author_id)
    if isinstance(event, TaskCompleted):
        payload = _payload(s, event.plan_id, task, links, by)
        what = "Milestone reached" if task.get("milestone") else "Done"
        subject = f"[{payload['plan_title']}] {what}: {short(task['wording'])}"
        return post(
            s,
            kind=COMPLETED,
            plan_id=event.plan_id,
            key=f"{COMPLETED}:{key}",
            subject=subject,
            payload=payload,
        )
    value = event.new.get("owner") if isinstance(event, TaskCreated) else event.new
    ref = value.get("id") if isinstance(value, dict) else None
    # Only the task's current owner: it may have moved on since the event.
    if not ref or task.get("owner_ref") != ref or task.get("status") == "done":
        return 0
    payload = _payload(s, event.plan_id, task, links, by)
    subject = f"[{payload['plan_title']}] Assigned to {task.get('owner_label') or 'someone'}: "
    return post(
        s,
        kind=ASSIGNED,
        plan_id=event.plan_id,
        key=f"{ASSIGNED}:{key}",
        subject=subject + short(task["wording"]),
        payload=payload,
    )


def queue_reminders(
    s: Session, at: datetime, links: Links, soon_days: int = 2
) -> list[tuple[str, str, str, str]]:
    """Due-soon and overdue messages to the channels of the plans that have one, once per
    task and due date like the owner's own reminders: (kind, plan, task, subject) of each
    new one."""
    today = at.astimezone(UTC).date()
    out = []
    channels: dict[str, bool] = {}
    for row in persistence.open_tasks_due(session=s, upto=today + timedelta(days=soon_days)):
        plan_id = row["plan_id"]
        if plan_id not in channels:
            found = persistence.get_slack_webhook(session=s, plan_id=plan_id)
            channels[plan_id] = found is not None
        task = task_of(s, plan_id, row["id"]) if channels[plan_id] else None
        if task is None:
            continue
        kind = OVERDUE if row["due"] < today else DUE_SOON
        payload = _payload(s, plan_id, task, links)
        label = "Overdue" if kind == OVERDUE else "Due"
        subject = f"[{payload['plan_title']}] {label} {row['due']}: {short(task['wording'])}"
        key = f"{kind}:{plan_id}:{row['id']}:{row['due']}"
        if post(s, kind=kind, plan_id=plan_id, key=key, subject=subject, payload=payload):
            out.append((kind, plan_id, row["id"], subject))
    return out


# Rendering


def _button(text: str, *, url: str | None = None, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": text}}
    if url is not None:
        out["url"] = url
    out.update(more)
    return out


def _headline(kind: str, p: dict[str, Any], subject: str) -> str:
    task = f"*{escape(p.get('task_text') or '')}*"
    owner = escape(p.get("owner") or "someone")
    by = escape(p["by"]) if p.get("by") else None
    due = p.get("due")
    if kind == ASSIGNED:
        lead = f"{by} assigned a task to {owner}" if by else f"A task was assigned to {owner}"
        return f":bust_in_silhouette: {lead}: {task}"
    if kind == COMPLETED:
        what = "Milestone reached" if p.get("milestone") else "Done"
        icon = ":checkered_flag:" if p.get("milestone") else ":white_check_mark:"
        return f"{icon} {what}: {task}" + (f" (by {by})" if by else "")
    if kind == DUE_SOON:
        return f":alarm_clock: Due {due}: {task}, in {owner}'s court"
    if kind == OVERDUE:
        return f":warning: Overdue since {due}: {task}, in {owner}'s court"
    return escape(subject)


def message(
    n: persistence.NotificationRecord, complete_value: Callable[[str, str], str] | None = None
) -> dict[str, Any]:
    """The Block Kit message for outbox row ``n``. ``complete_value(plan_id, task_id)``: the
    signed value of an interactive *Mark complete* button (None: the link button instead)."""
    p = n.payload
    plan = escape(p.get("plan_title") or "the plan")
    context = f"<{p['plan_url']}|{plan}>" if p.get("plan_url") else plan
    if p.get("customer"):
        context += f" · {escape(p['customer'])}"
    if p.get("due") and n.kind not in (DUE_SOON, OVERDUE):
        context += f" · due {p['due']}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _headline(n.kind, p, n.subject)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
    ]
    buttons: list[dict[str, Any]] = []
    actions = p.get("actions") or {}
    open_task = n.kind != COMPLETED and p.get("task_id")
    if open_task and complete_value is not None:
        buttons.append(
            _button(
                "Mark complete",
                action_id=COMPLETE_ACTION,
                value=complete_value(p["plan_id"], p["task_id"]),
                style="primary",
            )
        )
    elif open_task and actions.get("complete"):
        buttons.append(_button("Mark complete", url=actions["complete"], style="primary"))
    if open_task and actions.get("due"):
        buttons.append(_button("Move the due date", url=actions["due"], action_id="tandem_due"))
    if open_task and actions.get("blocked"):
        buttons.append(_button("I'm blocked", url=actions["blocked"], action_id="tandem_blocked"))
    if p.get("plan_url"):
        buttons.append(_button("Open plan", url=p["plan_url"], action_id="tandem_open"))
    for i, b in enumerate(buttons):
        b.setdefault("action_id", f"tandem_link_{i}")
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return {"text": n.subject, "blocks": blocks}


class SlackChannel:
    """Sends outbox rows on the "slack" channel to their plan's webhook, looked up (and
    checked by the outgoing guard) at each send."""

    def __init__(
        self,
        webhook: Callable[[str], str | None],
        links: Links,
        *,
        allowed: tuple[str, ...] = (),
        interactive: bool = False,
    ) -> None:
        self.webhook = webhook
        self.links = links
        self.allowed = allowed
        self.interactive = interactive

    def complete_value(self, plan_id: str, task_id: str) -> str:
        return self.links.signer.dumps(SIGNED, {"p": plan_id, "t": task_id})

    def send(self, n: persistence.NotificationRecord) -> None:
        url = self.webhook(n.plan_id) if n.plan_id else None
        if url is None:
            raise Undeliverable("the plan has no Slack webhook any more")
        body = message(n, self.complete_value if self.interactive else None)
        try:
            answer = post_json(url, body, allowed=self.allowed)
        except Refused as exc:
            raise Undeliverable(str(exc)) from None
        if not 200 <= answer.status < 300:
            text = answer.body[:200].decode(errors="replace")
            error = f"Slack answered {answer.status}: {text}"
            # A webhook revoked (404 no_service), a channel archived (410), a payload refused
            # (400), a redirect (never followed): the same request will not fare better. Rate
            # limits and server errors are retried.
            if 300 <= answer.status < 500 and answer.status not in (408, 429):
                raise Undeliverable(error)
            raise RuntimeError(error)


def read_complete_value(links: Links, value: object) -> tuple[str, str] | None:
    """(plan id, task id) of a genuine *Mark complete* button's value, not older than the
    notification links' lifetime."""
    if not isinstance(value, str):
        return None
    found: Any = links.signer.loads(SIGNED, value, max_age=links.link_days * 86400)
    if not isinstance(found, dict):
        return None
    plan_id, task_id = found.get("p"), found.get("t")
    if not (isinstance(plan_id, str) and isinstance(task_id, str)):
        return None
    return plan_id, task_id

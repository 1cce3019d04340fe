"""Acting from a notification, without a login: the pages behind a message's action links
(mark complete, move the due date, I'm blocked). Its unsubscribe link's page is
``preferences.py``.

The signed link is the credential. A GET only shows what would happen (mail scanners fetch
links); one POST does it, once. The change goes through the live room, like the API's task
write-back, so open editors see it at once, and the commitment history names who made it
("Jordan Lee, by email link").
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pycrdt import Doc
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import crdt
import persistence
from server.identity import Rule
from server.notify import ActionClaim, reachable, task_of

from .guard import plan_of, rule
from .responses import render, services

VERBS = {
    "complete": "Mark this task complete",
    "due": "Move this task's due date",
    "blocked": "Tell the plan you are blocked on this task",
}
INVALID = (
    "This link is not valid or has expired. Links in notifications work for {days} days; "
    "open the plan to make the change there."
)


def _page(request: Request, ctx: dict[str, Any], status: int = 200) -> Response:
    return render(request, "act.html", ctx, status)


def _problem(s: Session, claim: ActionClaim) -> tuple[str | None, dict[str, Any] | None, Any]:
    """(why the action cannot be done, the task, the plan): nothing is changed when a reason
    is given."""
    plan = persistence.get_plan(session=s, plan_id=claim.plan_id)
    if plan is None:
        return "This plan no longer exists; nothing was changed.", None, None
    task = task_of(s, claim.plan_id, claim.task_id)
    if plan.archived:
        return "This plan is archived; nothing was changed.", task, plan
    if task is None:
        return "This task was deleted from the plan; nothing was changed.", None, plan
    if task.get("owner_ref") != claim.ref:
        return "This task is now someone else's; nothing was changed.", task, plan
    person = reachable(s, claim.plan_id, claim.ref)
    if person is None or person.email != claim.email.lower():
        return "You are no longer part of this plan; nothing was changed.", task, plan
    if task["status"] == "done":
        return "This task is already done; nothing was changed.", task, plan
    if claim.action == "blocked" and task["status"] == "blocked":
        return "This task is already marked blocked; nothing was changed.", task, plan
    return None, task, plan


def _change(action: str, task_id: str, due: str | None) -> Any:
    def apply(doc: Doc) -> None:
        if action == "complete":
            crdt.set_task_status(doc, task_id, "done")
        elif action == "blocked":
            crdt.set_task_status(doc, task_id, "blocked")
        else:
            crdt.set_task_due(doc, task_id, due)

    return apply


@rule(Rule.PUBLIC)  # the signed, single-use action link is the credential
async def act_page(request: Request) -> Response:
    svc = services(request)
    action = request.path_params["action"]
    task_id = request.path_params["task_id"]
    claim = svc.links.read_action(action, request.path_params["token"])
    ctx: dict[str, Any] = {"action": action, "verb": VERBS.get(action, ""), "errors": {}}
    if claim is None or claim.task_id != task_id:
        ctx["refused"] = INVALID.format(days=svc.links.link_days)
        return _page(request, ctx, 404)
    if await svc.store.read(lambda s: persistence.action_used(session=s, action_id=claim.id)):
        ctx["refused"] = "This link was already used; each link works once."
        return _page(request, ctx, 410)
    # The tables must show the document as it is now, not as of the last pause in editing.
    await svc.materialiser.flush(claim.plan_id)
    problem, task, plan = await svc.store.read(lambda s: _problem(s, claim))
    ctx.update(task=task, plan=plan, claim=claim)
    if problem is not None:
        ctx["refused"] = problem
        return _page(request, ctx, 409)
    if request.method == "GET":
        return _page(request, ctx)

    form = await request.form()
    due = None
    if action == "due":
        raw = str(form.get("due", "")).strip()
        try:
            due = date.fromisoformat(raw).isoformat()
        except ValueError:
            ctx["errors"] = {"due": "Enter the new due date as YYYY-MM-DD."}
            return _page(request, ctx, 400)
    actor = f"{claim.name}, by email link"
    if not await svc.store.run(
        lambda s: persistence.use_action(
            session=s,
            action_id=claim.id,
            plan_id=claim.plan_id,
            task_id=claim.task_id,
            action=action,
            actor=actor,
        )
    ):
        ctx["refused"] = "This link was already used; each link works once."
        return _page(request, ctx, 410)
    person = await svc.store.read(lambda s: reachable(s, claim.plan_id, claim.ref))
    room = await svc.rooms.open(claim.plan_id)
    try:
        log_id = await room.apply_server_change(
            _change(action, task_id, due), person.user_id if person else None
        )
    except crdt.TaskNotFound:
        await svc.store.run(lambda s: persistence.release_action(session=s, action_id=claim.id))
        ctx["refused"] = "This task was deleted from the plan; nothing was changed."
        return _page(request, ctx, 409)
    if log_id is not None:
        await svc.store.run(
            lambda s: persistence.record_action_update(
                session=s, action_id=claim.id, update_id=log_id
            )
        )
    await svc.materialiser.flush(claim.plan_id)
    ctx.update(done=True, due=due)
    return _page(request, ctx)


def notification_json(n: persistence.NotificationRecord) -> dict[str, Any]:
    return {
        "id": n.id,
        "kind": n.kind,
        "channel": n.channel,
        "recipient": {"name": n.recipient_name, "email": n.recipient_email},
        "subject": n.subject,
        "state": n.state,
        "attempts": n.attempts,
        "last_error": n.last_error,
        "created_at": n.created_at.isoformat(),
        "sent_at": n.sent_at.isoformat() if n.sent_at else None,
    }


@rule(Rule.PLAN_OWNER)
async def list_notifications_api(request: Request) -> Response:
    """What was sent about the plan, and what failed (newest first): owners only, since it
    names everyone the plan notified."""
    plan = plan_of(request)
    rows = await services(request).store.read(
        lambda s: persistence.list_notifications(session=s, plan_id=plan.id)
    )
    return JSONResponse({"notifications": [notification_json(n) for n in rows]})

"""A plan's Slack channel: its owners set (and remove) the incoming-webhook URL messages go
to, and, when ``TANDEM_SLACK_SIGNING_SECRET`` is set, Slack's button presses come back here
and complete the task in place.

The webhook URL is a credential (whoever holds it posts to the channel): it is checked by the
outgoing guard before it is kept, and shown masked, to owners only. An interactivity request
is Slack's only if its signature (HMAC-SHA256 of ``v0:{timestamp}:{raw body}`` with the
signing secret) matches and its timestamp is within five minutes; the button's value is signed
by this server for one plan and one task, so a forged value cannot complete another's task.
The change goes through the live room, like an action link's, attributed to the Slack user
("Sam Lee, in Slack").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import crdt
import persistence
from server.identity import Rule
from server.notify import outgoing, slack, task_of
from server.plan import ApiError
from server.services import Services

from .guard import identity_of, plan_of, rule
from .responses import read_json, services

REPLAY_SECONDS = 300


def masked(url: str) -> str:
    """Enough of a webhook URL to recognise it, not enough to post with it."""
    parts = urlsplit(url)
    tail = parts.path.rstrip("/")[-4:]
    return f"{parts.scheme}://{parts.hostname}/…{tail}"


def _state(found: persistence.SlackRecord | None) -> dict[str, Any]:
    if found is None:
        return {"configured": False, "webhook_url": None, "set_at": None}
    return {
        "configured": True,
        "webhook_url": masked(found.webhook_url),
        "set_at": found.set_at.isoformat(),
    }


async def state(svc: Services, plan_id: str) -> dict[str, Any]:
    """The plan's channel as owners see it: whether it is set, the URL masked, since when."""
    found = await svc.store.read(
        lambda s: persistence.get_slack_webhook(session=s, plan_id=plan_id)
    )
    return _state(found)


async def connect(svc: Services, plan_id: str, user_id: int | None, url: object) -> None:
    """Keep ``url`` as the plan's webhook (replacing any), once the outgoing guard has passed
    it; an ``ApiError`` on ``webhook_url`` says why not. The API and the settings page both
    come through here, so they refuse the same URLs with the same words."""
    try:
        # Resolving the host blocks: in a thread.
        await anyio.to_thread.run_sync(
            outgoing.check, url, svc.settings.webhook_allow_hosts, outgoing.system_resolve
        )
    except outgoing.Refused as exc:
        raise ApiError(400, str(exc), field="webhook_url") from None
    assert isinstance(url, str)
    await svc.store.run(
        lambda s: persistence.set_slack_webhook(
            session=s, plan_id=plan_id, webhook_url=url.strip(), set_by=user_id
        )
    )


async def disconnect(svc: Services, plan_id: str) -> None:
    await svc.store.run(lambda s: persistence.delete_slack_webhook(session=s, plan_id=plan_id))


@rule(Rule.PLAN_OWNER)
async def get_slack_api(request: Request) -> Response:
    return JSONResponse(await state(services(request), plan_of(request).id))


@rule(Rule.PLAN_OWNER)
async def put_slack_api(request: Request) -> Response:
    svc, plan = services(request), plan_of(request)
    data = await read_json(request)
    await connect(svc, plan.id, identity_of(request).user_id, data.get("webhook_url"))
    return JSONResponse(await state(svc, plan.id))


# Taking the channel away is allowed on an archived plan too.
@rule(Rule.PLAN_OWNER, on_archived=True)
async def delete_slack_api(request: Request) -> Response:
    await disconnect(services(request), plan_of(request).id)
    return JSONResponse(_state(None))


# Slack's button presses


def _refuse(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _reply(text: str) -> Response:
    """What Slack is told; it wants a 200 within three seconds whatever happened."""
    return JSONResponse({"response_type": "ephemeral", "replace_original": False, "text": text})


def signature_problem(secret: str, timestamp: str, signature: str, body: bytes) -> str | None:
    """Why a request is not Slack's (None: it is), per Slack's documented request signing."""
    if not timestamp or not signature:
        return "missing the Slack signature headers"
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        return "the Slack request timestamp is not a number"
    if age > REPLAY_SECONDS:
        return "the Slack request timestamp is more than five minutes away: refused as a replay"
    base = f"v0:{timestamp}:".encode() + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return "the Slack signature does not match"
    return None


def _problem(s: Session, plan_id: str, task_id: str) -> str | None:
    plan = persistence.get_plan(session=s, plan_id=plan_id)
    if plan is None:
        return "This plan no longer exists; nothing was changed."
    if plan.archived:
        return "This plan is archived; nothing was changed."
    if persistence.get_slack_webhook(session=s, plan_id=plan_id) is None:
        return "This plan is no longer connected to Slack; nothing was changed."
    task = task_of(s, plan_id, task_id)
    if task is None:
        return "This task was deleted from the plan; nothing was changed."
    if task["status"] == "done":
        return "This task is already done; nothing was changed."
    return None


def _slack_user(payload: dict[str, Any]) -> tuple[str, str]:
    """(Slack user id, the name the history shows)."""
    user = payload.get("user")
    user = user if isinstance(user, dict) else {}
    uid = str(user.get("id") or "")
    name = next(
        (str(user[k]) for k in ("name", "username") if isinstance(user.get(k), str) and user[k]),
        uid or "Someone",
    )
    return uid, name[:200]


@rule(Rule.PUBLIC)  # Slack's request signature is the credential; 404 without the secret
async def interactivity(request: Request) -> Response:
    svc = services(request)
    secret = svc.settings.slack_signing_secret
    if not secret:
        return _refuse(404, "Slack interactivity is not turned on (TANDEM_SLACK_SIGNING_SECRET)")
    body = await request.body()
    if len(body) > svc.settings.max_request_bytes:
        return _refuse(413, "request body is too large")
    why = signature_problem(
        secret,
        request.headers.get("x-slack-request-timestamp", ""),
        request.headers.get("x-slack-signature", ""),
        body,
    )
    if why is not None:
        return _refuse(401, why)
    try:
        form = parse_qs(body.decode(), strict_parsing=False)
        payload = json.loads(form["payload"][0])
    except (UnicodeDecodeError, KeyError, IndexError, ValueError, RecursionError):
        return _refuse(400, "expected a form field 'payload' holding JSON")
    if not isinstance(payload, dict):
        return _refuse(400, "the payload must be a JSON object")
    actions = payload.get("actions")
    press = next(
        (
            a
            for a in (actions if isinstance(actions, list) else [])
            if isinstance(a, dict) and a.get("action_id") == slack.COMPLETE_ACTION
        ),
        None,
    )
    if press is None:
        # Link buttons are reported too: the link did the work; nothing to do here.
        return _reply("")
    found = slack.read_complete_value(svc.links, press.get("value"))
    if found is None:
        return _refuse(403, "this button's value is not one this server signed (or it expired)")
    plan_id, task_id = found
    uid, name = _slack_user(payload)
    team = payload.get("team")
    team_id = str(team.get("id") or "") if isinstance(team, dict) else ""
    # One press is one use: Slack resends a request it got no answer to in three seconds.
    press_key = f"{team_id}:{uid}:{press.get('action_ts')}:{plan_id}:{task_id}"
    action_id = "s" + hashlib.sha256(press_key.encode()).hexdigest()[:31]
    await svc.materialiser.flush(plan_id)
    problem = await svc.store.read(lambda s: _problem(s, plan_id, task_id))
    if problem is not None:
        return _reply(problem)
    actor = f"{name}, in Slack"
    if not await svc.store.run(
        lambda s: persistence.use_action(
            session=s,
            action_id=action_id,
            plan_id=plan_id,
            task_id=task_id,
            action="complete",
            actor=actor,
        )
    ):
        return _reply("This press was already handled.")
    room = await svc.rooms.open(plan_id)
    try:
        log_id = await room.apply_server_change(
            lambda doc: crdt.set_task_status(doc, task_id, "done"), None
        )
    except crdt.TaskNotFound:
        await svc.store.run(lambda s: persistence.release_action(session=s, action_id=action_id))
        return _reply("This task was deleted from the plan; nothing was changed.")
    if log_id is not None:
        await svc.store.run(
            lambda s: persistence.record_action_update(
                session=s, action_id=action_id, update_id=log_id
            )
        )
    await svc.materialiser.flush(plan_id)
    return _reply(f"Marked complete by {name}.")

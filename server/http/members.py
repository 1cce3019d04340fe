"""Plan members over HTTP: the JSON API and the invitation page, each a thin adapter over the
plan domain's membership rules and writes (``server/plan/membership.py``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

import persistence
from server import plan as domain
from server.identity import SESSION_COOKIE, Rule, password_errors
from server.plan import int_param, text_field

from . import guard
from .cookies import set_session_cookie
from .guard import acting, identity_of, plan_of, rule
from .responses import base_url, read_json, render, services

log = logging.getLogger(__name__)


async def invite(request: Request, email: str, role: str, side: str) -> domain.Invited:
    """Invite ``email`` to this request's plan (``plan.invite_member``)."""
    svc = services(request)
    return await domain.invite_member(
        svc.store,
        svc.mailer,
        svc.signer,
        acting(request),
        plan_of(request),
        base_url=base_url(request),
        email=email,
        role=role,
        side=side,
    )


async def change(request: Request, user_id: int, role: str, side: str) -> None:
    svc = services(request)
    await domain.change_member(
        svc.store, svc.rooms, acting(request), plan_of(request).id, user_id, role=role, side=side
    )


async def remove(request: Request, user_id: int) -> None:
    svc = services(request)
    await domain.remove_member(svc.store, svc.rooms, acting(request), plan_of(request).id, user_id)


def member_json(m: persistence.MemberRecord) -> dict[str, Any]:
    return {
        "user_id": m.user_id,
        "name": m.name,
        "email": m.email,
        "role": m.role,
        "side": m.side,
        "added_at": m.added_at.isoformat(),
    }


# JSON API


@rule(Rule.PLAN_OWNER)
async def list_members_api(request: Request) -> Response:
    plan_id = plan_of(request).id

    def load(s: Session) -> tuple[list[persistence.MemberRecord], list[persistence.InviteRecord]]:
        return (
            persistence.list_members(session=s, plan_id=plan_id),
            persistence.pending_invites(session=s, plan_id=plan_id),
        )

    members, invites = await services(request).store.run(load)
    invites = domain.visible_invites(identity_of(request), invites)
    return JSONResponse(
        {
            "members": [member_json(m) for m in members],
            "invites": [
                {
                    "id": i.id,
                    "email": i.email,
                    "role": i.role,
                    "side": i.side,
                    "expires_at": i.expires_at.isoformat(),
                }
                for i in invites
            ],
        }
    )


@rule(Rule.PLAN_OWNER)
async def invite_api(request: Request) -> Response:
    data = await read_json(request)
    done = await invite(
        request,
        text_field(data, "email", max_len=320),
        text_field(data, "role", max_len=16),
        text_field(data, "side", max_len=16),
    )
    record = done.invite
    return JSONResponse(
        {
            "id": record.id,
            "email": record.email,
            "role": record.role,
            "side": record.side,
            "expires_at": record.expires_at.isoformat(),
            "url": done.url,
            "emailed": done.emailed,
        },
        status_code=201,
    )


def _user_id(request: Request) -> int:
    return int_param(
        request.path_params["user_id"], "user_id", status=404, message="no such member"
    )


@rule(Rule.PLAN_OWNER)
async def change_member_api(request: Request) -> Response:
    data = await read_json(request)
    await change(
        request,
        _user_id(request),
        text_field(data, "role", max_len=16),
        text_field(data, "side", max_len=16),
    )
    return JSONResponse({"ok": True})


# Taking access away, or reusing the content, is still allowed once archived.
@rule(Rule.PLAN_OWNER, on_archived=True)
async def remove_member_api(request: Request) -> Response:
    await remove(request, _user_id(request))
    return Response(status_code=204)


# Accepting an invitation


def _error(request: Request, message: str, status: int) -> Response:
    return render(request, "error.html", {"message": message}, status)


@rule(Rule.PUBLIC)  # the signed invitation is the credential
async def accept_page(request: Request) -> Response:
    svc = services(request)
    token = request.path_params["token"]
    value = svc.signer.loads("invite", token)
    if not (isinstance(value, list) and len(value) == 2):
        return _error(request, "This invitation link is not valid.", 404)
    invite_id, plan_id = value
    record = await svc.store.run(lambda s: persistence.get_invite(session=s, invite_id=invite_id))
    now = datetime.now(UTC)
    if record is None or record.plan_id != plan_id:
        return _error(request, "This invitation link is not valid.", 404)
    if record.accepted_at or record.revoked_at or record.expires_at <= now:
        return _error(request, "This invitation has expired, was revoked or was already used.", 410)
    plan = await svc.store.run(lambda s: persistence.get_plan(session=s, plan_id=plan_id))
    me = await guard.account(request)
    known = await svc.store.run(lambda s: persistence.find_user(session=s, email=record.email))
    ctx: dict[str, Any] = {"invite": record, "plan": plan, "user": me, "errors": {}, "form": {}}
    if me is not None and me.email != record.email:
        ctx["mismatch"] = True
        return render(request, "invite.html", ctx, 403)
    if me is None and known is not None:
        ctx["sign_in"] = f"/login?next=/invite/{token}"
        return render(request, "invite.html", ctx)
    if known is not None and (why := domain.kind_conflict(known[0], record.side)):
        # The account's kind may have changed since the invitation was sent.
        return _error(request, f"This invitation cannot be used: {why}.", 409)
    if request.method == "GET":
        return render(request, "invite.html", ctx)

    form = await request.form()
    user_id: int | None
    password_hash: str | None = None
    if me is not None:
        if not svc.auth.check_csrf(request.cookies.get(SESSION_COOKIE), str(form.get("csrf", ""))):
            return _error(request, "Your session changed; try again.", 403)
        user_id = me.account_id
        name = me.name
    else:
        name = str(form.get("name", "")).strip()
        password = str(form.get("password", ""))
        errors = {}
        if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
            errors["name"] = "Enter your name."
        errors.update(password_errors(password, str(form.get("confirm", ""))))
        if errors:
            ctx.update(errors=errors, form={"name": name})
            return render(request, "invite.html", ctx, 400)
        user_id = None
        password_hash = await svc.auth.hash_password(password)

    try:
        uid = await domain.accept_invite(
            svc.store,
            record,
            user_id=user_id,
            name=name,
            password_hash=password_hash,
            ip=guard.client_ip(request),
        )
    except persistence.DuplicateEmail:
        return _error(request, "An account with this email was created meanwhile; sign in.", 409)
    if uid is None:
        return _error(request, "This invitation was already used.", 410)
    response = RedirectResponse(f"/plans/{plan_id}", status_code=303)
    if me is None:
        set_session_cookie(request, response, await svc.auth.start_session(uid))
    return response

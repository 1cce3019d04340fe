"""Plan members: invitations by email, accepting them, changing roles and removing people."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

import persistence
from server.identity import (
    CUSTOMER,
    INVITE_DAYS,
    MIN_PASSWORD,
    OWNER,
    ROLES,
    SESSION_COOKIE,
    SIDES,
    VENDOR,
    VIEWER,
    Identity,
    Rule,
    actor,
    password_too_short,
    valid_email,
    vendor_owner,
)
from server.live import Close, Closing
from server.plan import ApiError, int_param, text_field

from . import guard
from .cookies import set_session_cookie
from .guard import identity_of, plan_of, rule
from .responses import base_url, read_json, render, services

log = logging.getLogger(__name__)


def invite_url(request: Request, invite: persistence.InviteRecord) -> str:
    token = services(request).signer.dumps("invite", [invite.id, invite.plan_id])
    return f"{base_url(request)}/invite/{token}"


def _check(role: str, side: str) -> None:
    if role not in ROLES:
        raise ApiError(400, f"role must be one of {', '.join(ROLES)}", field="role")
    if side not in SIDES:
        raise ApiError(400, f"side must be one of {', '.join(SIDES)}", field="side")


def _may_touch_vendor(identity: Identity) -> None:
    """Only vendor-side owners grant, change or remove the vendor side: a customer-side owner
    could otherwise make herself (or a second address of hers) vendor and read the internal plan."""
    if not vendor_owner(identity):
        raise ApiError(
            403,
            "only the plan's vendor-side owners can grant or change the vendor side",
            field="side",
        )


def kind_conflict(user: persistence.UserRecord, side: str) -> str | None:
    """Why ``user`` cannot be on ``side``: a member's side follows the account kind."""
    if side == VENDOR and not user.is_staff:
        return (
            f"{user.email} is a guest account and guests are always customer side; "
            "the workspace owner can make them staff on the People page"
        )
    if side == CUSTOMER and user.is_staff:
        return f"{user.email} is workspace staff and staff are always vendor side"
    return None


async def invite(
    request: Request, email: str, role: str, side: str
) -> tuple[persistence.InviteRecord, str, bool]:
    """Create an invitation and mail it: the invitation, its link, and whether the mail went out.

    The link is the owner's to pass on when no mail could be sent (no SMTP server configured, or
    it refused), so the screen must not say "sent" then.
    """
    identity = identity_of(request)
    plan = plan_of(request)
    address = valid_email(email)
    if address is None:
        raise ApiError(400, "enter a valid email address", field="email")
    _check(role, side)
    if side == VENDOR:
        _may_touch_vendor(identity)
    svc = services(request)

    def create(s: Session) -> persistence.InviteRecord | None:
        found = persistence.find_user(session=s, email=address)
        if found and persistence.get_member(session=s, plan_id=plan.id, user_id=found[0].id):
            return None
        if found and (why := kind_conflict(found[0], side)):
            raise ApiError(409, why, field="side")
        if not found and side == VENDOR and not identity.workspace_owner:
            # Whoever joins by invitation is a guest unless the workspace owner makes them staff.
            raise ApiError(
                403,
                "only the workspace owner can invite a new address to the vendor side "
                "(it becomes a staff account); invite them on the People page first",
                field="side",
            )
        return persistence.create_invite(
            session=s,
            invite_id=secrets.token_hex(12),
            plan_id=plan.id,
            email=address,
            role=role,
            side=side,
            invited_by=identity.user_id,
            expires_at=datetime.now(UTC) + timedelta(days=INVITE_DAYS),
        )

    record = await svc.store.run(create)
    if record is None:
        raise ApiError(409, f"{address} is already a member of this plan", field="email")
    url = invite_url(request, record)
    body = (
        f'{identity.name} invited you to the success plan "{plan.title}" ({plan.customer}) '
        f"on Tandem as {role}.\n\nOpen this link to join (it works once, for {INVITE_DAYS} "
        f"days):\n\n{url}\n\nIf you did not expect this, ignore this message.\n"
    )
    emailed = await svc.mailer.send(
        address, f"You are invited to {plan.title}", body, plan_id=plan.id
    )
    await guard.record_access(
        request,
        "member.invited",
        plan_id=plan.id,
        actor=actor(identity),
        subject=address,
        detail=f"{role}, {side} side",
    )
    return record, url, emailed


async def change(request: Request, user_id: int, role: str, side: str) -> None:
    identity = identity_of(request)
    plan_id = plan_of(request).id
    _check(role, side)

    def update(s: Session) -> persistence.MemberRecord | None:
        member = persistence.get_member(session=s, plan_id=plan_id, user_id=user_id)
        if member is None:
            return None
        if VENDOR in (side, member.side):
            _may_touch_vendor(identity)
        user = persistence.get_user(session=s, user_id=user_id)
        if user is not None and (why := kind_conflict(user, side)):
            raise ApiError(409, why, field="side")
        if (
            member.role == OWNER
            and role != OWNER
            and persistence.count_owners(session=s, plan_id=plan_id) <= 1
        ):
            raise ApiError(409, "a plan needs at least one owner", field="role")
        persistence.set_member(session=s, plan_id=plan_id, user_id=user_id, role=role, side=side)
        return member

    before = await services(request).store.run(update)
    if before is None:
        raise ApiError(404, "no such member")
    if role == VIEWER and before.role != VIEWER:
        services(request).rooms.close(
            Closing(plan_id, Close.READ_ONLY, "you can now only view", user_id=user_id)
        )
    if side != VENDOR and before.side == VENDOR:
        services(request).rooms.close(
            Closing(plan_id, Close.FORBIDDEN, "no access", user_id=user_id, side=VENDOR)
        )
    await guard.record_access(
        request,
        "member.changed",
        plan_id=plan_id,
        actor=actor(identity),
        subject=before.email,
        detail=f"{before.role}, {before.side} side -> {role}, {side} side",
    )


async def remove(request: Request, user_id: int) -> None:
    identity = identity_of(request)
    plan_id = plan_of(request).id

    def delete(s: Session) -> persistence.MemberRecord | None:
        member = persistence.get_member(session=s, plan_id=plan_id, user_id=user_id)
        if member is None:
            return None
        if member.side == VENDOR:
            _may_touch_vendor(identity)
        if member.role == OWNER and persistence.count_owners(session=s, plan_id=plan_id) <= 1:
            raise ApiError(409, "a plan needs at least one owner: make someone else owner first")
        persistence.remove_member(session=s, plan_id=plan_id, user_id=user_id)
        return member

    member = await services(request).store.run(delete)
    if member is None:
        raise ApiError(404, "no such member")
    services(request).rooms.close(
        Closing(plan_id, Close.FORBIDDEN, "removed from this plan", user_id=user_id)
    )
    await guard.record_access(
        request,
        "member.removed",
        plan_id=plan_id,
        actor=actor(identity),
        subject=member.email,
    )


def visible_invites(
    identity: Identity, invites: list[persistence.InviteRecord]
) -> list[persistence.InviteRecord]:
    """A customer-side owner never sees pending vendor invitations (their links are credentials)."""
    if vendor_owner(identity):
        return invites
    return [i for i in invites if i.side != VENDOR]


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
    invites = visible_invites(identity_of(request), invites)
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
    record, url, emailed = await invite(
        request,
        text_field(data, "email", max_len=320),
        text_field(data, "role", max_len=16),
        text_field(data, "side", max_len=16),
    )
    return JSONResponse(
        {
            "id": record.id,
            "email": record.email,
            "role": record.role,
            "side": record.side,
            "expires_at": record.expires_at.isoformat(),
            "url": url,
            "emailed": emailed,
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
    if known is not None and (why := kind_conflict(known[0], record.side)):
        # The account's kind may have changed since the invitation was sent.
        return _error(request, f"This invitation cannot be used: {why}.", 409)
    if request.method == "GET":
        return render(request, "invite.html", ctx)

    form = await request.form()
    user_id: int
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
        if password_too_short(password):
            errors["password"] = f"Use at least {MIN_PASSWORD} characters."
        elif password != str(form.get("confirm", "")):
            errors["confirm"] = "The two passwords differ."
        if errors:
            ctx.update(errors=errors, form={"name": name})
            return render(request, "invite.html", ctx, 400)
        user_id = 0
        password_hash = await svc.auth.hash_password(password)

    def join(s: Session) -> int | None:
        if not persistence.accept_invite(session=s, invite_id=record.id):
            return None  # used meanwhile: single use
        uid = (
            user_id
            or persistence.create_user(
                session=s,
                email=record.email,
                name=name,
                password_hash=password_hash,
                # Only the workspace owner can invite a new address to the vendor side (see
                # invite()): that makes the new account staff; every other one is a guest.
                is_staff=record.side == VENDOR,
            ).id
        )
        persistence.set_member(
            session=s, plan_id=plan_id, user_id=uid, role=record.role, side=record.side
        )
        persistence.record_access(
            session=s,
            plan_id=plan_id,
            kind="member.added",
            actor=f"{name} <{record.email}>",
            subject=record.email,
            detail=f"accepted invitation as {record.role}, {record.side} side",
            ip=guard.client_ip(request),
        )
        return uid

    try:
        uid = await svc.store.run(join)
    except persistence.DuplicateEmail:
        return _error(request, "An account with this email was created meanwhile; sign in.", 409)
    if uid is None:
        return _error(request, "This invitation was already used.", 410)
    response = RedirectResponse(f"/plans/{plan_id}", status_code=303)
    if me is None:
        set_session_cookie(request, response, await svc.auth.start_session(uid))
    return response

"""The workspace owner's People page and API: staff and guests, inviting staff, deactivating
accounts (thin adapters over ``server/identity/accounts.py``, which closes no sockets: this
module does); and password resets, which also give invited staff their first password."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

import persistence
from server import identity
from server.identity import (
    RESET_HOURS,
    VENDOR,
    Rule,
    StaffInvited,
    account_flag,
    new_reset,
    password_errors,
)
from server.live import Close, Closing
from server.plan import ApiError, text_field

from . import guard
from .cookies import set_session_cookie
from .guard import acting, rule
from .responses import base_url, read_json, render, services

log = logging.getLogger(__name__)


async def _new_reset(request: Request, user_id: int, hours: int) -> str:
    svc = services(request)
    return await new_reset(svc.store, svc.signer, base_url(request), user_id, hours)


# The workspace owner's actions (shared by the page and the JSON API)


def _person_json(
    entry: tuple[persistence.UserRecord, list[tuple[str, str, str]], datetime | None],
    titles: dict[str, str],
) -> dict[str, Any]:
    user, plans, last = entry
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "kind": "staff" if user.is_staff else "guest",
        "workspace_owner": user.is_owner,
        "active": user.deactivated_at is None,
        "deactivated_at": user.deactivated_at.isoformat() if user.deactivated_at else None,
        "last_sign_in": last.isoformat() if last else None,
        "plans": [
            {"id": pid, "title": titles.get(pid, pid), "role": role, "side": side}
            for pid, role, side in plans
        ],
    }


async def _people(request: Request) -> list[dict[str, Any]]:
    def load(s: Session) -> list[dict[str, Any]]:
        titles = {p.id: p.title for p in persistence.list_plans(session=s)}
        return [_person_json(e, titles) for e in persistence.list_accounts(session=s)]

    return await services(request).store.run(load)


async def invite_staff(request: Request, email: str, name: str) -> StaffInvited:
    """``identity.invite_staff`` for this request."""
    svc = services(request)
    return await identity.invite_staff(
        svc.store,
        svc.mailer,
        svc.signer,
        acting(request),
        base_url=base_url(request),
        email=email,
        name=name,
    )


async def update_person(
    request: Request, user_id: int, *, staff: bool | None, active: bool | None
) -> persistence.UserRecord:
    """``identity.change_account``; the account's open connections follow, then the access
    log records it."""
    svc = services(request)
    user = await identity.change_account(svc.store, user_id, staff=staff, active=active)
    if active is False:
        # Sessions and tokens are revoked in the database; open sockets end now too.
        closed = svc.rooms.close(
            Closing(None, Close.UNAUTHORIZED, "account deactivated", user_id=user_id)
        )
        log.info("account %d deactivated: %d sockets closed", user_id, closed)
    elif staff is False:
        # A guest is customer side everywhere: the internal plan closes to them at once.
        svc.rooms.close(Closing(None, Close.FORBIDDEN, "no access", user_id=user_id, side=VENDOR))
    await identity.account_changed(svc.store, acting(request), user, staff=staff, active=active)
    return user


# JSON API


@rule(Rule.WORKSPACE_OWNER)
async def people_api(request: Request) -> Response:
    return JSONResponse({"people": await _people(request)})


@rule(Rule.WORKSPACE_OWNER)
async def invite_staff_api(request: Request) -> Response:
    data = await read_json(request)
    done = await invite_staff(
        request,
        text_field(data, "email", max_len=320),
        text_field(data, "name", required=False),
    )
    return JSONResponse({**done.json(), "url": done.url}, status_code=201 if done.new else 200)


@rule(Rule.WORKSPACE_OWNER)
async def update_person_api(request: Request) -> Response:
    raw = request.path_params["user_id"]
    if not raw.isdigit():
        raise ApiError(404, "no such account")
    data = await read_json(request)
    staff, active = account_flag(data, "staff"), account_flag(data, "active")
    if staff is None and active is None:
        raise ApiError(400, 'send "staff" and/or "active" (true or false)')
    user = await update_person(request, int(raw), staff=staff, active=active)
    return JSONResponse(
        {
            "id": user.id,
            "email": user.email,
            "kind": "staff" if user.is_staff else "guest",
            "active": user.deactivated_at is None,
        }
    )


# The page

NOTICES = {
    "invite": "Staff invitation sent.",
    "staff": "Account made staff.",
    "guest": "Account made a guest.",
    "deactivate": "Account deactivated; its sessions, tokens and open connections ended.",
    "reactivate": "Account reactivated.",
}


@rule(Rule.WORKSPACE_OWNER)
async def people_page(request: Request) -> Response:
    ctx: dict[str, Any] = {"people": await _people(request), "error": None, "form": {}}
    ctx["notice"] = NOTICES.get(request.query_params.get("done", ""), "")
    ctx["invite_url"] = None
    if request.method == "POST":
        form = await request.form()
        field = {k: str(v).strip() for k, v in form.items() if isinstance(v, str)}
        action = field.get("action", "")
        try:
            if action == "invite":
                url = (
                    await invite_staff(request, field.get("email", ""), field.get("name", "")[:200])
                ).url
                if url is None:
                    return RedirectResponse("/workspace/people?done=staff", status_code=303)
                ctx["invite_url"] = url
                ctx["notice"] = NOTICES["invite"]
                ctx["people"] = await _people(request)
                return render(request, "people.html", ctx)
            if action not in ("staff", "guest", "deactivate", "reactivate"):
                raise ApiError(400, "unknown action")
            uid = field.get("user_id", "")
            if not uid.isdigit():
                raise ApiError(404, "no such account")
            await update_person(
                request,
                int(uid),
                staff={"staff": True, "guest": False}.get(action),
                active={"reactivate": True, "deactivate": False}.get(action),
            )
        except ApiError as exc:
            ctx.update(error=exc.detail, form=field)
            return render(request, "people.html", ctx, exc.status_code)
        return RedirectResponse(f"/workspace/people?done={action}", status_code=303)
    return render(request, "people.html", ctx)


# Password reset


async def _reset_limited(request: Request, email: str) -> bool:
    limits = services(request).limits
    ip = guard.client_ip(request)
    # The sign-in buckets: asking for resets is guessing at accounts just as signing in is.
    return not (
        await limits.signin.allow(f"{ip}|reset|{email}") and await limits.signin_ip.allow(ip)
    )


@rule(Rule.PUBLIC)
async def reset_request_page(request: Request) -> Response:
    ctx: dict[str, Any] = {"email": "", "sent": False, "error": None}
    if request.method == "GET":
        return render(request, "reset_request.html", ctx)
    form = await request.form()
    email = str(form.get("email", "")).strip().lower()[:320]
    ctx["email"] = email
    if await _reset_limited(request, email):
        log.warning("password reset rate limit hit")
        ctx["error"] = "Too many attempts. Wait a minute and try again."
        return render(request, "reset_request.html", ctx, 429)
    svc = services(request)
    found = await svc.store.run(lambda s: persistence.find_user(session=s, email=email))
    ctx["sent"] = True
    response = render(request, "reset_request.html", ctx)
    if found is not None and found[0].deactivated_at is None:
        url = await _new_reset(request, found[0].id, RESET_HOURS)
        body = (
            "Someone (hopefully you) asked to reset your Tandem password.\n\n"
            f"Open this link to choose a new one (it works once, for {RESET_HOURS} hours):"
            f"\n\n{url}\n\nIf you did not ask, ignore this message; your password stays.\n"
        )
        # Sent after the answer: how long SMTP takes must not tell whether the address exists.
        response.background = BackgroundTask(
            svc.mailer.send, found[0].email, "Reset your Tandem password", body
        )
        log.info("password reset requested for user %d", found[0].id)
    return response


INVALID = "This link is not valid, has expired or was already used. Ask for a new one."


@rule(Rule.PUBLIC)  # the signed reset link is the credential
async def reset_page(request: Request) -> Response:
    svc = services(request)
    value = svc.signer.loads("reset", request.path_params["token"])
    reset_id: str | None = None
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        reset_id = value[0]
    user = None
    if reset_id is not None:
        user = await svc.store.run(lambda s: persistence.reset_user(session=s, reset_id=reset_id))
    if reset_id is None or user is None:
        return render(
            request, "reset.html", {"invalid": INVALID, "errors": {}, "account": None}, 404
        )
    ctx: dict[str, Any] = {"invalid": None, "errors": {}, "account": user}
    if request.method == "GET":
        return render(request, "reset.html", ctx)
    form = await request.form()
    password = str(form.get("password", ""))
    ctx["errors"].update(password_errors(password, str(form.get("confirm", ""))))
    if ctx["errors"]:
        return render(request, "reset.html", ctx, 400)
    # Through the server's bound on concurrent hashes, like every other password.
    password_hash = await svc.auth.hash_password(password)
    done = await svc.store.run(
        lambda s: persistence.use_reset(session=s, reset_id=reset_id, password_hash=password_hash)
    )
    if done is None:
        return render(request, "reset.html", {**ctx, "invalid": INVALID, "account": None}, 410)
    # Every session ended with the old password; sockets opened by them end now too.
    svc.rooms.close(
        Closing(None, Close.UNAUTHORIZED, "password changed", user_id=done.id, via="session")
    )
    await guard.record_access(
        request, "password.reset", plan_id=None, actor=done.name, subject=done.email
    )
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(request, response, await svc.auth.start_session(done.id))
    return response

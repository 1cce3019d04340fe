"""Server-rendered pages: first-run setup, sign-in, the plan list and the editor."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

import persistence
from server import notify
from server import plan as domain
from server.identity import (
    SESSION_COOKIE,
    Identity,
    Rule,
    password_errors,
    valid_email,
)
from server.live import Close, Closing
from server.plan import ApiError

from .. import guard
from ..cookies import set_session_cookie
from ..guard import identity_of, rule
from ..history import since_last_visit
from ..presenters import editor_context, person_json
from ..responses import base_url, render, services

log = logging.getLogger(__name__)


def _safe_next(value: str | None) -> str:
    # No control characters or spaces either: browsers drop tabs and newlines from URLs, so
    # "/\t/evil.example" is "//evil.example" to them (only Starlette's quoting of the Location
    # header kept it on-site, and the login form echoed it back raw).
    if (
        value
        and value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
        and not any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value)
    ):
        return value
    return "/"


def _signed_in(request: Request, cookie: str, target: str) -> Response:
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, cookie)
    return response


async def _has_users(request: Request) -> bool:
    return await services(request).store.run(lambda s: persistence.count_users(session=s)) > 0


@rule(Rule.PUBLIC)
async def setup(request: Request) -> Response:
    if await _has_users(request):
        # Signed in already: the plans, not a form for something done.
        signed_in = await guard.account(request) is not None
        return RedirectResponse("/" if signed_in else "/login", status_code=303)
    errors: dict[str, str] = {}
    form: dict[str, str] = {}
    if request.method == "POST":
        raw = await request.form()
        form = {k: str(raw.get(k, "")).strip() for k in ("name", "email")}
        password = str(raw.get("password", ""))
        if not form["name"]:
            errors["name"] = "Enter your name."
        elif len(form["name"]) > 200:
            # users.name is VARCHAR(200): PostgreSQL refused a longer one with a 500.
            errors["name"] = "Keep it under 200 characters."
        if valid_email(form["email"]) is None:
            errors["email"] = "Enter a valid email address."
        errors.update(password_errors(password, str(raw.get("confirm", ""))))
        if not errors:
            svc = services(request)
            password_hash = await svc.auth.hash_password(password)

            def create(s: Session) -> persistence.UserRecord | None:
                # Checked again inside the transaction: two first visitors cannot both become owner.
                if persistence.count_users(session=s):
                    return None
                return persistence.create_user(
                    session=s,
                    email=form["email"],
                    name=form["name"],
                    password_hash=password_hash,
                    is_owner=True,
                )

            user = await svc.store.run(create)
            if user is None:
                return RedirectResponse("/login", status_code=303)
            log.info("workspace owner created (user %d)", user.id)
            return _signed_in(request, await svc.auth.start_session(user.id), "/")
    return render(request, "setup.html", {"errors": errors, "form": form}, 400 if errors else 200)


@rule(Rule.PUBLIC)
async def login(request: Request) -> Response:
    if not await _has_users(request):
        return RedirectResponse("/setup", status_code=303)
    target = _safe_next(request.query_params.get("next"))
    if request.method == "GET" and await guard.account(request) is not None:
        return RedirectResponse(target, status_code=303)  # signed in already
    error = None
    email = ""
    if request.method == "POST":
        raw = await request.form()
        email = str(raw.get("email", "")).strip()
        password = str(raw.get("password", ""))
        target = _safe_next(str(raw.get("next", "/")))
        svc = services(request)
        ip = guard.client_ip(request)
        key = f"{ip}|{email.lower()}"
        if not (await svc.limits.signin.allow(key) and await svc.limits.signin_ip.allow(ip)):
            log.warning("sign-in rate limit hit")
            response = render(
                request,
                "login.html",
                {
                    "error": "Too many attempts. Wait a minute and try again.",
                    "email": email,
                    "next": target,
                },
                429,
            )
            response.headers["retry-after"] = str(svc.limits.signin.retry_after(key))
            return response
        found = await svc.store.run(lambda s: persistence.find_user(session=s, email=email))
        # Verified against a dummy hash when the email is unknown: the same time either way. A
        # deactivated account cannot sign in, and is told so no differently from a wrong
        # password (the answer never says whether an address has an account).
        verified = await svc.auth.verify_password(found[1] if found else None, password)
        if verified and found is not None and found[0].deactivated_at is None:
            log.info("sign-in: user %d", found[0].id)
            await guard.record_access(
                request, "signin", plan_id=None, actor=found[0].name, subject=found[0].email
            )
            return _signed_in(request, await svc.auth.start_session(found[0].id), target)
        log.info("failed sign-in")
        await guard.record_access(
            request, "signin.failed", plan_id=None, actor="unknown", subject=email.lower()[:320]
        )
        error = "That email and password do not match an account."
    return render(
        request,
        "login.html",
        {"error": error, "email": email, "next": target},
        401 if error else 200,
    )


@rule(Rule.PUBLIC)  # checks its own CSRF field: signing out needs no valid session
async def logout(request: Request) -> Response:
    svc = services(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    form = await request.form()
    if not svc.auth.check_csrf(cookie, str(form.get("csrf", ""))):
        return render(request, "error.html", {"message": "Your session changed; try again."}, 403)
    await svc.auth.end_session(cookie)
    sid = svc.auth.session_id(cookie)
    if sid is not None:  # no session, no sockets of it (None would match every session)
        svc.rooms.close(
            Closing(None, Close.UNAUTHORIZED, "signed out", via="session", credential_id=sid)
        )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@rule(Rule.SIGNED_IN)
async def plan_list(request: Request) -> Response:
    return await _plan_list(request)


@rule(Rule.STAFF)  # guests see the plans they are invited to, and create none
async def create_plan_form(request: Request) -> Response:
    return await _plan_list(request, create=True)


CALENDAR_NOTICES = {
    "create": "Your calendar URL is ready: copy it now, it is shown only once.",
    "revoke": "Your calendar URL is turned off; calendars using it get nothing more.",
}


@rule(Rule.SIGNED_IN)  # the plan list's calendar card: make, replace or turn off one's feed
async def calendar_form(request: Request) -> Response:
    svc, user_id = services(request), identity_of(request).account_id
    action = str((await request.form()).get("action", ""))
    calendar: dict[str, str] = {}
    if action == "create":
        token, _at = await notify.create_feed(svc.store, svc.signer, user_id)
        calendar["url"] = notify.feed_url(base_url(request), token)
    elif action == "revoke":
        await notify.revoke_feed(svc.store, user_id)
    else:
        return render(request, "error.html", {"message": "Unknown calendar action."}, 400)
    calendar["notice"] = CALENDAR_NOTICES[action]
    return await _plan_list(request, calendar=calendar)


async def _plan_list(
    request: Request, *, create: bool = False, calendar: dict[str, str] | None = None
) -> Response:
    identity = identity_of(request)
    svc = services(request)
    errors: dict[str, str] = {}
    form = {"title": "", "customer": "", "template": ""}
    if create:
        raw = await request.form()
        form = {k: str(raw.get(k, "")).strip() for k in form}
        for key, label in (("title", "a title"), ("customer", "the customer's name")):
            if not form[key]:
                errors[key] = f"Enter {label}."
            elif len(form[key]) > 200:
                errors[key] = f"Keep it to 200 characters: this one has {len(form[key]):,}."
        content = None
        try:
            content = await domain.template_content(svc.store, form["template"])
        except ApiError as exc:
            errors["template"] = str(exc.detail)
        if not errors:
            plan = await domain.new_plan(
                svc.store,
                svc.materialiser,
                title=form["title"],
                customer=form["customer"],
                user_id=identity.user_id,
                content=content,
            )
            return RedirectResponse(f"/plans/{plan.id}", status_code=303)
    # h7: the list a CSM works from (search, filters, sorting): see server/plan/listing.py.
    list_error = None
    try:
        query = domain.parse_query(request.query_params)
    except ApiError as exc:
        query, list_error = domain.ListQuery(), str(exc.detail)
    rows = await domain.plan_rows(svc.store, identity, query)
    for row in rows:
        row["present"] = [person_json(i) for i in svc.rooms.present(row["plan"].id)]
    templates = await domain.list_templates(svc.store) if identity.staff else []
    context = {
        "user": identity,
        "rows": rows,
        "errors": errors,
        "form": form,
        "templates": templates,
        "query": query.as_form(),
        "filtered": query != domain.ListQuery(),
        "list_error": list_error,
        "sorts": LIST_SORTS,
        "customers": domain.customers(rows),
        "calendar": calendar or {},
        "calendar_since": await notify.feed_created(svc.store, identity.account_id),
    }
    return render(request, "plans.html", context, 400 if errors or list_error else 200)


LIST_SORTS = {
    "updated": "Last edited",
    "status": "Status (red first)",
    "overdue": "Most overdue",
    "next_milestone": "Next milestone",
    "progress": "Progress (least first)",
    "title": "Title",
    "customer": "Customer",
}


def visible_plans(s: Session, identity: Identity) -> list[persistence.PlanRecord]:
    """The workspace owner sees every plan; everyone else the plans they are a member of."""
    if identity.workspace_owner:
        return persistence.list_plans(session=s)
    return persistence.plans_of_member(session=s, user_id=identity.account_id)


@rule(Rule.PLAN_VIEW)
async def plan_page(request: Request) -> Response:
    context = editor_context(request)
    context["since"] = await since_last_visit(request)
    return render(request, "plan.html", context)


@rule(Rule.PLAN_VENDOR)
async def internal_page(request: Request) -> Response:
    return render(request, "plan.html", editor_context(request, internal=True))

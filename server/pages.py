"""Server-rendered pages: first-run setup, sign-in, the plan list and the editor."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

import persistence

from . import catalog
from .auth import SESSION_COOKIE, hash_password, verify_password
from .channel import Identity
from .protocol import Close
from .web import ApiError, colour_for, login_redirect, page_caller, services

log = logging.getLogger(__name__)

MIN_PASSWORD = 8


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    svc = services(request)
    context.setdefault("user", None)
    context["csrf_token"] = svc.auth.csrf_token(request.cookies.get(SESSION_COOKIE))
    return svc.templates.TemplateResponse(request, name, context, status_code=status)


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _signed_in(request: Request, cookie: str, target: str) -> Response:
    response = RedirectResponse(target, status_code=303)
    settings = services(request).settings
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=settings.session_days * 86400,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    return response


async def _has_users(request: Request) -> bool:
    return await services(request).store.run(lambda s: persistence.count_users(session=s)) > 0


async def setup(request: Request) -> Response:
    if await _has_users(request):
        return RedirectResponse("/login", status_code=303)
    errors: dict[str, str] = {}
    form: dict[str, str] = {}
    if request.method == "POST":
        raw = await request.form()
        form = {k: str(raw.get(k, "")).strip() for k in ("name", "email")}
        password = str(raw.get("password", ""))
        if not form["name"]:
            errors["name"] = "Enter your name."
        if "@" not in form["email"] or len(form["email"]) > 320:
            errors["email"] = "Enter a valid email address."
        if len(password) < MIN_PASSWORD:
            errors["password"] = f"Use at least {MIN_PASSWORD} characters."
        elif password != str(raw.get("confirm", "")):
            errors["confirm"] = "The two passwords differ."
        if not errors:
            svc = services(request)

            def create(s):  # type: ignore[no-untyped-def]
                # Checked again inside the transaction: two first visitors cannot both become owner.
                if persistence.count_users(session=s):
                    return None
                return persistence.create_user(
                    session=s,
                    email=form["email"],
                    name=form["name"],
                    password_hash=hash_password(password),
                    is_owner=True,
                )

            user = await svc.store.run(create)
            if user is None:
                return RedirectResponse("/login", status_code=303)
            log.info("workspace owner created (user %d)", user.id)
            return _signed_in(request, await svc.auth.start_session(user.id), "/")
    return _render(request, "setup.html", {"errors": errors, "form": form}, 400 if errors else 200)


async def login(request: Request) -> Response:
    if not await _has_users(request):
        return RedirectResponse("/setup", status_code=303)
    target = _safe_next(request.query_params.get("next"))
    error = None
    email = ""
    if request.method == "POST":
        raw = await request.form()
        email = str(raw.get("email", "")).strip()
        password = str(raw.get("password", ""))
        target = _safe_next(str(raw.get("next", "/")))
        svc = services(request)
        found = await svc.store.run(lambda s: persistence.find_user(session=s, email=email))
        if found is not None and verify_password(found[1], password):
            log.info("sign-in: user %d", found[0].id)
            return _signed_in(request, await svc.auth.start_session(found[0].id), target)
        verify_password(None, password) if found is None else None
        log.info("failed sign-in")
        error = "That email and password do not match an account."
    return _render(
        request, "login.html", {"error": error, "email": email, "next": target}, 401 if error else 200
    )


async def logout(request: Request) -> Response:
    svc = services(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    form = await request.form()
    if not svc.auth.check_csrf(cookie, str(form.get("csrf", ""))):
        return _render(request, "error.html", {"message": "Your session changed; try again."}, 403)
    await svc.auth.end_session(cookie)
    sid = svc.auth.session_id(cookie)
    for conn in svc.rooms.connections():
        if conn.identity.via == "session" and conn.identity.credential_id == sid:
            conn.close(Close.UNAUTHORIZED, "signed out")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def _person(identity: Identity) -> dict[str, str]:
    return {"name": identity.name, "color": colour_for(identity)}


async def plan_list(request: Request) -> Response:
    identity = await page_caller(request)
    if identity is None:
        if not await _has_users(request):
            return RedirectResponse("/setup", status_code=303)
        return login_redirect(request)
    svc = services(request)
    errors: dict[str, str] = {}
    form = {"title": "", "customer": "", "template": ""}
    if request.method == "POST":
        raw = await request.form()
        if not svc.auth.check_csrf(request.cookies.get(SESSION_COOKIE), str(raw.get("csrf", ""))):
            return _render(request, "error.html", {"message": "Your session changed; try again."}, 403)
        form = {k: str(raw.get(k, "")).strip() for k in form}
        for key, label in (("title", "a title"), ("customer", "the customer's name")):
            if not form[key]:
                errors[key] = f"Enter {label}."
            elif len(form[key]) > 200:
                errors[key] = "Keep it under 200 characters."
        content = None
        try:
            content = await catalog.template_content(svc.store, form["template"])
        except ApiError as exc:
            errors["template"] = str(exc.detail)
        if not errors:
            plan = await catalog.create_plan(
                svc.store,
                title=form["title"],
                customer=form["customer"],
                user_id=identity.user_id,
                content=content,
            )
            if content is not None:
                await svc.materialiser.flush(plan.id)
            return RedirectResponse(f"/plans/{plan.id}", status_code=303)
    plans = await svc.store.run(lambda s: persistence.list_plans(session=s))
    rows = [{"plan": p, "present": [_person(i) for i in svc.rooms.present(p.id)]} for p in plans]
    templates = await catalog.list_templates(svc.store)
    context = {"user": identity, "rows": rows, "errors": errors, "form": form, "templates": templates}
    return _render(request, "plans.html", context, 400 if errors else 200)


async def plan_page(request: Request) -> Response:
    identity = await page_caller(request)
    if identity is None:
        return login_redirect(request)
    svc = services(request)
    plan_id = request.path_params["plan_id"]
    plan = await svc.store.run(lambda s: persistence.get_plan(session=s, plan_id=plan_id))
    if plan is None:
        return _render(request, "error.html", {"user": identity, "message": "No such plan."}, 404)
    ws_scheme = "wss" if request.url.scheme == "https" else "ws"
    config = {
        "planId": plan.id,
        "wsUrl": f"{ws_scheme}://{request.url.netloc}/ws/plans",
        "user": _person(identity),
        "readOnly": identity.read_only,
        "closeCodes": {c.name: int(c) for c in Close},
    }
    # Escaped so that no user text can end the <script> element it is embedded in.
    config_json = (
        json.dumps(config).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    )
    return _render(request, "plan.html", {"user": identity, "plan": plan, "config_json": config_json})


routes = [
    Route("/setup", setup, methods=["GET", "POST"]),
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/", plan_list, methods=["GET", "POST"], name="plan_list"),
    Route("/plans/{plan_id}", plan_page, methods=["GET"], name="plan_page"),
]

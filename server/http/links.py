"""Share links and CRM embed URLs over HTTP: the JSON API (creating, listing and revoking,
thin adapters over ``server/plan/sharing.py``) and the visitor's way in.

A visitor opens ``/s/<token>``, gives a name (and, for a domain-locked link, proves an address
in that domain with a one-time code), and gets a signed cookie for that one plan only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

import persistence
from server import plan as sharing
from server.identity import CODE_MINUTES, Rule, valid_email, visitor_name
from server.plan import text_field

from . import guard
from .cookies import set_visit_cookie
from .guard import acting, plan_of, rule, usable_link
from .responses import base_url, read_json, render, services

log = logging.getLogger(__name__)

CODE_ATTEMPTS = 5


def link_token(request: Request, link: persistence.LinkRecord) -> str:
    return sharing.link_token(services(request).signer, link)


def link_url(request: Request, link: persistence.LinkRecord) -> str:
    return sharing.link_url(services(request).signer, base_url(request), link)


async def create(
    request: Request,
    *,
    kind: str,
    role: str,
    expires_at: Any,
    label: str,
    domain: Any,
    history: Any = False,
) -> persistence.LinkRecord:
    """A link to this request's plan (``plan.create_link``)."""
    return await sharing.create_link(
        services(request).store,
        acting(request),
        plan_of(request).id,
        kind=kind,
        role=role,
        expires_at=expires_at,
        label=label,
        domain=domain,
        history=history,
    )


async def revoke(request: Request, link_id: str) -> None:
    svc = services(request)
    await sharing.revoke_link(svc.store, svc.rooms, acting(request), plan_of(request).id, link_id)


def link_json(request: Request, link: persistence.LinkRecord) -> dict[str, Any]:
    at = datetime.now(UTC)
    return {
        "id": link.id,
        "kind": link.kind,
        "role": link.role,
        "label": link.label,
        "domain": link.domain,
        "created_at": link.created_at.isoformat(),
        "expires_at": link.expires_at.isoformat(),
        "revoked_at": link.revoked_at.isoformat() if link.revoked_at else None,
        "last_used_at": link.last_used_at.isoformat() if link.last_used_at else None,
        "uses": link.uses,
        "active": link.usable(at),
        "history": link.history,
    }


# JSON API


async def _create_api(request: Request, kind: str) -> Response:
    data = await read_json(request)
    link = await create(
        request,
        kind=kind,
        role=text_field(data, "role", max_len=16),
        expires_at=data.get("expires_at"),
        label=text_field(data, "label", required=False),
        domain=data.get("domain"),
        history=data.get("history", False),
    )
    token = link_token(request, link)
    body = {**link_json(request, link), "url": link_url(request, link), "token": token}
    return JSONResponse(body, status_code=201)


@rule(Rule.PLAN_OWNER)
async def create_link_api(request: Request) -> Response:
    return await _create_api(request, "share")


@rule(Rule.PLAN_OWNER)
async def create_embed_api(request: Request) -> Response:
    return await _create_api(request, "embed")


@rule(Rule.PLAN_OWNER)
async def list_links_api(request: Request) -> Response:
    plan_id = plan_of(request).id
    links = await services(request).store.run(
        lambda s: persistence.list_links(session=s, plan_id=plan_id)
    )
    return JSONResponse({"links": [link_json(request, link) for link in links]})


# Taking access away, or reusing the content, is still allowed once archived.
@rule(Rule.PLAN_OWNER, on_archived=True)
async def revoke_link_api(request: Request) -> Response:
    await revoke(request, request.path_params["link_id"])
    return Response(status_code=204)


# The visitor's way in


def _code_hash(secret: str, code_id: str, code: str) -> str:
    return hmac.new(secret.encode(), f"code:{code_id}:{code}".encode(), hashlib.sha256).hexdigest()


def enter(request: Request, link: persistence.LinkRecord, name: str, email: str | None) -> Response:
    """Set the visitor's cookie for this plan only, and open the plan."""
    target = f"/plans/{link.plan_id}" if link.kind == "share" else None
    response = RedirectResponse(target or "/", status_code=303)
    set_visit_cookie(request, response, link, name, email)
    return response


@rule(Rule.PUBLIC)  # the signed link is the credential
async def visit_page(request: Request) -> Response:
    svc = services(request)
    link = await usable_link(request, "link")
    if link is None:
        return render(request, "error.html", {"message": "This link is not valid any more."}, 404)
    plan = await svc.store.run(lambda s: persistence.get_plan(session=s, plan_id=link.plan_id))
    ctx: dict[str, Any] = {"link": link, "plan": plan, "errors": {}, "form": {}, "step": "name"}
    if request.method == "GET":
        return render(request, "visit.html", ctx)
    form = await request.form()
    step = str(form.get("step", "name"))
    ip = guard.client_ip(request)
    if step == "code" and link.domain:
        return await _check_code(request, link, form, ctx)
    name = visitor_name(str(form.get("name", "")))
    email = valid_email(str(form.get("email", ""))) if link.domain else None
    ctx["form"] = {"name": name, "email": str(form.get("email", ""))[:320]}
    if not name:
        ctx["errors"]["name"] = "Enter your name: the others in the plan will see it."
    if link.domain and not (email and email.endswith("@" + link.domain)):
        ctx["errors"]["email"] = f"Enter your address at {link.domain}."
    if ctx["errors"]:
        return render(request, "visit.html", ctx, 400)
    if not link.domain:
        await _used(request, link, name, None)
        return enter(request, link, name, None)
    # A domain-locked link got past the checks above only with an address at its domain.
    assert email is not None
    if not (await svc.limits.codes.allow(ip) and await svc.limits.codes.allow(f"to:{email}")):
        ctx["errors"]["email"] = "Too many codes requested. Wait a minute and try again."
        return render(request, "visit.html", ctx, 429)
    code_id = secrets.token_hex(8)
    code = f"{secrets.randbelow(10**6):06d}"
    digest = _code_hash(svc.settings.secret_key, code_id, code)
    await svc.store.run(
        lambda s: persistence.create_code(
            session=s,
            code_id=code_id,
            link_id=link.id,
            email=email,
            code_hash=digest,
            expires_at=datetime.now(UTC) + timedelta(minutes=CODE_MINUTES),
        )
    )
    await svc.mailer.send(
        email,
        f"Your code for {plan.title if plan else 'Tandem'}: {code}",
        f"Your one-time code is {code}\n\nIt works once, for {CODE_MINUTES} minutes.\n",
        plan_id=link.plan_id,
    )
    ctx.update(step="code", pending=svc.signer.dumps("code", [code_id, link.id, name, email]))
    return render(request, "visit.html", ctx)


async def _check_code(
    request: Request, link: persistence.LinkRecord, form: FormData, ctx: dict[str, Any]
) -> Response:
    svc = services(request)
    pending = svc.signer.loads("code", str(form.get("pending", "")))
    if not (isinstance(pending, list) and len(pending) == 4 and pending[1] == link.id):
        ctx["errors"]["name"] = "That code request expired. Start again."
        return render(request, "visit.html", ctx, 400)
    code_id, _link, name, email = pending
    ctx.update(step="code", pending=str(form.get("pending", "")))
    if not await svc.limits.codes.allow(guard.client_ip(request)):
        ctx["errors"]["code"] = "Too many tries. Wait a minute and try again."
        return render(request, "visit.html", ctx, 429)
    code = str(form.get("code", "")).strip()
    expected = _code_hash(svc.settings.secret_key, code_id, code)
    ok = await svc.store.run(
        lambda s: persistence.use_code(
            session=s,
            code_id=code_id,
            link_id=link.id,
            email=email,
            matches=lambda h: hmac.compare_digest(h, expected),
            max_attempts=CODE_ATTEMPTS,
        )
    )
    if not ok:
        ctx["errors"]["code"] = "That code is wrong or has expired."
        return render(request, "visit.html", ctx, 400)
    await _used(request, link, name, email)
    return enter(request, link, name, email)


async def _used(
    request: Request, link: persistence.LinkRecord, name: str, email: str | None
) -> None:
    await sharing.link_used(
        services(request).store, link, name=name, email=email, ip=guard.client_ip(request)
    )

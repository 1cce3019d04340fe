"""Who may do what: roles, sides, and the one table of access rules every route declares.

Every HTTP and websocket endpoint is wrapped by ``@rule(...)``; the wrapper resolves the caller,
scopes them to the plan in the path, enforces the rule, and leaves the scoped identity (and the
plan) on the request, where the endpoint reads them with ``identity_of`` and ``plan_of``.
``create_app`` refuses to start with a route that has no rule, and the authorization-matrix
test enumerates the same route table.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.websockets import WebSocket

import persistence
from server.identity import (
    CUSTOMER,
    EDITOR,
    OWNER,
    SESSION_COOKIE,
    VENDOR,
    VIEWER,
    Acting,
    Identity,
    Rule,
    allowed,
    log_access,
    visitor_name,
)
from server.live import Close
from server.plan import ApiError

from .cookies import read_visit
from .responses import credentials, error_page, login_redirect, services

log = logging.getLogger(__name__)


def client_ip(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "unknown"


# Resolving callers


async def account(conn: HTTPConnection) -> Identity | None:
    """The signed-in account behind a session cookie or an API token, if any.

    Websockets may carry the API token as ``?token=`` (browsers cannot set their headers).
    """
    creds = credentials(conn, allow_query_token=isinstance(conn, WebSocket))
    return await services(conn).auth.identify(creds)


async def visitor(conn: HTTPConnection, plan_id: str) -> Identity | None:
    """A link or embed visitor of this plan, from their signed per-plan cookie."""
    visit = read_visit(conn, plan_id)
    if visit is None:
        return None
    return await link_identity(conn, visit.link_id, plan_id, name=visit.name, email=visit.email)


async def usable_link(request: Request, purpose: str) -> persistence.LinkRecord | None:
    svc = services(request)
    value = svc.signer.loads(purpose, request.path_params["token"])
    if not (isinstance(value, list) and len(value) == 2):
        return None
    link = await svc.store.run(lambda s: persistence.get_link(session=s, link_id=value[0]))
    if link is None or link.plan_id != value[1] or not link.usable(datetime.now(UTC)):
        return None
    if link.kind != ("share" if purpose == "link" else "embed"):
        return None
    return link


async def link_identity(
    conn: HTTPConnection, link_id: str, plan_id: str, *, name: str, email: str | None
) -> Identity | None:
    link = await services(conn).store.run(
        lambda s: persistence.get_link(session=s, link_id=link_id)
    )
    if link is None or link.plan_id != plan_id or not link.usable(datetime.now(UTC)):
        return None
    if link.domain and not (email and email.lower().endswith("@" + link.domain)):
        return None
    return Identity(
        user_id=None,
        name=visitor_name(str(name), "Guest"),
        email=email,
        via="link" if link.kind == "share" else "embed",
        credential_id=link.id,
        read_only=link.role != EDITOR,
        plan_id=plan_id,
        role=link.role,
        side=CUSTOMER,
        history=link.history,
    )


async def scoped(conn: HTTPConnection, identity: Identity, plan_id: str) -> Identity | None:
    """An account's identity in one plan (its role and side), or None if it has none there."""
    member = await services(conn).store.run(
        lambda s: persistence.get_member(session=s, plan_id=plan_id, user_id=identity.account_id)
    )
    if member is not None:
        # A member's side follows the account kind: a guest is customer side whatever a row
        # says, so no stale or forged row can open the internal plan to one.
        role, side = member.role, member.side if identity.staff else CUSTOMER
    elif identity.workspace_owner:
        role, side = OWNER, VENDOR
    else:
        return None
    return dataclasses.replace(
        identity, plan_id=plan_id, role=role, side=side, read_only=role == VIEWER
    )


async def plan_caller(conn: HTTPConnection, plan_id: str) -> tuple[Identity | None, bool]:
    """(the caller scoped to the plan or None, whether any credential was valid at all)."""
    found = await account(conn)
    if found is not None:
        inside = await scoped(conn, found, plan_id)
        if inside is not None:
            return inside, True
    visiting = await visitor(conn, plan_id)
    return visiting, found is not None or visiting is not None


# The decorator every endpoint wears

Endpoint = Callable[..., Awaitable[Any]]


def rule(rule_: Rule, *, on_archived: bool = False) -> Callable[[Endpoint], Endpoint]:
    """``on_archived``: the endpoint changes something on an archived plan too (restoring it,
    deleting it, taking access away); every other change to an archived plan answers 409."""

    def decorate(fn: Endpoint) -> Endpoint:
        @functools.wraps(fn)
        async def guarded(conn: Request | WebSocket) -> Any:
            if isinstance(conn, WebSocket):
                return await _guard_socket(rule_, fn, conn)
            return await _guard_http(rule_, fn, conn, on_archived)

        # On the function itself (Starlette calls a plain function with the request, and
        # treats anything else as an ASGI app), for the URL table's check in routes.py.
        vars(guarded).update(access_rule=rule_, on_archived=on_archived)
        return guarded

    return decorate


def identity_of(conn: HTTPConnection) -> Identity:
    """The caller as ``@rule`` resolved and scoped them, for the endpoint it guards."""
    identity = conn.state.identity
    if not isinstance(identity, Identity):
        raise RuntimeError(f"{conn.url.path}: no identity; is the endpoint behind @rule?")
    return identity


def plan_of(conn: HTTPConnection) -> persistence.PlanRecord:
    """The plan in the path, as ``@rule`` found it (plan rules only)."""
    plan = conn.state.plan
    if not isinstance(plan, persistence.PlanRecord):
        raise RuntimeError(f"{conn.url.path}: no plan; is the endpoint behind a plan rule?")
    return plan


LINK_GONE = (
    "The link you opened this plan with is not valid any more: it was revoked or it expired. "
    "Ask the person who shared it for a new one."
)


def _visited(conn: HTTPConnection, plan_id: str) -> bool:
    """Whether the caller holds a genuine visit cookie for this plan (its link may be gone)."""
    return read_visit(conn, plan_id) is not None


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _refuse(request: Request, status: int, message: str) -> Response:
    if _is_api(request):
        raise ApiError(status, message)
    return await error_page(request, message, status)


async def _csrf_ok(request: Request, identity: Identity) -> bool:
    if request.method in ("GET", "HEAD", "OPTIONS") or identity.via == "token":
        return True  # bearer tokens cannot be sent by another site
    if identity.via != "session":
        return False  # link and embed visitors change nothing over HTTP
    auth = services(request).auth
    cookie = request.cookies.get(SESSION_COOKIE)
    if _is_api(request):
        return auth.check_csrf(cookie, request.headers.get("x-csrf-token"))
    form = await request.form()  # cached by Starlette for the endpoint
    return auth.check_csrf(cookie, str(form.get("csrf", "")))


EDIT_REFUSED = "only the plan's owners and editors can do this; viewers and visitors cannot"
HISTORY_REFUSED = (
    "this link does not show the plan's history; ask an owner for a link created with history"
)

ARCHIVED_MESSAGE = "this plan is archived and read-only; an owner can restore it first"


def archived_view(identity: Identity) -> Identity:
    """An archived plan is read-only for everyone in it, as for a viewer."""
    return dataclasses.replace(identity, read_only=True)


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def same_site_post(request: Request) -> bool:
    """Whether a request that changes something may come from where it says it comes from.

    Checked before any credential, so it also covers the forms that need none (sign-in, setup,
    a share link's name form, accepting an invitation): posted from another site they signed
    the browser in as the attacker. Browsers send Origin with every cross-site POST ("null" from
    sandboxes and no-referrer pages); without it the Referer decides; with neither the sender
    is no browser, so no victim's cookies or session can be involved. Bearer-token calls are
    exempt: another site cannot make a browser send them.
    """
    if request.method in SAFE_METHODS:
        return True
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return True
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    here = {request.headers.get("host")}
    base = services(request).settings.base_url
    if base:
        here.add(urlsplit(base).netloc)
    try:
        there = urlsplit(source).netloc
    except ValueError:
        return False
    return bool(there) and there in here


async def _guard_http(rule_: Rule, fn: Endpoint, request: Request, on_archived: bool) -> Any:
    if not same_site_post(request):
        log.warning("refused a cross-site %s to %s", request.method, request.url.path)
        return await _refuse(request, 403, "refused: this form was sent from another site")
    if rule_ is Rule.PUBLIC:
        return await fn(request)
    plan_id = request.path_params.get("plan_id")
    if rule_ in (Rule.SIGNED_IN, Rule.STAFF, Rule.WORKSPACE_OWNER) or plan_id is None:
        identity = await account(request)
        if identity is None:
            if _is_api(request):
                raise ApiError(
                    401, "authentication required: sign in or send Authorization: Bearer <token>"
                )
            return login_redirect(request)
        if not allowed(rule_, identity):
            if rule_ is Rule.STAFF:
                return await _refuse(
                    request, 403, "only workspace staff can do this; guests cannot"
                )
            return await _refuse(request, 403, "only the workspace owner can do this")
    else:
        identity, known = await plan_caller(request, plan_id)
        if identity is None:
            if not known:
                if _is_api(request):
                    raise ApiError(
                        401,
                        "authentication required: sign in or send Authorization: Bearer <token>",
                    )
                if _visited(request, plan_id):
                    # A link visitor has no account: a sign-in page would be a dead end.
                    return await _refuse(request, 403, LINK_GONE)
                return login_redirect(request)
            # Not a member: the same answer as for a plan that does not exist.
            return await _refuse(request, 404, f"no plan with id {plan_id!r}")
        plan = await services(request).store.run(
            lambda s: persistence.get_plan(session=s, plan_id=plan_id)
        )
        if plan is None:
            return await _refuse(request, 404, f"no plan with id {plan_id!r}")
        request.state.plan = plan
        if not allowed(rule_, identity):
            if rule_ is Rule.PLAN_VENDOR:
                # A member on the customer side, or a link visitor: they know the plan, so say
                # why rather than that it does not exist (the status stays 404, as before).
                return await _refuse(
                    request, 404, "The internal account plan is for the vendor team only."
                )
            if rule_ is Rule.PLAN_HISTORY:
                return await _refuse(request, 403, HISTORY_REFUSED)
            if rule_ is Rule.PLAN_MEMBER:
                return await _refuse(
                    request, 403, "only the plan's members with an account can do this"
                )
            if rule_ is Rule.PLAN_EDIT:
                return await _refuse(request, 403, EDIT_REFUSED)
            return await _refuse(request, 403, "only the plan's owners can do this")
    if not await _csrf_ok(request, identity):
        return await _refuse(request, 403, "missing or wrong CSRF token (X-CSRF-Token header)")
    plan = getattr(request.state, "plan", None)
    if plan is not None and plan.archived:
        identity = archived_view(identity)
        if request.method not in ("GET", "HEAD", "OPTIONS") and not on_archived:
            return await _refuse(request, 409, ARCHIVED_MESSAGE)
    request.state.identity = identity
    return await fn(request)


def _same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:  # not a browser: cookies are not sent cross-site without one
        return True
    return urlsplit(origin).netloc == websocket.headers.get("host")


async def _socket_caller(websocket: WebSocket, plan_id: str) -> tuple[Identity | None, bool]:
    token = websocket.query_params.get("token")
    if token and token.startswith("tdl_"):
        # A share link's own token, for stock Yjs clients; domain-locked links need a visit.
        svc = services(websocket)
        value = svc.signer.loads("link", token)
        if not (isinstance(value, list) and len(value) == 2 and value[1] == plan_id):
            return None, False
        name = visitor_name(websocket.query_params.get("name") or "", "Guest")
        found = await link_identity(websocket, value[0], plan_id, name=name, email=None)
        return found, found is not None
    return await plan_caller(websocket, plan_id)


async def _guard_socket(rule_: Rule, fn: Endpoint, websocket: WebSocket) -> Any:
    svc = services(websocket)
    plan_id = websocket.path_params["plan_id"]
    # Accept first: a close code can only be sent on an open socket, and a browser is
    # told nothing useful by a refused handshake.
    await websocket.accept()
    if svc.readiness.draining:
        # This process is stopping: the client reconnects at once, to another one.
        await websocket.close(Close.SERVER_SHUTDOWN, "server restarting, reconnect")
        return
    ip = client_ip(websocket)
    if not await svc.limits.ws_connects.allow(ip):
        log.warning("ws %s: refused, too many connects from one address", plan_id)
        await websocket.close(Close.TOO_MANY, "too many connections, slow down")
        return
    ticket = await svc.limits.admit_unauthenticated(svc.settings.max_unauthenticated_sockets)
    if ticket is None:
        log.warning("ws %s: refused, too many sockets waiting to authenticate", plan_id)
        await websocket.close(Close.TOO_MANY, "server busy, retry")
        return
    try:
        identity, known = await _socket_caller(websocket, plan_id)
        plan = await svc.store.run(lambda s: persistence.get_plan(session=s, plan_id=plan_id))
    finally:
        await svc.limits.release_unauthenticated(ticket)
    if identity is None:
        if known:
            log.info("ws %s: refused, caller has no role in the plan", plan_id)
            await websocket.close(Close.PLAN_NOT_FOUND, "no such plan")
        else:
            log.info("ws %s: refused, no valid session, link or token", plan_id)
            await websocket.close(Close.UNAUTHORIZED, "sign in or pass ?token=")
        return
    # Only cookie sockets need the origin check; a share link's ?token= is no cookie (and when
    # one is given, _socket_caller looks at nothing else).
    by_link_token = (websocket.query_params.get("token") or "").startswith("tdl_")
    cookie_based = identity.via == "session" or (identity.via != "token" and not by_link_token)
    if cookie_based and not _same_origin(websocket):
        log.warning("ws %s: refused cross-origin cookie connection", plan_id)
        await websocket.close(Close.FORBIDDEN, "cross-origin connection")
        return
    if plan is None:
        log.info("ws %s: refused, no such plan", plan_id)
        await websocket.close(Close.PLAN_NOT_FOUND, "no such plan")
        return
    if not allowed(rule_, identity):
        log.info("ws %s: refused, rule %s", plan_id, rule_)
        await websocket.close(Close.FORBIDDEN, "no access")
        return
    if plan.archived:
        identity = archived_view(identity)
    if identity.via in ("link", "embed"):
        await svc.store.run(
            lambda s: persistence.touch_link(session=s, link_id=identity.credential_id, count=False)
        )
    websocket.state.identity = identity
    return await fn(websocket)


# Acting on access changes


async def record_access(
    conn: HTTPConnection,
    kind: str,
    *,
    plan_id: str | None,
    actor: str,
    subject: str | None = None,
    detail: str | None = None,
) -> None:
    """An entry in the access log, from the request's address (``identity.log_access``)."""
    await log_access(
        services(conn).store,
        kind,
        plan_id=plan_id,
        actor=actor,
        ip=client_ip(conn),
        subject=subject,
        detail=detail,
    )


def acting(conn: HTTPConnection) -> Acting:
    """Who makes this request's change, and from where: what the domain's writes record."""
    return Acting(identity_of(conn), client_ip(conn))

"""The cookies Tandem sets, each written (and, for visits, read) once: the session, and a
visitor's per-plan visit."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

import persistence
from server.identity import SESSION_COOKIE, VISIT_DAYS

from .responses import services


def visit_cookie(plan_id: str) -> str:
    """A link or embed visitor's cookie is per plan, so it can never open another one."""
    return f"tandem_v_{plan_id}"


def set_session_cookie(request: Request, response: Response, cookie: str) -> None:
    settings = services(request).settings
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=settings.session_days * 86400,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )


def set_visit_cookie(
    request: Request,
    response: Response,
    link: persistence.LinkRecord,
    name: str,
    email: str | None,
) -> None:
    """The visitor's signed cookie for this link's plan only, for as long as both the visit
    and the link last."""
    svc = services(request)
    value = svc.signer.dumps("visit", [secrets.token_hex(8), link.id, link.plan_id, name, email])
    max_age = int(min(VISIT_DAYS * 86400, (link.expires_at - datetime.now(UTC)).total_seconds()))
    secure = svc.settings.secure_cookies
    response.set_cookie(
        visit_cookie(link.plan_id),
        value,
        max_age=max(max_age, 60),
        httponly=True,
        # Inside a CRM's iframe the cookie is third-party: only SameSite=None; Secure works.
        samesite="none" if secure else "lax",
        secure=secure,
    )


@dataclass(frozen=True)
class Visit:
    link_id: str
    name: str
    email: str | None


def read_visit(conn: HTTPConnection, plan_id: str) -> Visit | None:
    """The genuine visit cookie of this plan, if the caller holds one (its link may be gone)."""
    value = services(conn).signer.loads("visit", conn.cookies.get(visit_cookie(plan_id)))
    if not (isinstance(value, list) and len(value) == 5 and value[2] == plan_id):
        return None
    _visit, link_id, _plan, name, email = value
    return Visit(link_id, name, email)

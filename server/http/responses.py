"""Shared helpers for HTTP routes: who is asking, JSON errors, bodies with limits, templates."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from server.identity import SESSION_COOKIE, Credentials, Identity
from server.plan import ApiError, lone_surrogate
from server.services import Services

from .assets import Manifest

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
STATIC = Path(__file__).resolve().parents[2] / "web" / "dist"

# Colours for people's carets and avatars: distinct, readable on white.
log = logging.getLogger(__name__)

PALETTE = ["#d9480f", "#1971c2", "#2f9e44", "#9c36b5", "#e8590c", "#0c8599", "#c2255c", "#5f3dc4"]


def colour_for(identity: Identity) -> str:
    key = f"{identity.via}:{identity.user_id}:{identity.name}".encode()
    return PALETTE[hashlib.sha256(key).digest()[0] % len(PALETTE)]


def api_error_response(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    body: dict[str, Any] = {"error": exc.detail}
    if exc.field:
        body["field"] = exc.field
    return JSONResponse(body, status_code=exc.status_code)


def credentials(conn: HTTPConnection, *, allow_query_token: bool = False) -> Credentials:
    header = conn.headers.get("authorization", "")
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
    return Credentials(
        bearer=bearer or None,
        query_token=conn.query_params.get("token") if allow_query_token else None,
        cookie=conn.cookies.get(SESSION_COOKIE),
    )


def services(conn: HTTPConnection) -> Services:
    svc: Services = conn.app.state.services
    return svc


def base_url(request: Request) -> str:
    return services(request).settings.base_url or str(request.base_url).rstrip("/")


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


async def read_json(request: Request) -> dict[str, Any]:
    limit = services(request).settings.max_request_bytes
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body is larger than {limit} bytes")
    try:
        value = json.loads(body or b"null")
    except (ValueError, RecursionError):
        # RecursionError: deeply nested arrays ("[[[[...") well under the size limit were a 500.
        raise ApiError(400, "request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "request body must be a JSON object")
    # JSON's \ud800 escapes decode to lone surrogates, which reached the database as a 500.
    bad = lone_surrogate(value)
    if bad is not None:
        raise ApiError(400, f"{bad} is not valid Unicode text (a lone surrogate)", field=bad)
    return value


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    """A server-rendered page; every template autoescapes, so user text stays text."""
    svc = services(request)
    context.setdefault("user", getattr(request.state, "identity", None))
    context["csrf_token"] = svc.auth.csrf_token(request.cookies.get(SESSION_COOKIE))
    response = svc.templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["cache-control"] = "no-store"
    return response


def json_for_script(value: Any) -> str:
    """JSON that no user text can use to end the <script> element it is embedded in."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def make_templates(manifest: Manifest) -> Jinja2Templates:
    # Autoescaping on for every template: user text (titles, names) is always escaped.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    templates = Jinja2Templates(env=env)
    # static_url('editor.js') is the build's content-hashed name, which browsers cache a year.
    templates.env.globals["static_url"] = manifest.url

    def invalid(errors: dict[str, str] | None, name: str) -> Markup:
        """A field's error attributes; the first invalid field takes the focus."""
        if not errors or name not in errors:
            return Markup("")
        focus = " autofocus" if next(iter(errors)) == name else ""
        return Markup(f'aria-invalid="true" aria-describedby="{name}-error"{focus}')

    templates.env.globals["invalid"] = invalid
    return templates


async def error_page(request: Request, message: str, status: int) -> Response:
    """The product's page for a refusal or an unknown address, saying ``message``.

    A signed-in person keeps their top bar (their plans, Notifications, Sign out) on it: where
    no guard has said who is asking (no route matched, or the guard refused before it got
    that far), the page asks."""
    context: dict[str, Any] = {"message": message}
    if getattr(request.state, "identity", None) is None:
        try:
            context["user"] = await services(request).auth.identify(credentials(request))
        except Exception:  # the page still says what was wrong, whatever else is
            log.warning("identifying the caller of a %d page failed", status, exc_info=True)
    return render(request, "error.html", context, status)


async def http_error_response(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no such route, wrong method) as a page, or JSON under /api/."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = "There is no page at this address."
    elif exc.status_code == 405:
        message = "This address does not answer that kind of request."
    else:
        message = str(exc.detail)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, exc.status_code, headers=exc.headers)
    response = await error_page(request, message, exc.status_code)
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response

"""The composition root: builds the Starlette app from settings. Nothing imports this but the CLI
and the tests' server launcher."""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from . import (
    api,
    embed,
    lifecycle,
    links,
    members,
    pages,
    plan_pages,
    plandata_api,
    share,
    workspace,
)
from .access import Rule, rule
from .assets import Assets, Gzip, Manifest
from .auth import Auth
from .channel import RAW_SEND
from .mail import Mailer
from .materialise import Materialiser
from .ratelimit import Limits
from .recheck import CredentialRecheck
from .rooms import RoomManager
from .settings import Settings
from .store import Store
from .tokens import Signer
from .transport import RequestBodies
from .web import STATIC, ApiError, api_error_response, http_error_response, make_templates
from .ws import internal_socket, plan_socket

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors {ancestors}; "
    "base-uri 'none'; form-action 'self'; object-src 'none'"
)


@dataclass
class Services:
    settings: Settings
    store: Store
    auth: Auth
    rooms: RoomManager
    materialiser: Materialiser
    templates: Jinja2Templates
    signer: Signer
    limits: Limits
    mailer: Mailer


class SecurityHeaders:
    """Security headers on every HTTP response, and a cap on declared request sizes.

    Only the embed view may be framed, and only by the configured CRM origins.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_request_bytes: int,
        embed_origins: tuple[str, ...] = (),
        https: bool = False,
    ) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.csp = CSP.format(ancestors="'none'").encode()
        self.embed_csp = CSP.format(ancestors=" ".join(embed_origins) or "'none'").encode()
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                scope[RAW_SEND] = send  # see Connection: frames skip the inner wrappers
            await self.app(scope, receive, send)
            return

        framed = scope["path"].startswith(embed.EMBED_PREFIX)

        async def send_with_headers(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers += [
                    (b"content-security-policy", self.embed_csp if framed else self.csp),
                    (b"x-content-type-options", b"nosniff"),
                    # Link and invitation tokens live in URLs: never send them elsewhere.
                    # "same-origin", not "no-referrer": under no-referrer a browser sends
                    # "Origin: null" even on our own forms, and the Origin check needs it.
                    (b"referrer-policy", b"same-origin"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                ]
                if not framed:
                    headers.append((b"x-frame-options", b"DENY"))
                if self.https:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
            await send(message)

        length = dict(scope["headers"]).get(b"content-length")
        if length and length.isdigit() and int(length) > self.max_request_bytes:
            response = JSONResponse(
                {"error": f"request body is larger than {self.max_request_bytes} bytes"}, 413
            )
            # Through send_with_headers: this early answer gets the security headers too.
            await response(scope, receive, send_with_headers)
            return

        await self.app(scope, receive, send_with_headers)


class _App(Starlette):
    """Starlette's own error handler is the outermost layer of the middleware it builds, so the
    security headers, as a middleware, never reached its 500 page: they go around it instead."""

    def __init__(self, *, outermost: Callable[[ASGIApp], ASGIApp], **kwargs: Any) -> None:
        self._outermost = outermost
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        return self._outermost(super().build_middleware_stack())


@rule(Rule.PUBLIC)
async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def check_rules(routes: list) -> None:  # type: ignore[type-arg]
    """Every route declares an access rule (``@rule``); static files are the one exception."""
    for route in routes:
        if isinstance(route, Mount) and route.name == "static":
            continue
        if not isinstance(getattr(getattr(route, "endpoint", None), "access_rule", None), Rule):
            raise RuntimeError(f"route {getattr(route, 'path', route)!r} has no access rule")


def create_app(settings: Settings) -> Starlette:
    store = Store.from_url(settings.database_url)
    rooms = RoomManager(
        store, idle_seconds=settings.room_idle_seconds, checkpoint_every=settings.checkpoint_every
    )
    materialiser = Materialiser(
        store,
        rooms,
        quiet=settings.materialise_quiet_seconds,
        max_wait=settings.materialise_max_wait_seconds,
    )
    rooms.on_commit = materialiser.on_commit
    manifest = Manifest(STATIC)
    svc = Services(
        settings=settings,
        store=store,
        auth=Auth(
            settings.secret_key,
            store,
            session_days=settings.session_days,
            max_hashes=settings.max_concurrent_hashes,
        ),
        rooms=rooms,
        materialiser=materialiser,
        templates=make_templates(manifest),
        signer=Signer(settings.secret_key),
        limits=Limits(
            signin=settings.signin_per_minute,
            codes=settings.codes_per_minute,
            ws_connects=settings.ws_connects_per_minute,
        ),
        mailer=Mailer(
            store, host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_from
        ),
    )

    recheck = CredentialRecheck(store, rooms, interval=settings.recheck_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Rooms close first; their last commits are then materialised on the way out.
        async with materialiser, rooms, anyio.create_task_group() as background:
            background.start_soon(store.keep_wal_short)
            background.start_soon(recheck.run)
            # What startup allocated (modules, routes, templates, the ORM's registries) lives
            # as long as the process: keep it out of the collector's full passes, which
            # otherwise walk it all and stall every room for tens of ms (bench/ measures it).
            gc.collect()
            gc.freeze()
            yield
            background.cancel_scope.cancel()
        store.dispose()
        log.info("shut down cleanly: every room flushed")

    routes = [
        *pages.routes,
        *plan_pages.routes,
        *api.routes,
        *lifecycle.routes,
        *members.routes,
        *links.routes,
        *share.routes,
        *embed.routes,
        *plandata_api.routes,
        *workspace.routes,
        WebSocketRoute("/ws/plans/{plan_id}", plan_socket),
        WebSocketRoute("/ws/plans/{plan_id}/internal", internal_socket),
        Route("/healthz", health),
        Mount("/static", Assets(STATIC, manifest), name="static"),
    ]
    check_rules(routes)
    app = _App(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            # Inside SecurityHeaders (the outermost layer), so its refusals carry the headers.
            Middleware(
                RequestBodies,
                max_bytes=settings.max_request_bytes,
                timeout=settings.body_timeout_seconds,
            ),
            # Pages and JSON. Websockets pass straight through (it handles only "http"); the
            # bundle comes precompressed from the build, which this leaves alone (it skips a
            # response that already has a Content-Encoding), as it does 206 ranges. Streamed
            # bodies are compressed as they stream, without a Content-Length.
            Middleware(Gzip, minimum_size=500, compresslevel=6),
        ],
        exception_handlers={ApiError: api_error_response, HTTPException: http_error_response},
        outermost=functools.partial(
            SecurityHeaders,
            max_request_bytes=settings.max_request_bytes,
            embed_origins=settings.embed_allowed_origins,
            https=settings.secure_cookies,
        ),
    )
    app.state.services = svc
    return app

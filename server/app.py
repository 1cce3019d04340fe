"""The composition root: builds the Starlette app from settings. Nothing imports this but the CLI
and the tests' server launcher."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

import persistence

from . import api, pages, plan_pages, plandata_api
from .auth import Auth
from .materialise import Materialiser
from .rooms import RoomManager
from .settings import Settings
from .store import Store
from .web import STATIC, ApiError, api_error_response, make_templates
from .ws import plan_socket

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
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


class SecurityHeaders:
    """Security headers on every HTTP response, and a cap on declared request sizes."""

    def __init__(self, app: ASGIApp, max_request_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length and length.isdigit() and int(length) > self.max_request_bytes:
            response = JSONResponse(
                {"error": f"request body is larger than {self.max_request_bytes} bytes"}, 413
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings) -> Starlette:
    engine = persistence.make_engine(settings.database_url)
    store = Store(persistence.make_sessionmaker(engine), sqlite=engine.dialect.name == "sqlite")
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
    svc = Services(
        settings=settings,
        store=store,
        auth=Auth(settings.secret_key, store, session_days=settings.session_days),
        rooms=rooms,
        materialiser=materialiser,
        templates=make_templates(),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Rooms close first; their last commits are then materialised on the way out.
        async with materialiser, rooms:
            yield
        engine.dispose()
        log.info("shut down cleanly: every room flushed")

    routes = [
        *pages.routes,
        *plan_pages.routes,
        *api.routes,
        *plandata_api.routes,
        WebSocketRoute("/ws/plans/{plan_id}", plan_socket),
        Route("/healthz", health),
        Mount("/static", StaticFiles(directory=str(STATIC), check_dir=False), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(SecurityHeaders, max_request_bytes=settings.max_request_bytes)],
        exception_handlers={ApiError: api_error_response},
    )
    app.state.services = svc
    return app

"""The Starlette application around the URL table: middleware, error pages, security headers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from server.plan import ApiError
from server.services import Services

from .assets import Gzip, Manifest
from .responses import STATIC, api_error_response, http_error_response
from .routes import url_table
from .security import App, SecurityHeaders
from .transport import RequestBodies

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


def manifest() -> Manifest:
    """The build's content-hashed asset names (web/dist), read once at startup."""
    return Manifest(STATIC)


def web_app(svc: Services, assets: Manifest, lifespan: Lifespan) -> Starlette:
    settings = svc.settings
    app = App(
        routes=url_table(assets),
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

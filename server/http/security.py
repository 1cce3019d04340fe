"""What every HTTP response carries (security headers) and the outermost refusal of oversized
requests; the only module that knows which URLs may be framed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.live import RAW_SEND

# The embed view (``/embed/{token}`` in the URL table) is the one page a CRM may frame.
EMBED_PREFIX = "/embed/"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors {ancestors}; "
    "base-uri 'none'; form-action 'self'; object-src 'none'"
)


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

        framed = scope["path"].startswith(EMBED_PREFIX)

        async def send_with_headers(message: Message) -> None:
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


class App(Starlette):
    """Starlette's own error handler is the outermost layer of the middleware it builds, so the
    security headers, as a middleware, never reached its 500 page: they go around it instead."""

    def __init__(self, *, outermost: Callable[[ASGIApp], ASGIApp], **kwargs: Any) -> None:
        self._outermost = outermost
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        return self._outermost(super().build_middleware_stack())

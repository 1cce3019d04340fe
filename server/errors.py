"""The domain's refusals, for every wing: the HTTP wing answers them as 4xx JSON or shows them
on a form. The plan wing re-exports ``ApiError``; the identity wing raises it too."""

from __future__ import annotations


class ApiError(Exception):
    """A request refused with a reason: ``{"error": message, "field": field}`` with ``status``.

    Raised by domain code (no Starlette here) and by the HTTP wing alike; the HTTP wing's
    exception handler turns it into the JSON answer."""

    def __init__(self, status: int, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status
        self.detail = message
        self.field = field

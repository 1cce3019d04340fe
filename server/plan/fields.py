"""Checking the values a caller sends (JSON bodies, forms, path and query parameters), written
once for pages and API alike: each refusal is an ``ApiError`` naming the field."""

from __future__ import annotations

from typing import Any

from .errors import ApiError

# Ids are INTEGER columns in both databases; a bigger number made PostgreSQL (and SQLite's
# driver) raise, a 500.
INT_MAX = 2**31 - 1


def int_param(
    value: object,
    name: str,
    *,
    low: int = 1,
    high: int = INT_MAX,
    status: int = 400,
    message: str | None = None,
) -> int:
    """An integer from a path, query string, form or JSON id, range-checked, or a 4xx naming it.

    ASCII digits only: ``str.isdigit`` also accepts "²", which ``int()`` then refuses."""
    text = value if isinstance(value, str) else ""
    if text.isascii() and text.isdigit() and len(text) <= len(str(high)):
        number = int(text)
        if low <= number <= high:
            return number
    raise ApiError(
        status, message or f"{name} must be a whole number from {low} to {high}", field=name
    )


def lone_surrogate(value: Any) -> str | None:
    """The path of the first string (or key) holding a lone surrogate, which no database and
    no UTF-8 encoder accepts; walked without recursion, as nesting depth is the sender's."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if any("\ud800" <= c <= "\udfff" for c in item):
                return path or "body"
        elif isinstance(item, dict):
            for key, child in item.items():
                if any("\ud800" <= c <= "\udfff" for c in key):
                    return path or "body"
                stack.append((f"{path}.{key}" if path else key, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(item))
    return None


def text_field(
    data: dict[str, Any], name: str, *, max_len: int = 200, required: bool = True
) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ApiError(400, f"{name} is required and must be a string", field=name)
    value = value.strip()
    if required and not value:
        raise ApiError(400, f"{name} must not be empty", field=name)
    if len(value) > max_len:
        raise ApiError(400, f"{name} must be at most {max_len} characters", field=name)
    if any(ord(c) < 32 for c in value):
        raise ApiError(400, f"{name} must not contain control characters", field=name)
    if lone_surrogate(value) is not None:
        raise ApiError(400, f"{name} is not valid Unicode text (a lone surrogate)", field=name)
    return value

"""The rules for what people type about themselves, written once: e-mail addresses, passwords,
and the name a link or embed visitor goes by."""

from __future__ import annotations

import re

MIN_PASSWORD = 8
MAX_EMAIL = 320
MAX_VISITOR_NAME = 80
EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,}$")


def valid_email(value: str) -> str | None:
    """The address, trimmed and lower-cased, or None when it is not one."""
    value = value.strip().lower()
    return value if EMAIL.match(value) and len(value) <= MAX_EMAIL else None


def password_too_short(password: str) -> bool:
    return len(password) < MIN_PASSWORD


def visitor_name(value: str, default: str = "") -> str:
    """A visitor's self-chosen name (a form, a CRM's URL): printable, trimmed, and short."""
    return "".join(c for c in value.strip() if c.isprintable())[:MAX_VISITOR_NAME] or default


def password_errors(password: str, confirm: str) -> dict[str, str]:
    """What a form choosing a password says is wrong with it, by field: too short, or the
    confirmation differs. Empty when the password will do."""
    if password_too_short(password):
        return {"password": f"Use at least {MIN_PASSWORD} characters."}
    if password != confirm:
        return {"confirm": "The two passwords differ."}
    return {}

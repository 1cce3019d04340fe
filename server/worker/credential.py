"""The worker's credential towards the serving process: signed with the server's secret key
(under a salt of its own, so no other token of Tandem's passes for it, nor it for them),
scoped to one action on one plan, and valid for a minute (it is minted per request).

Here rather than among the identity wing's purposes: the worker process would otherwise
import the sign-in machinery (and its 64 MiB password hash) for one signature."""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeTimedSerializer

ASSIGN_IDS = "assign-ids"
SALT = "tandem.worker"
PREFIX = "tdw_"  # a token of Tandem's: "td", a letter and "_" (the logs redact them)
LIFETIME = 60


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def mint(secret_key: str, plan_id: str, action: str = ASSIGN_IDS) -> str:
    return PREFIX + _serializer(secret_key).dumps({"plan": plan_id, "do": action})


def valid(secret_key: str, token: str | None, plan_id: str, action: str = ASSIGN_IDS) -> bool:
    """Whether ``token`` lets the worker do ``action`` on ``plan_id`` (and on nothing else)."""
    if not token or not token.startswith(PREFIX) or len(token) > 2000:
        return False
    try:
        value = _serializer(secret_key).loads(token[len(PREFIX) :], max_age=LIFETIME)
    except BadSignature:  # SignatureExpired is a BadSignature
        return False
    return isinstance(value, dict) and value == {"plan": plan_id, "do": action}


def bearer(header: str | None) -> str | None:
    if header is None or not header.lower().startswith("bearer "):
        return None
    return header[len("bearer ") :].strip() or None

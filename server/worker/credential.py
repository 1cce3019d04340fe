"""The worker's credential towards the serving process: signed with the server's secret key,
scoped to one action on one plan, and valid for a minute (it is minted per request)."""

from __future__ import annotations

from server.identity import Signer

ASSIGN_IDS = "assign-ids"
PREFIX = "Bearer "


def mint(signer: Signer, plan_id: str, action: str = ASSIGN_IDS) -> str:
    return signer.dumps("worker", {"plan": plan_id, "do": action})


def valid(signer: Signer, token: str | None, plan_id: str, action: str = ASSIGN_IDS) -> bool:
    """Whether ``token`` lets the worker do ``action`` on ``plan_id`` (and on nothing else)."""
    value = signer.loads("worker", token)
    return isinstance(value, dict) and value == {"plan": plan_id, "do": action}


def bearer(header: str | None) -> str | None:
    if header is None or not header.startswith(PREFIX):
        return None
    return header[len(PREFIX) :].strip() or None

"""Share links and CRM embed URLs: the checks on what an owner asks for (role, expiry, e-mail
domain), creating and revoking links, and recording a visitor's use of one. Written once for
the share page and the JSON API; each refusal is an ``ApiError``."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import persistence
from server.identity import LINK_ROLES, Acting, Signer, log_access
from server.live import Close, Closing, RoomManager
from server.store import Store

from .errors import ApiError

log = logging.getLogger(__name__)

DEFAULT_DAYS = 30
MAX_DAYS = 365
MAX_LABEL = 200
DOMAIN = re.compile(r"^[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})+$")


def link_token(signer: Signer, link: persistence.LinkRecord) -> str:
    purpose = "link" if link.kind == "share" else "embed"
    return signer.dumps(purpose, [link.id, link.plan_id])


def link_url(signer: Signer, base_url: str, link: persistence.LinkRecord) -> str:
    prefix = "s" if link.kind == "share" else "embed"
    return f"{base_url}/{prefix}/{link_token(signer, link)}"


def parse_expiry(value: Any, now: datetime | None = None) -> datetime:
    """When a link asked for with ``value`` (ISO 8601, or nothing for the default) expires."""
    at = now or datetime.now(UTC)
    if value in (None, ""):
        return at + timedelta(days=DEFAULT_DAYS)
    if not isinstance(value, str):
        raise ApiError(400, "expires_at must be an ISO 8601 date-time", field="expires_at")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400, "expires_at must be an ISO 8601 date-time", field="expires_at"
        ) from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when <= at:
        raise ApiError(400, "expires_at must be in the future", field="expires_at")
    if when > at + timedelta(days=MAX_DAYS):
        raise ApiError(400, f"expires_at must be within {MAX_DAYS} days", field="expires_at")
    return when


def parse_domain(value: Any) -> str | None:
    """The e-mail domain a link is locked to, lower-cased, or None for an open link."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ApiError(400, "domain must be a string like example.com", field="domain")
    domain = value.strip().lower().lstrip("@")
    if not DOMAIN.match(domain) or len(domain) > 253:
        raise ApiError(400, "domain must look like example.com", field="domain")
    return domain


async def create_link(
    store: Store,
    by: Acting,
    plan_id: str,
    *,
    kind: str,
    role: str,
    expires_at: Any,
    label: str,
    domain: Any,
    history: Any = False,
) -> persistence.LinkRecord:
    """A new share link (``kind`` "share") or embed URL ("embed") to ``plan_id``; ``history``
    lets its visitors read the plan's history and handover brief."""
    if role not in LINK_ROLES:
        raise ApiError(400, "role must be 'viewer' or 'editor'", field="role")
    expiry = parse_expiry(expires_at)
    domain_ = parse_domain(domain) if kind == "share" else None
    if not isinstance(history, bool):
        raise ApiError(400, "history must be true or false", field="history")
    link = await store.run(
        lambda s: persistence.create_link(
            session=s,
            link_id=secrets.token_hex(8),
            plan_id=plan_id,
            kind=kind,
            role=role,
            label=label or None,
            domain=domain_,
            created_by=by.identity.user_id,
            expires_at=expiry,
            history=history,
        )
    )
    await log_access(
        store,
        "link.created",
        plan_id=plan_id,
        actor=by.actor,
        ip=by.ip,
        subject=f"{kind} link {link.id}" + (f" ({label})" if label else ""),
        detail=f"{role}, until {expiry:%Y-%m-%d %H:%M} UTC"
        + (f", @{domain_} only" if domain_ else "")
        + (", with history" if history else ""),
    )
    return link


async def revoke_link(
    store: Store, rooms: RoomManager, by: Acting, plan_id: str, link_id: str
) -> None:
    """Revoke a link; everyone who came through it is disconnected."""
    done = await store.run(
        lambda s: persistence.revoke_link(session=s, plan_id=plan_id, link_id=link_id)
    )
    if not done:
        raise ApiError(404, "no such link, or it is already revoked")
    closed = rooms.close(
        Closing(plan_id, Close.FORBIDDEN, "this link was revoked", link_id=link_id)
    )
    log.info("link %s revoked; %d connections closed", link_id, closed)
    await log_access(
        store, "link.revoked", plan_id=plan_id, actor=by.actor, ip=by.ip, subject=f"link {link_id}"
    )


async def link_used(
    store: Store, link: persistence.LinkRecord, *, name: str, email: str | None, ip: str | None
) -> None:
    """A visitor came in through ``link``: counted on the link, and in the access log."""
    await store.run(lambda s: persistence.touch_link(session=s, link_id=link.id, count=True))
    await log_access(
        store,
        "link.used",
        plan_id=link.plan_id,
        actor=f"{name}" + (f" <{email}>" if email else ""),
        ip=ip,
        subject=f"{link.kind} link {link.id}" + (f" ({link.label})" if link.label else ""),
        detail=link.role,
    )

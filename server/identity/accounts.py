"""The workspace's accounts, as its owner manages them: inviting staff, making an account staff
or a guest, deactivating and reactivating it; and the single-use links that set a password
(a reset, or a new staff member's first). Written once for the People page and the JSON API;
each refusal is an ``ApiError``. Closing the account's open connections is the caller's (this
wing knows no rooms): see ``change_account``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

import persistence
from server.errors import ApiError
from server.mail import Mailer
from server.store import Store

from .acting import Acting, log_access
from .people import valid_email
from .tokens import INVITE_DAYS, Signer

RESET_HOURS = 2


def reset_url(signer: Signer, base_url: str, reset_id: str) -> str:
    return f"{base_url}/password-reset/{signer.dumps('reset', [reset_id])}"


async def new_reset(store: Store, signer: Signer, base_url: str, user_id: int, hours: int) -> str:
    """A single-use link, valid for ``hours``, to choose the account's password."""
    reset_id = secrets.token_hex(12)
    expires = datetime.now(UTC) + timedelta(hours=hours)
    await store.run(
        lambda s: persistence.create_reset(
            session=s, reset_id=reset_id, user_id=user_id, expires_at=expires
        )
    )
    return reset_url(signer, base_url, reset_id)


@dataclass(frozen=True)
class StaffInvited:
    """An account made staff: ``url`` is the new account's link to choose its password, None
    for an existing guest made staff (they have a password)."""

    user: persistence.UserRecord
    new: bool
    url: str | None

    def json(self) -> dict[str, Any]:
        return {"id": self.user.id, "email": self.user.email, "kind": "staff", "new": self.new}


async def invite_staff(
    store: Store,
    mailer: Mailer,
    signer: Signer,
    by: Acting,
    *,
    base_url: str,
    email: str,
    name: str,
) -> StaffInvited:
    """A new staff account with a single-use link to choose its password, mailed, or an
    existing guest made staff."""
    address = valid_email(email)
    if address is None:
        raise ApiError(400, "enter a valid email address", field="email")

    def create(s: Session) -> tuple[persistence.UserRecord, bool]:
        found = persistence.find_user(session=s, email=address)
        if found is not None:
            user = found[0]
            if user.is_staff:
                raise ApiError(409, f"{address} is already workspace staff", field="email")
            made = persistence.set_staff(session=s, user_id=user.id, staff=True)
            if made is None:  # found above in this same transaction
                raise ApiError(404, f"no account {address}", field="email")
            return made, False
        user = persistence.create_user(
            session=s,
            email=address,
            name=name or address.split("@")[0],
            password_hash=None,
            is_staff=True,
        )
        return user, True

    user, new = await store.run(create)
    url = None
    if new:
        url = await new_reset(store, signer, base_url, user.id, INVITE_DAYS * 24)
        body = (
            f"{by.identity.name} invited you to the Tandem workspace as staff.\n\n"
            f"Open this link to choose your password (it works once, for {INVITE_DAYS} days):"
            f"\n\n{url}\n\nIf you did not expect this, ignore this message.\n"
        )
        await mailer.send(address, "You are invited to Tandem", body)
    await log_access(
        store,
        "staff.invited" if new else "staff.granted",
        plan_id=None,
        actor=by.actor,
        ip=by.ip,
        subject=address,
    )
    return StaffInvited(user, new, url)


def account_flag(data: dict[str, Any], name: str) -> bool | None:
    """``data[name]`` as true or false, None when absent."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ApiError(400, f"{name} must be true or false", field=name)
    return value


async def change_account(
    store: Store, user_id: int, *, staff: bool | None, active: bool | None
) -> persistence.UserRecord:
    """Make an account staff or a guest, deactivate or reactivate it. The caller then closes
    its connections (all of them when deactivated, its vendor-side ones when made a guest)
    and records the change with ``account_changed``: in that order, so that the sockets are
    gone before anyone reads the log or the answer."""

    def change(s: Session) -> persistence.UserRecord:
        user = persistence.get_user(session=s, user_id=user_id)
        if user is None:
            raise ApiError(404, "no such account")
        if user.is_owner and (staff is False or active is False):
            raise ApiError(409, "the workspace owner is always active staff")
        if staff is not None:
            user = persistence.set_staff(session=s, user_id=user_id, staff=staff)
        if active is not None:
            user = persistence.set_active(session=s, user_id=user_id, active=active)
        if user is None:
            raise ApiError(404, "no such account")
        return user

    return await store.run(change)


async def account_changed(
    store: Store,
    by: Acting,
    user: persistence.UserRecord,
    *,
    staff: bool | None,
    active: bool | None,
) -> None:
    """The access log's entry for ``change_account``."""
    what = []
    if staff is not None:
        what.append("made staff" if staff else "made guest")
    if active is not None:
        what.append("reactivated" if active else "deactivated")
    await log_access(
        store,
        "account.changed",
        plan_id=None,
        actor=by.actor,
        ip=by.ip,
        subject=user.email,
        detail=", ".join(what),
    )

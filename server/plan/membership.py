"""Plan members: who may grant which role and side, inviting by e-mail, accepting an
invitation, changing a member's role and side, removing a member. Written once for the share
page and the JSON API; each refusal is an ``ApiError``."""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

import persistence
from server.identity import (
    CUSTOMER,
    INVITE_DAYS,
    OWNER,
    ROLES,
    SIDES,
    VENDOR,
    VIEWER,
    Acting,
    Identity,
    Signer,
    log_access,
    valid_email,
    vendor_owner,
)
from server.live import Close, Closing, RoomManager
from server.mail import Mailer
from server.store import Store

from .errors import ApiError


def check_role_side(role: str, side: str) -> None:
    if role not in ROLES:
        raise ApiError(400, f"role must be one of {', '.join(ROLES)}", field="role")
    if side not in SIDES:
        raise ApiError(400, f"side must be one of {', '.join(SIDES)}", field="side")


def may_touch_vendor(identity: Identity) -> None:
    """Only vendor-side owners grant, change or remove the vendor side: a customer-side owner
    could otherwise make herself (or a second address of hers) vendor and read the internal plan."""
    if not vendor_owner(identity):
        raise ApiError(
            403,
            "only the plan's vendor-side owners can grant or change the vendor side",
            field="side",
        )


def kind_conflict(user: persistence.UserRecord, side: str) -> str | None:
    """Why ``user`` cannot be on ``side``: a member's side follows the account kind."""
    if side == VENDOR and not user.is_staff:
        return (
            f"{user.email} is a guest account and guests are always customer side; "
            "the workspace owner can make them staff on the People page"
        )
    if side == CUSTOMER and user.is_staff:
        return f"{user.email} is workspace staff and staff are always vendor side"
    return None


def visible_invites(
    identity: Identity, invites: list[persistence.InviteRecord]
) -> list[persistence.InviteRecord]:
    """A customer-side owner never sees pending vendor invitations (their links are credentials)."""
    if vendor_owner(identity):
        return invites
    return [i for i in invites if i.side != VENDOR]


def invite_url(signer: Signer, base_url: str, invite: persistence.InviteRecord) -> str:
    token = signer.dumps("invite", [invite.id, invite.plan_id])
    return f"{base_url}/invite/{token}"


@dataclass(frozen=True)
class Invited:
    """An invitation made: the record, its link, and whether the mail went out. The link is
    the owner's to pass on when no mail could be sent (no SMTP server configured, or it
    refused), so the screen must not say "sent" then."""

    invite: persistence.InviteRecord
    url: str
    emailed: bool


async def invite_member(
    store: Store,
    mailer: Mailer,
    signer: Signer,
    by: Acting,
    plan: persistence.PlanRecord,
    *,
    base_url: str,
    email: str,
    role: str,
    side: str,
) -> Invited:
    """Create an invitation to ``plan`` and mail it."""
    identity = by.identity
    address = valid_email(email)
    if address is None:
        raise ApiError(400, "enter a valid email address", field="email")
    check_role_side(role, side)
    if side == VENDOR:
        may_touch_vendor(identity)

    def create(s: Session) -> persistence.InviteRecord | None:
        found = persistence.find_user(session=s, email=address)
        if found and persistence.get_member(session=s, plan_id=plan.id, user_id=found[0].id):
            return None
        if found and (why := kind_conflict(found[0], side)):
            raise ApiError(409, why, field="side")
        if not found and side == VENDOR and not identity.workspace_owner:
            # Whoever joins by invitation is a guest unless the workspace owner makes them staff.
            raise ApiError(
                403,
                "only the workspace owner can invite a new address to the vendor side "
                "(it becomes a staff account); invite them on the People page first",
                field="side",
            )
        return persistence.create_invite(
            session=s,
            invite_id=secrets.token_hex(12),
            plan_id=plan.id,
            email=address,
            role=role,
            side=side,
            invited_by=identity.user_id,
            expires_at=datetime.now(UTC) + timedelta(days=INVITE_DAYS),
        )

    record = await store.run(create)
    if record is None:
        raise ApiError(409, f"{address} is already a member of this plan", field="email")
    url = invite_url(signer, base_url, record)
    body = (
        f'{identity.name} invited you to the success plan "{plan.title}" ({plan.customer}) '
        f"on Tandem as {role}.\n\nOpen this link to join (it works once, for {INVITE_DAYS} "
        f"days):\n\n{url}\n\nIf you did not expect this, ignore this message.\n"
    )
    emailed = await mailer.send(address, f"You are invited to {plan.title}", body, plan_id=plan.id)
    await log_access(
        store,
        "member.invited",
        plan_id=plan.id,
        actor=by.actor,
        ip=by.ip,
        subject=address,
        detail=f"{role}, {side} side",
    )
    return Invited(record, url, emailed)


async def revoke_invite(store: Store, plan_id: str, invite_id: str) -> None:
    await store.run(
        lambda s: persistence.revoke_invite(session=s, plan_id=plan_id, invite_id=invite_id)
    )


async def change_member(
    store: Store,
    rooms: RoomManager,
    by: Acting,
    plan_id: str,
    user_id: int,
    *,
    role: str,
    side: str,
) -> None:
    """Give a member another role or side; their open connections follow at once."""
    identity = by.identity
    check_role_side(role, side)

    def update(s: Session) -> persistence.MemberRecord | None:
        member = persistence.get_member(session=s, plan_id=plan_id, user_id=user_id)
        if member is None:
            return None
        if VENDOR in (side, member.side):
            may_touch_vendor(identity)
        user = persistence.get_user(session=s, user_id=user_id)
        if user is not None and (why := kind_conflict(user, side)):
            raise ApiError(409, why, field="side")
        if (
            member.role == OWNER
            and role != OWNER
            and persistence.count_owners(session=s, plan_id=plan_id) <= 1
        ):
            raise ApiError(409, "a plan needs at least one owner", field="role")
        persistence.set_member(session=s, plan_id=plan_id, user_id=user_id, role=role, side=side)
        return member

    before = await store.run(update)
    if before is None:
        raise ApiError(404, "no such member")
    if role == VIEWER and before.role != VIEWER:
        rooms.close(Closing(plan_id, Close.READ_ONLY, "you can now only view", user_id=user_id))
    if side != VENDOR and before.side == VENDOR:
        rooms.close(Closing(plan_id, Close.FORBIDDEN, "no access", user_id=user_id, side=VENDOR))
    await log_access(
        store,
        "member.changed",
        plan_id=plan_id,
        actor=by.actor,
        ip=by.ip,
        subject=before.email,
        detail=f"{before.role}, {before.side} side -> {role}, {side} side",
    )


async def remove_member(
    store: Store, rooms: RoomManager, by: Acting, plan_id: str, user_id: int
) -> None:
    """Take a member out of the plan; their open connections close."""

    def delete(s: Session) -> persistence.MemberRecord | None:
        member = persistence.get_member(session=s, plan_id=plan_id, user_id=user_id)
        if member is None:
            return None
        if member.side == VENDOR:
            may_touch_vendor(by.identity)
        if member.role == OWNER and persistence.count_owners(session=s, plan_id=plan_id) <= 1:
            raise ApiError(409, "a plan needs at least one owner: make someone else owner first")
        persistence.remove_member(session=s, plan_id=plan_id, user_id=user_id)
        return member

    member = await store.run(delete)
    if member is None:
        raise ApiError(404, "no such member")
    rooms.close(Closing(plan_id, Close.FORBIDDEN, "removed from this plan", user_id=user_id))
    await log_access(
        store, "member.removed", plan_id=plan_id, actor=by.actor, ip=by.ip, subject=member.email
    )


async def accept_invite(
    store: Store,
    invite: persistence.InviteRecord,
    *,
    user_id: int | None,
    name: str,
    password_hash: str | None,
    ip: str | None,
) -> int | None:
    """Use ``invite`` (once): the account ``user_id`` joins the plan, or, with None, a new
    account is made with ``name`` and ``password_hash``. The member's user id, or None when the
    invitation was used meanwhile. ``persistence.DuplicateEmail`` when an account with the
    address was created meanwhile."""

    def join(s: Session) -> int | None:
        if not persistence.accept_invite(session=s, invite_id=invite.id):
            return None  # used meanwhile: single use
        uid = (
            user_id
            or persistence.create_user(
                session=s,
                email=invite.email,
                name=name,
                password_hash=password_hash,
                # Only the workspace owner can invite a new address to the vendor side (see
                # invite_member()): that makes the new account staff; every other one is a guest.
                is_staff=invite.side == VENDOR,
            ).id
        )
        persistence.set_member(
            session=s, plan_id=invite.plan_id, user_id=uid, role=invite.role, side=invite.side
        )
        persistence.record_access(
            session=s,
            plan_id=invite.plan_id,
            kind="member.added",
            actor=f"{name} <{invite.email}>",
            subject=invite.email,
            detail=f"accepted invitation as {invite.role}, {invite.side} side",
            ip=ip,
        )
        return uid

    return await store.run(join)


async def access_log(
    store: Store, identity: Identity, plan_id: str
) -> list[persistence.AccessEventRecord]:
    """The plan's access log as ``identity`` (an owner) may see it, newest first: with the
    sign-ins of its members. A customer-side owner sees neither vendor people's sign-ins and
    addresses nor vendor invitations (a pending one's address is not a member yet)."""
    vendor_view = vendor_owner(identity)

    def load(s: Session) -> list[persistence.AccessEventRecord]:
        people = persistence.list_members(session=s, plan_id=plan_id)
        hidden = set() if vendor_view else {m.email for m in people if m.side == VENDOR}
        emails = [m.email for m in people if m.email not in hidden]
        events = persistence.access_events(session=s, plan_id=plan_id, emails=emails)
        if vendor_view:
            return events
        shown = []
        for e in events:
            if e.subject in hidden or "vendor side" in (e.detail or ""):
                continue
            name, _, address = e.actor.partition(" <")
            if address.rstrip(">") in hidden:  # what a vendor person did: by name only
                e = dataclasses.replace(e, actor=name, ip=None)
            shown.append(e)
        return shown

    return await store.run(load)

"""The membership and sharing rules of the plan domain, called directly: who may grant which
role and side, invitations, changing and removing members, links and their checks. Against a
real SQLite file; the rooms are a stand-in that notes what it was asked to close, and the
mailer one that notes what it sent (no server, no HTTP)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import persistence
from server import plan as domain
from server.identity import CUSTOMER, EDITOR, OWNER, VENDOR, VIEWER, Acting, Identity, Signer
from server.live import Close, Closing
from server.plan import ApiError
from server.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'tandem.db'}"
    persistence.upgrade(url)
    s = Store.from_url(url)
    yield s
    s.dispose()


@dataclass
class Rooms:
    """Stands in for the room manager: what the domain asked to close."""

    closed: list[Closing] = field(default_factory=list)

    def close(self, closing: Closing) -> int:
        self.closed.append(closing)
        return 0


@dataclass
class Mailer:
    sent: list[tuple[str, str]] = field(default_factory=list)
    works: bool = True

    async def send(self, to: str, subject: str, body: str, *, plan_id: str | None = None) -> bool:
        self.sent.append((to, body))
        return self.works


def identity(user: persistence.UserRecord, side: str, role: str = OWNER) -> Identity:
    return Identity(
        user_id=user.id,
        name=user.name,
        email=user.email,
        via="session",
        credential_id="c",
        plan_id="p",
        role=role,
        side=side,
        staff=user.is_staff,
        workspace_owner=user.is_owner,
    )


@dataclass
class World:
    store: Store
    plan: persistence.PlanRecord
    boss: persistence.UserRecord  # workspace owner, vendor-side owner of the plan
    customer: persistence.UserRecord  # guest, customer-side owner of the plan
    staff: persistence.UserRecord  # staff, not in the plan
    guest: persistence.UserRecord  # guest, not in the plan

    def by(self, who: persistence.UserRecord) -> Acting:
        return Acting(identity(who, VENDOR if who.is_staff else CUSTOMER), "203.0.113.9")

    def log(self) -> list[persistence.AccessEventRecord]:
        return self.store_run(
            lambda s: persistence.access_events(session=s, plan_id=self.plan.id, emails=[])
        )

    def store_run(self, fn: Any) -> Any:
        with persistence.transaction(self.store.factory) as s:
            return fn(s)


@pytest.fixture
def world(store: Store) -> World:
    def user(name: str, **kw: bool) -> persistence.UserRecord:
        return persistence.create_user(
            session=s,
            email=f"{name.lower()}-{uuid.uuid4().hex[:6]}@x.example",
            name=name,
            password_hash=None,
            **kw,
        )

    with persistence.transaction(store.factory) as s:
        boss, customer = user("Boss", is_owner=True), user("Cat", is_staff=False)
        staff, guest = user("Sam"), user("Gus", is_staff=False)
        plan = persistence.create_plan(session=s, title="P", customer="Acme", created_by=None)
        persistence.set_member(session=s, plan_id=plan.id, user_id=boss.id, role=OWNER, side=VENDOR)
        persistence.set_member(
            session=s, plan_id=plan.id, user_id=customer.id, role=OWNER, side=CUSTOMER
        )
    return World(store, plan, boss, customer, staff, guest)


def refused(status: int, call: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        asyncio.run(call) if asyncio.iscoroutine(call) else call()
    assert caught.value.status_code == status, caught.value.detail
    return caught.value


# Pure rules


def test_roles_and_sides_are_checked_by_name() -> None:
    domain.check_role_side(EDITOR, CUSTOMER)
    assert refused(400, lambda: domain.check_role_side("admin", CUSTOMER)).field == "role"
    assert refused(400, lambda: domain.check_role_side(EDITOR, "both")).field == "side"


def test_a_members_side_follows_the_account_kind(world: World) -> None:
    assert domain.kind_conflict(world.staff, VENDOR) is None
    assert domain.kind_conflict(world.guest, CUSTOMER) is None
    assert "guest account" in (domain.kind_conflict(world.guest, VENDOR) or "")
    assert "workspace staff" in (domain.kind_conflict(world.staff, CUSTOMER) or "")


def test_a_customer_side_owner_never_sees_vendor_invitations(world: World) -> None:
    at = datetime.now(UTC)
    invites = [
        persistence.InviteRecord(
            id=f"i{side}",
            plan_id="p",
            email="a@x.example",
            role=EDITOR,
            side=side,
            invited_by=None,
            created_at=at,
            expires_at=at,
            accepted_at=None,
            revoked_at=None,
        )
        for side in (VENDOR, CUSTOMER)
    ]
    assert domain.visible_invites(world.by(world.boss).identity, invites) == invites
    assert domain.visible_invites(world.by(world.customer).identity, invites) == invites[1:]
    refused(403, lambda: domain.may_touch_vendor(world.by(world.customer).identity))


# Writes


def invite(world: World, who: persistence.UserRecord, email: str, side: str, **kw: Any) -> Any:
    mailer = Mailer(**kw)
    return mailer, domain.invite_member(
        world.store,
        mailer,
        Signer("k" * 32),
        world.by(who),
        world.plan,
        base_url="https://t.example",
        email=email,
        role=EDITOR,
        side=side,
    )


def test_an_invitation_is_mailed_with_its_link_and_logged(world: World) -> None:
    mailer, call = invite(world, world.boss, " New@Example.com ", CUSTOMER)
    done = asyncio.run(call)
    assert done.emailed and done.invite.email == "new@example.com"
    assert done.url.startswith("https://t.example/invite/")
    assert mailer.sent == [("new@example.com", mailer.sent[0][1])] and done.url in mailer.sent[0][1]
    [entry] = world.log()
    assert (entry.kind, entry.subject, entry.ip) == (
        "member.invited",
        "new@example.com",
        "203.0.113.9",
    )


def test_an_unsent_invitation_says_so(world: World) -> None:
    _, call = invite(world, world.boss, "n@example.com", CUSTOMER, works=False)
    assert asyncio.run(call).emailed is False


def test_who_may_invite_whom(world: World) -> None:
    assert refused(400, invite(world, world.boss, "not an address", CUSTOMER)[1]).field == "email"
    # A customer-side owner cannot grant the vendor side at all.
    refused(403, invite(world, world.customer, "x@example.com", VENDOR)[1])
    # A guest account cannot join on the vendor side; staff cannot join on the customer side.
    refused(409, invite(world, world.boss, world.guest.email, VENDOR)[1])
    refused(409, invite(world, world.boss, world.staff.email, CUSTOMER)[1])
    # Already in the plan.
    refused(409, invite(world, world.boss, world.customer.email, CUSTOMER)[1])
    assert world.log() == []


def test_changing_a_member_closes_what_they_may_no_longer_do(world: World) -> None:
    rooms = Rooms()
    with persistence.transaction(world.store.factory) as s:
        persistence.set_member(
            session=s, plan_id=world.plan.id, user_id=world.staff.id, role=EDITOR, side=VENDOR
        )
    asyncio.run(
        domain.change_member(
            world.store,
            rooms,
            world.by(world.boss),
            world.plan.id,
            world.staff.id,
            role=VIEWER,
            side=VENDOR,
        )
    )
    assert rooms.closed == [
        Closing(world.plan.id, Close.READ_ONLY, "you can now only view", user_id=world.staff.id)
    ]
    assert world.log()[0].detail == "editor, vendor side -> viewer, vendor side"


def test_a_plan_keeps_an_owner_and_the_customer_side_keeps_off_the_vendor_side(
    world: World,
) -> None:
    rooms = Rooms()
    change = domain.change_member(
        world.store,
        rooms,
        world.by(world.customer),
        world.plan.id,
        world.boss.id,
        role=OWNER,
        side=VENDOR,
    )
    refused(403, change)
    with persistence.transaction(world.store.factory) as s:
        persistence.remove_member(session=s, plan_id=world.plan.id, user_id=world.boss.id)
    last = domain.remove_member(
        world.store, rooms, world.by(world.customer), world.plan.id, world.customer.id
    )
    assert "at least one owner" in refused(409, last).detail
    gone = domain.remove_member(world.store, rooms, world.by(world.customer), world.plan.id, 999)
    refused(404, gone)
    assert rooms.closed == []


def test_removing_a_member_closes_their_connections(world: World) -> None:
    rooms = Rooms()
    asyncio.run(
        domain.remove_member(
            world.store, rooms, world.by(world.boss), world.plan.id, world.customer.id
        )
    )
    assert rooms.closed == [
        Closing(world.plan.id, Close.FORBIDDEN, "removed from this plan", user_id=world.customer.id)
    ]
    assert [e.kind for e in world.log()] == ["member.removed"]


def test_accepting_an_invitation_makes_a_guest_member_once(world: World) -> None:
    done = asyncio.run(invite(world, world.boss, "joiner@example.com", CUSTOMER)[1])
    join = dict(user_id=None, name="Jo", password_hash=None, ip="198.51.100.1")
    uid = asyncio.run(domain.accept_invite(world.store, done.invite, **join))
    assert uid is not None
    assert asyncio.run(domain.accept_invite(world.store, done.invite, **join)) is None
    member = world.store_run(
        lambda s: persistence.get_member(session=s, plan_id=world.plan.id, user_id=uid)
    )
    assert (member.role, member.side) == (EDITOR, CUSTOMER)
    assert world.store_run(lambda s: persistence.get_user(session=s, user_id=uid)).is_staff is False


# Links


def test_link_expiry_and_domain_checks() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert domain.parse_expiry(None, now) == now + timedelta(days=30)
    assert domain.parse_expiry("2026-01-02T00:00:00Z", now) == datetime(2026, 1, 2, tzinfo=UTC)
    for bad in (5, "soon", "2025-12-31", "2027-06-01"):
        assert refused(400, lambda bad=bad: domain.parse_expiry(bad, now)).field == "expires_at"
    assert domain.parse_domain(" @Example.COM ") == "example.com"
    assert domain.parse_domain("") is None
    for bad in (3, "localhost", "exa mple.com"):
        assert refused(400, lambda bad=bad: domain.parse_domain(bad)).field == "domain"


def test_a_link_is_created_logged_and_revoked_with_its_visitors_closed(world: World) -> None:
    rooms, by = Rooms(), world.by(world.boss)
    refused(
        400,
        domain.create_link(
            world.store,
            by,
            world.plan.id,
            kind="share",
            role=OWNER,
            expires_at=None,
            label="",
            domain=None,
        ),
    )
    link = asyncio.run(
        domain.create_link(
            world.store,
            by,
            world.plan.id,
            kind="share",
            role=VIEWER,
            expires_at=None,
            label="CRM",
            domain="acme.example",
        )
    )
    assert (link.role, link.domain, link.label) == (VIEWER, "acme.example", "CRM")
    signer = Signer("k" * 32)
    assert domain.link_url(signer, "https://t.example", link).startswith("https://t.example/s/")
    asyncio.run(domain.revoke_link(world.store, rooms, by, world.plan.id, link.id))
    assert rooms.closed == [
        Closing(world.plan.id, Close.FORBIDDEN, "this link was revoked", link_id=link.id)
    ]
    refused(404, domain.revoke_link(world.store, rooms, by, world.plan.id, link.id))
    assert [e.kind for e in world.log()] == ["link.revoked", "link.created"]

"""The workspace owner's account rules in the identity wing, called directly: inviting staff
(a new account with a link to choose its password, or a guest made staff), making staff or
guest, deactivating, the owner who stays active staff, and the password form's checks.
Against a real SQLite file, with a mailer that notes what it sent."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import persistence
from server import identity as people
from server.identity import Acting, Identity, Signer
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
class Mailer:
    sent: list[tuple[str, str]] = field(default_factory=list)

    async def send(self, to: str, subject: str, body: str, *, plan_id: str | None = None) -> bool:
        self.sent.append((to, body))
        return True


def user(store: Store, name: str, **kw: bool) -> persistence.UserRecord:
    with persistence.transaction(store.factory) as s:
        return persistence.create_user(
            session=s,
            email=f"{name}-{uuid.uuid4().hex[:6]}@x.example",
            name=name,
            password_hash=None,
            **kw,
        )


OWNER_ACTING = Acting(
    Identity(
        user_id=1,
        name="Boss",
        email="b@x.example",
        via="session",
        credential_id="c",
        workspace_owner=True,
        staff=True,
    ),
    "192.0.2.7",
)


def workspace_log(store: Store, email: str) -> list[persistence.AccessEventRecord]:
    with persistence.transaction(store.factory) as s:
        return persistence.access_events(session=s, plan_id="-", emails=[email])


def invite(store: Store, mailer: Mailer, email: str) -> people.StaffInvited:
    return asyncio.run(
        people.invite_staff(
            store,
            mailer,
            Signer("k" * 32),
            OWNER_ACTING,
            base_url="https://t.example",
            email=email,
            name="",
        )
    )


def test_a_new_address_becomes_staff_with_a_link_to_choose_a_password(store: Store) -> None:
    mailer = Mailer()
    done = invite(store, mailer, "New.Person@Example.com")
    assert done.new and done.user.is_staff and done.user.name == "new.person"
    assert done.url is not None and done.url.startswith("https://t.example/password-reset/")
    assert mailer.sent[0][0] == "new.person@example.com" and done.url in mailer.sent[0][1]
    assert done.json() == {
        "id": done.user.id,
        "email": done.user.email,
        "kind": "staff",
        "new": True,
    }
    [entry] = workspace_log(store, "new.person@example.com")
    assert (entry.kind, entry.ip) == ("staff.invited", "192.0.2.7")


def test_a_guest_is_made_staff_without_a_link_and_staff_only_once(store: Store) -> None:
    guest, mailer = user(store, "guest", is_staff=False), Mailer()
    done = invite(store, mailer, guest.email)
    assert (done.new, done.url, done.user.is_staff, mailer.sent) == (False, None, True, [])
    with pytest.raises(ApiError) as caught:
        invite(store, mailer, guest.email)
    assert (caught.value.status_code, caught.value.field) == (409, "email")
    with pytest.raises(ApiError) as caught:
        invite(store, mailer, "nobody")
    assert (caught.value.status_code, caught.value.field) == (400, "email")


def test_accounts_change_kind_and_activity_but_the_owner_stays_active_staff(store: Store) -> None:
    boss, staff = user(store, "boss", is_owner=True), user(store, "sam")
    changed = asyncio.run(people.change_account(store, staff.id, staff=False, active=False))
    assert not changed.is_staff and changed.deactivated_at is not None
    asyncio.run(people.account_changed(store, OWNER_ACTING, changed, staff=False, active=False))
    assert workspace_log(store, staff.email)[0].detail == "made guest, deactivated"
    for ask in ({"staff": False, "active": None}, {"staff": None, "active": False}):
        with pytest.raises(ApiError) as caught:
            asyncio.run(people.change_account(store, boss.id, **ask))
        assert caught.value.status_code == 409
    with pytest.raises(ApiError) as caught:
        asyncio.run(people.change_account(store, 10**6, staff=True, active=None))
    assert caught.value.status_code == 404


def test_flags_and_passwords_are_checked() -> None:
    assert people.account_flag({"staff": True}, "staff") is True
    assert people.account_flag({}, "active") is None
    with pytest.raises(ApiError) as caught:
        people.account_flag({"active": "no"}, "active")
    assert caught.value.field == "active"
    assert people.password_errors("short", "short") == {"password": "Use at least 8 characters."}
    assert people.password_errors("long enough", "long enougH") == {
        "confirm": "The two passwords differ."
    }
    assert people.password_errors("long enough", "long enough") == {}

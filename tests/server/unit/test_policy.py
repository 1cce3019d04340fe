"""The access policy: who may do what, by role, side, kind of caller and kind of account.

``allowed`` is a pure decision on an identity already scoped to a plan, so the whole table is
checked here directly. How an identity gets its role and side (``scoped`` for accounts,
``link_identity`` for link and embed visitors) reads the database through the app's services;
those run against a real SQLite file behind the smallest connection Starlette accepts. The
rest of the guard (cookies, CSRF, the archived-plan 409) is entangled with requests and is
covered end to end by ``tests/server/test_access_matrix.py``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from starlette.requests import HTTPConnection

import persistence
from server.http.cookies import visit_cookie
from server.http.guard import archived_view, link_identity, scoped
from server.identity import (
    CUSTOMER,
    EDITOR,
    OWNER,
    VENDOR,
    VIEWER,
    Identity,
    Rule,
    allowed,
    plan_nav,
    vendor_owner,
)
from server.store import Store


def person(
    via: str,
    role: str,
    side: str,
    *,
    staff: bool = False,
    workspace_owner: bool = False,
    history: bool = False,
) -> Identity:
    account = via in ("session", "token")
    return Identity(
        user_id=1 if account else None,
        name="Someone",
        email="someone@example.com",
        via=via,
        credential_id="cred",
        read_only=role == VIEWER,
        plan_id="p1",
        role=role,
        side=side,
        staff=staff,
        workspace_owner=workspace_owner,
        history=history,
    )


# Every kind of caller a plan can have. Guests are customer side in every plan (see ``scoped``).
CALLERS = {
    "workspace owner": person("session", OWNER, VENDOR, staff=True, workspace_owner=True),
    "vendor owner": person("session", OWNER, VENDOR, staff=True),
    "vendor editor": person("session", EDITOR, VENDOR, staff=True),
    "vendor viewer": person("session", VIEWER, VENDOR, staff=True),
    "vendor editor by token": person("token", EDITOR, VENDOR, staff=True),
    "staff on customer side": person("session", EDITOR, CUSTOMER, staff=True),
    "customer owner": person("session", OWNER, CUSTOMER),
    "customer editor": person("session", EDITOR, CUSTOMER),
    "customer viewer": person("session", VIEWER, CUSTOMER),
    "customer editor by token": person("token", EDITOR, CUSTOMER),
    "link editor": person("link", EDITOR, CUSTOMER),
    "link viewer": person("link", VIEWER, CUSTOMER),
    "embed viewer": person("embed", VIEWER, CUSTOMER),
    "link viewer with history": person("link", VIEWER, CUSTOMER, history=True),
    # A visitor carrying roles it can never get is still no account: refused all the same.
    "forged link owner": person("link", OWNER, VENDOR, staff=True, workspace_owner=True),
}
EVERYONE = set(CALLERS)
VENDOR_STAFF = {
    "workspace owner",
    "vendor owner",
    "vendor editor",
    "vendor viewer",
    "vendor editor by token",
}

EXPECTED = {
    Rule.PUBLIC: EVERYONE,
    Rule.SIGNED_IN: EVERYONE,  # the guard has already required an account
    Rule.PLAN_VIEW: EVERYONE,
    Rule.PLAN_EDIT: {
        "workspace owner",
        "vendor owner",
        "vendor editor",
        "vendor editor by token",
        "staff on customer side",
        "customer owner",
        "customer editor",
        "customer editor by token",
    },
    Rule.PLAN_VENDOR: VENDOR_STAFF,
    Rule.PLAN_OWNER: {"workspace owner", "vendor owner", "customer owner"},
    # Every account in the plan; visitors only through a link created with history.
    Rule.PLAN_HISTORY: {name for name, who in CALLERS.items() if who.is_account}
    | {"link viewer with history"},
    # Every account in the plan, whatever its role; no link visitor.
    Rule.PLAN_MEMBER: {name for name, who in CALLERS.items() if who.is_account},
    Rule.STAFF: VENDOR_STAFF | {"staff on customer side"},
    Rule.WORKSPACE_OWNER: {"workspace owner"},
}


def test_every_rule_is_in_the_table() -> None:
    assert set(EXPECTED) == set(Rule)


@pytest.mark.parametrize("rule_", list(Rule), ids=str)
def test_who_each_rule_lets_in(rule_: Rule) -> None:
    let_in = {name for name, who in CALLERS.items() if allowed(rule_, who)}
    assert let_in == EXPECTED[rule_]


def test_only_a_vendor_side_staff_owner_manages_the_vendor_side() -> None:
    # vendor_owner checks account, staff and side; the role is left to the PLAN_OWNER rule
    # the routes using it (members, share) wear, so the two together are the decision.
    vendor_side = {name for name, who in CALLERS.items() if vendor_owner(who)}
    assert vendor_side == VENDOR_STAFF
    managers = {n for n in vendor_side if allowed(Rule.PLAN_OWNER, CALLERS[n])}
    assert managers == {"workspace owner", "vendor owner"}


def test_the_tab_bar_offers_the_internal_plan_and_share_only_to_who_may_open_them() -> None:
    def nav(name: str) -> tuple[bool, bool, bool]:
        got = plan_nav(CALLERS[name])
        return got["is_vendor"], got["is_owner"], got["shows_history"]

    assert nav("vendor viewer") == (True, False, True)
    assert nav("customer owner") == (False, True, True)
    assert nav("link editor") == (False, False, False)
    assert nav("link viewer with history") == (False, False, True)
    assert nav("vendor owner") == (True, True, True)


@pytest.mark.parametrize("name", sorted(CALLERS))
def test_an_archived_plan_is_read_only_for_everyone_in_it(name: str) -> None:
    who = CALLERS[name]
    seen = archived_view(who)
    assert seen.read_only
    # Only read_only changes: role and side still decide what may be seen.
    assert dataclasses.replace(seen, read_only=who.read_only) == who


def test_visit_cookies_are_per_plan() -> None:
    assert visit_cookie("a") != visit_cookie("b")


# Scoping a caller to a plan, against a real database


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'tandem.db'}"
    persistence.upgrade(url)
    s = Store.from_url(url)
    yield s
    s.dispose()


def conn_for(store: Store) -> HTTPConnection:
    app = SimpleNamespace(state=SimpleNamespace(services=SimpleNamespace(store=store)))
    return HTTPConnection({"type": "http", "app": app, "headers": []})


def account(user: persistence.UserRecord, *, via: str = "session") -> Identity:
    return Identity(
        user_id=user.id,
        name=user.name,
        email=user.email,
        via=via,
        credential_id="cred",
        workspace_owner=user.is_owner,
        staff=user.is_staff,
    )


@pytest.fixture
def people(store: Store) -> dict[str, object]:
    def user(name: str, **kw: bool) -> persistence.UserRecord:
        return persistence.create_user(
            session=s, email=f"{uuid.uuid4().hex}@x.example", name=name, password_hash=None, **kw
        )

    with persistence.transaction(store.factory) as s:
        out: dict[str, object] = {
            "boss": user("Boss", is_owner=True),
            "csm": user("Casey"),
            "colleague": user("Colleague"),
            "outsider": user("Outsider"),
            "guest": user("Guest", is_staff=False),
            "sneaky guest": user("Sneaky", is_staff=False),
        }
        plan = persistence.create_plan(session=s, title="P", customer="Acme", created_by=None)
        other = persistence.create_plan(session=s, title="Q", customer="Beta", created_by=None)
        members = [
            ("csm", OWNER, VENDOR),
            ("colleague", VIEWER, VENDOR),
            ("guest", EDITOR, CUSTOMER),
            # A row claiming the vendor side for a guest (stale or forged).
            ("sneaky guest", OWNER, VENDOR),
        ]
        for who, role, side in members:
            u = out[who]
            assert isinstance(u, persistence.UserRecord)
            persistence.set_member(session=s, plan_id=plan.id, user_id=u.id, role=role, side=side)
        out["plan"], out["other"] = plan.id, other.id
    return out


@pytest.mark.anyio
async def test_an_account_takes_its_role_and_side_from_its_membership(
    store: Store, people: dict[str, object]
) -> None:
    plan = str(people["plan"])

    async def scope(who: str, via: str = "session") -> tuple[str | None, str | None, bool] | None:
        user = people[who]
        assert isinstance(user, persistence.UserRecord)
        found = await scoped(conn_for(store), account(user, via=via), plan)
        if found is None:
            return None
        assert found.plan_id == plan
        return found.role, found.side, found.read_only

    assert await scope("csm") == (OWNER, VENDOR, False)
    assert await scope("csm", via="token") == (OWNER, VENDOR, False)
    assert await scope("colleague") == (VIEWER, VENDOR, True)
    assert await scope("guest") == (EDITOR, CUSTOMER, False)
    # A guest is customer side whatever its row says: no row opens the internal plan to one.
    assert await scope("sneaky guest") == (OWNER, CUSTOMER, False)
    # The workspace owner owns every plan, on the vendor side, member or not.
    assert await scope("boss") == (OWNER, VENDOR, False)
    # Staff are not in every plan: no membership, no role.
    assert await scope("outsider") is None


@pytest.mark.anyio
async def test_link_and_embed_visitors_are_customer_side_with_the_links_role(
    store: Store, people: dict[str, object]
) -> None:
    plan, other = str(people["plan"]), str(people["other"])
    later = datetime.now(UTC) + timedelta(days=7)
    links = {
        "share editor": ("share", EDITOR, None, later),
        "share viewer": ("share", VIEWER, None, later),
        "embed": ("embed", VIEWER, None, later),
        "acme only": ("share", EDITOR, "acme.example", later),
        "expired": ("share", EDITOR, None, datetime.now(UTC) - timedelta(seconds=1)),
        "revoked": ("share", EDITOR, None, later),
        "with history": ("share", VIEWER, None, later),
    }
    ids = {name: uuid.uuid4().hex for name in links}
    with persistence.transaction(store.factory) as s:
        for name, (kind, role, domain, expires) in links.items():
            persistence.create_link(
                session=s,
                link_id=ids[name],
                plan_id=plan,
                kind=kind,
                role=role,
                label=name,
                domain=domain,
                created_by=None,
                expires_at=expires,
                history=name == "with history",
            )
        persistence.revoke_link(session=s, plan_id=plan, link_id=ids["revoked"])

    async def visit(
        name: str, *, email: str | None = None, in_plan: str = plan
    ) -> tuple[str, str | None, str | None, bool] | None:
        found = await link_identity(conn_for(store), ids[name], in_plan, name="Vi", email=email)
        if found is None:
            return None
        assert (found.user_id, found.is_account, found.plan_id) == (None, False, in_plan)
        return found.via, found.role, found.side, found.read_only

    assert await visit("share editor") == ("link", EDITOR, CUSTOMER, False)
    # Only a link created with history lets its visitors read the plan's history.
    shows = await link_identity(conn_for(store), ids["with history"], plan, name="V", email=None)
    hides = await link_identity(conn_for(store), ids["share viewer"], plan, name="V", email=None)
    assert shows is not None and shows.history and hides is not None and not hides.history
    assert await visit("share viewer") == ("link", VIEWER, CUSTOMER, True)
    assert await visit("embed") == ("embed", VIEWER, CUSTOMER, True)
    # A link opens only its own plan, and only while it lives.
    assert await visit("share editor", in_plan=other) is None
    assert await visit("expired") is None
    assert await visit("revoked") is None
    # A domain-locked link wants an address at that domain (any case), nothing else.
    assert await visit("acme only") is None
    assert await visit("acme only", email="pat@evil.example") is None
    assert await visit("acme only", email="pat@notacme.example") is None
    assert await visit("acme only", email="Pat@ACME.example") == ("link", EDITOR, CUSTOMER, False)

"""Staff and guests, the workspace owner's People page and API, deactivation, and the vendor
side that only vendor-side owners may grant (see tests/support/access.py for the world)."""

from __future__ import annotations

import asyncio
import re

import httpx

from tests.support.access import PASSWORD, World, api, invite_and_join, sign_in
from tests.support.yclient import connect

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _member_id(world: World, email: str) -> int:
    owner = world.callers["owner_api"].client
    members = owner.get(f"/api/plans/{world.plan}/members").json()["members"]
    return next(m["user_id"] for m in members if m["email"] == email)


def _person(world: World, email: str) -> dict:
    people = world.callers["owner_api"].client.get("/api/workspace/people").json()["people"]
    return next(p for p in people if p["email"] == email)


def test_guests_create_no_plans_and_see_no_workspace_templates(world: World) -> None:
    owner = world.callers["owner_api"].client
    saved = owner.post(f"/api/plans/{world.plan}/save-as-template", json={"name": "From Acme"})
    assert saved.status_code == 201, saved.text
    # Saving says what it copies, and to whom it is then offered.
    assert "tasks" in saved.json()["copies"] and "staff" in saved.json()["copies"]
    template_id = saved.json()["id"]

    guest = world.callers["api_token"].client  # Cora's token: a guest on the customer side
    r = guest.post("/api/plans", json={"title": "Mine", "customer": "Me", "template": template_id})
    assert r.status_code == 403 and "staff" in r.json()["error"]
    ids = [t["id"] for t in guest.get("/api/templates").json()["templates"]]
    assert template_id not in ids and ids  # the built-in ones only
    page = world.callers["customer_member"]
    listing = page.client.get("/")
    assert listing.status_code == 200
    assert "New plan" not in listing.text and "From Acme" not in listing.text
    r = page.client.post(
        "/", data={"csrf": page.csrf, "title": "Mine", "customer": "Me", "template": template_id}
    )
    assert r.status_code == 403
    assert [p["id"] for p in guest.get("/api/plans").json()["plans"]] == [world.plan]

    staff = world.callers["vendor_member"]  # Vera, invited to the vendor side: staff
    headers = {"X-CSRF-Token": staff.csrf}
    ids = [t["id"] for t in staff.client.get("/api/templates").json()["templates"]]
    assert template_id in ids
    r = staff.client.post(
        "/api/plans", json={"title": "Vera's", "customer": "Initech"}, headers=headers
    )
    assert r.status_code == 201, r.text


def test_a_customer_side_owner_cannot_reach_the_vendor_side(world: World) -> None:
    srv, owner = world.server, world.callers["owner_api"].client
    invite_and_join(srv, owner, world.plan, "gwen@customer.example", "Gwen", "owner", "customer")
    gwen_token = srv.create_token("gwen@customer.example")
    gwen = api(srv, gwen_token)
    gwen_id = _member_id(world, "gwen@customer.example")
    vera_id = _member_id(world, "vera@vendor.example")
    pending = owner.post(
        f"/api/plans/{world.plan}/members",
        json={"email": "victor@vendor.example", "role": "editor", "side": "vendor"},
    )
    assert pending.status_code == 201
    base = f"/api/plans/{world.plan}"

    # Making herself vendor side, in every way the API offers.
    r = gwen.patch(f"{base}/members/{gwen_id}", json={"role": "owner", "side": "vendor"})
    assert r.status_code == 403 and "vendor-side owners" in r.json()["error"]
    r = gwen.post(
        f"{base}/members",
        json={"email": "gwen2@customer.example", "role": "editor", "side": "vendor"},
    )
    assert r.status_code == 403
    # Nor may she change or remove the vendor's people.
    assert (
        gwen.patch(
            f"{base}/members/{vera_id}", json={"role": "viewer", "side": "vendor"}
        ).status_code
        == 403
    )
    assert gwen.delete(f"{base}/members/{vera_id}").status_code == 403
    assert gwen.get(f"{base}/internal/document").status_code == 404
    # An owner, but a guest: saving the plan as a workspace template is refused too.
    r = gwen.post(f"{base}/save-as-template", json={"name": "Leak"})
    assert r.status_code == 403 and "staff" in r.json()["error"]
    # ... nor see pending vendor invitations (their links are credentials) ...
    listed = gwen.get(f"{base}/members").json()
    assert all(i["side"] == "customer" for i in listed["invites"])
    assert any(
        i["email"] == "victor@vendor.example"
        for i in owner.get(f"{base}/members").json()["invites"]
    )
    # ... nor vendor people's sign-ins and addresses in the access log.
    log = gwen.get(f"{base}/access-log").json()["events"]
    text = repr(log)
    assert "vera@vendor.example" not in text and "victor@vendor.example" not in text
    assert "cora@customer.example" in text  # her own side's sign-ins stay
    assert "vera@vendor.example" in repr(owner.get(f"{base}/access-log").json()["events"])

    # The Share page offers her the customer side only, and no vendor invitation link.
    c = httpx.Client(base_url=srv.http, follow_redirects=False)
    c.post("/login", data={"email": "gwen@customer.example", "password": PASSWORD, "next": "/"})
    page = c.get(f"/plans/{world.plan}/share")
    assert page.status_code == 200
    assert 'value="vendor"' not in page.text and "victor@vendor.example" not in page.text
    csrf = CSRF.search(page.text).group(1)
    r = c.post(
        f"/plans/{world.plan}/share",
        data={
            "csrf": csrf,
            "action": "member",
            "user_id": str(gwen_id),
            "role": "owner",
            "side": "vendor",
        },
    )
    assert r.status_code == 403
    assert c.get(f"/plans/{world.plan}/internal").status_code == 404
    c.close()
    gwen.close()


def test_a_members_side_follows_the_account_kind(world: World) -> None:
    owner = world.callers["owner_api"].client
    base = f"/api/plans/{world.plan}"
    cora_id = _member_id(world, "cora@customer.example")
    # A guest is never vendor side, a staff member never customer side: refused, saying why.
    r = owner.patch(f"{base}/members/{cora_id}", json={"role": "editor", "side": "vendor"})
    assert r.status_code == 409 and "guest" in r.json()["error"]
    r = owner.post(
        f"/api/plans/{world.other_plan}/members",
        json={"email": "cora@customer.example", "role": "editor", "side": "vendor"},
    )
    assert r.status_code == 409 and "guest" in r.json()["error"]
    vera_id = _member_id(world, "vera@vendor.example")
    r = owner.patch(f"{base}/members/{vera_id}", json={"role": "editor", "side": "customer"})
    assert r.status_code == 409 and "staff" in r.json()["error"]
    # Only the workspace owner may invite a new address to the vendor side (it becomes staff).
    vera = world.callers["vendor_member"]
    assert (
        owner.patch(
            f"{base}/members/{vera_id}", json={"role": "owner", "side": "vendor"}
        ).status_code
        == 200
    )
    r = vera.client.post(
        f"{base}/members",
        json={"email": "newbie@vendor.example", "role": "editor", "side": "vendor"},
        headers={"X-CSRF-Token": vera.csrf},
    )
    assert r.status_code == 403 and "workspace owner" in r.json()["error"]
    assert (
        owner.patch(
            f"{base}/members/{vera_id}", json={"role": "editor", "side": "vendor"}
        ).status_code
        == 200
    )
    # An invitation whose side no longer fits the account is refused when accepted.
    srv = world.server
    r = owner.post(
        f"{base}/members",
        json={"email": "kim@customer.example", "role": "viewer", "side": "customer"},
    )
    url = r.json()["url"]
    srv.create_user("kim@customer.example", "Kim", PASSWORD)  # made staff by the CLI meanwhile
    kim = sign_in(srv, "kim@customer.example")
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    r = kim.client.post(path, data={"csrf": kim.csrf})
    assert r.status_code == 409 and "staff" in r.text
    kim.client.close()
    assert _person(world, "vera@vendor.example")["kind"] == "staff"
    assert _person(world, "cora@customer.example")["kind"] == "guest"


def test_deactivation_ends_sessions_tokens_and_open_sockets(world: World) -> None:
    srv, owner = world.server, world.callers["owner_api"].client
    invite_and_join(srv, owner, world.plan, "dee@vendor.example", "Dee", "editor", "vendor")
    token = srv.create_token("dee@vendor.example")
    dee = sign_in(srv, "dee@vendor.example")
    dee_id = _person(world, "dee@vendor.example")["id"]

    async def scenario() -> int | None:
        async with connect(srv.ws, world.plan, token) as (_doc, ws):
            r = await asyncio.to_thread(
                owner.patch, f"/api/workspace/people/{dee_id}", json={"active": False}
            )
            assert r.status_code == 200, r.text
            # The provider is reading the socket; wait for the close, do not read beside it.
            async with asyncio.timeout(10):
                await ws.wait_closed()
            return ws.close_code

    assert asyncio.run(scenario()) == 4401
    assert dee.client.get("/api/plans").status_code == 401
    with api(srv, token) as c:
        assert c.get("/api/plans").status_code == 401
    with httpx.Client(base_url=srv.http) as c:
        r = c.post("/login", data={"email": "dee@vendor.example", "password": PASSWORD})
        assert r.status_code == 401 and "do not match" in r.text
    assert _person(world, "dee@vendor.example")["active"] is False
    # The workspace owner cannot be deactivated or made a guest.
    me = _person(world, "owner@vendor.example")["id"]
    assert owner.patch(f"/api/workspace/people/{me}", json={"active": False}).status_code == 409
    assert owner.patch(f"/api/workspace/people/{me}", json={"staff": "no"}).status_code == 400
    # Reactivated, Dee signs in again; the old token stays revoked.
    r = owner.patch(f"/api/workspace/people/{dee_id}", json={"active": True})
    assert r.status_code == 200
    sign_in(srv, "dee@vendor.example").client.close()
    with api(srv, token) as c:
        assert c.get("/api/plans").status_code == 401
    dee.client.close()


def test_people_api_and_page_are_the_workspace_owners(world: World) -> None:
    owner = world.callers["owner_api"].client
    people = owner.get("/api/workspace/people").json()["people"]
    cora = next(p for p in people if p["email"] == "cora@customer.example")
    assert cora["kind"] == "guest" and cora["last_sign_in"]
    assert {"id": world.plan, "title": "Shared plan", "role": "editor", "side": "customer"} in cora[
        "plans"
    ]
    for name in ("vendor_member", "customer_member", "api_token"):
        assert world.callers[name].client.get("/api/workspace/people").status_code == 403
    # Inviting staff: a new account with a single-use link to choose its password.
    r = owner.post("/api/workspace/people", json={"email": "sam@vendor.example", "name": "Sam"})
    assert r.status_code == 201 and r.json()["kind"] == "staff"
    path = "/" + r.json()["url"].split("://", 1)[1].split("/", 1)[1]
    assert (
        owner.post("/api/workspace/people", json={"email": "sam@vendor.example"}).status_code == 409
    )
    with httpx.Client(base_url=world.server.http, follow_redirects=False) as sam:
        assert sam.get(path).status_code == 200
        r = sam.post(path, data={"password": "new password 1", "confirm": "new password 1"})
        assert r.status_code == 303
        assert sam.get("/api/plans").status_code == 200
        assert sam.get(path).status_code == 404  # single use
    # An existing guest is made staff at once (no link: they have a password).
    r = owner.post("/api/workspace/people", json={"email": "cora@customer.example"})
    assert r.status_code == 200 and r.json()["url"] is None
    assert _person(world, "cora@customer.example")["kind"] == "staff"
    # ... which moves her memberships to the vendor side; and back.
    cora_id = _member_id(world, "cora@customer.example")
    members = owner.get(f"/api/plans/{world.plan}/members").json()["members"]
    assert next(m for m in members if m["user_id"] == cora_id)["side"] == "vendor"
    assert owner.patch(f"/api/workspace/people/{cora_id}", json={"staff": False}).status_code == 200
    members = owner.get(f"/api/plans/{world.plan}/members").json()["members"]
    assert next(m for m in members if m["user_id"] == cora_id)["side"] == "customer"


def test_a_template_names_none_of_the_plans_people(world: World) -> None:
    owner = world.callers["owner_api"].client
    builtin = owner.get("/api/templates").json()["templates"][0]["id"]
    r = owner.post("/api/plans", json={"title": "T", "customer": "C", "template": builtin})
    plan = r.json()["id"]  # materialised before the answer: its tasks are listed at once
    first = owner.get(f"/api/plans/{plan}/tasks").json()["tasks"][0]
    me = _person(world, "owner@vendor.example")["id"]
    r = owner.patch(f"/api/plans/{plan}/tasks/{first['id']}", json={"owner": {"id": f"user:{me}"}})
    assert r.status_code == 200, r.text
    assert owner.get(f"/api/plans/{plan}/tasks").json()["tasks"][0]["owner"]["id"] == f"user:{me}"
    saved = owner.post(f"/api/plans/{plan}/save-as-template", json={"name": "Named"}).json()
    assert "removed" in saved["copies"]
    r = owner.post("/api/plans", json={"title": "T2", "customer": "C", "template": saved["id"]})
    copied = owner.get(f"/api/plans/{r.json()['id']}/tasks").json()["tasks"]
    assert copied[0]["owner"] is None
    assert all(not (t["owner"] or {}).get("id", "").startswith("user:") for t in copied)

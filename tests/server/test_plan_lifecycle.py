"""A plan's life cycle against the real server: rename, archive (read-only everywhere at once)
and restore, delete (every row of the plan, in every table, gone; a workspace record kept)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import websockets
from sqlalchemy import func, select

import persistence
from persistence.models import AccessEvent, Base, EmailCode
from tests.server.test_access_matrix import ENDPOINTS, app_routes, fill
from tests.support.access import World, create_link, invite_and_join
from tests.support.yclient import add_paragraph, connect

SYNC_STEP1_EMPTY = b"\x00\x00\x01\x00"  # sync step 1 with an empty state vector


def owner(world: World) -> httpx.Client:
    return world.callers["owner_api"].client


def new_plan(world: World, title: str, customer: str = "Initech", **extra: Any) -> str:
    r = owner(world).post("/api/plans", json={"title": title, "customer": customer, **extra})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def error(r: httpx.Response, status: int, field: str | None = None) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body.get("field") == field, body
    assert isinstance(body["error"], str) and body["error"]
    return body["error"]


def markdown(world: World, plan_id: str) -> str:
    r = owner(world).get(f"/api/plans/{plan_id}/document", params={"format": "markdown"})
    assert r.status_code == 200, r.text
    return r.text


async def closed_code(ws: websockets.ClientConnection, timeout: float = 10) -> int | None:
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


async def provider_closed_code(ws: websockets.ClientConnection, timeout: float = 10) -> int | None:
    """The close code of a socket whose frames a pycrdt Provider reads."""
    async with asyncio.timeout(timeout):
        await ws.wait_closed()
    return ws.close_code


def rows_of_plan(url: str, plan_id: str) -> dict[str, int]:
    """Rows of the plan in every table of the schema that has a plan_id column."""
    engine = persistence.make_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: conn.execute(
                    select(func.count()).select_from(t).where(t.c.plan_id == plan_id)
                ).scalar_one()
                for t in Base.metadata.sorted_tables
                if "plan_id" in t.c
            }
    finally:
        engine.dispose()


def email_codes(url: str, link_id: str) -> int:
    engine = persistence.make_engine(url)
    try:
        with engine.connect() as conn:
            q = select(func.count()).select_from(EmailCode).where(EmailCode.link_id == link_id)
            return conn.execute(q).scalar_one()
    finally:
        engine.dispose()


# Rename and change the customer


def test_owner_renames_and_changes_the_customer(world: World) -> None:
    plan = new_plan(world, "Old name")
    r = owner(world).patch(
        f"/api/plans/{plan}", json={"title": " New name ", "customer": "Umbrella"}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["title"], r.json()["customer"], r.json()["archived"]) == (
        "New name",
        "Umbrella",
        False,
    )
    assert owner(world).get(f"/api/plans/{plan}").json()["title"] == "New name"


def test_patch_refuses_bad_input_with_a_named_field(world: World) -> None:
    plan = new_plan(world, "Strict")
    url = f"/api/plans/{plan}"
    error(owner(world).patch(url, json={}), 400)
    error(owner(world).patch(url, json={"id": "x"}), 400, "id")
    error(owner(world).patch(url, json={"title": ""}), 400, "title")
    error(owner(world).patch(url, json={"title": "x" * 201}), 400, "title")
    error(owner(world).patch(url, json={"customer": 7}), 400, "customer")
    error(owner(world).patch(url, json={"archived": "yes"}), 400, "archived")
    error(owner(world).patch(url, content=b"[1]"), 400)
    assert owner(world).get(url).json()["title"] == "Strict"


def test_only_owners_change_archive_or_delete(world: World) -> None:
    # Vera and Cora are editors of the world's plan: neither may rename, archive or delete it.
    for name in ("vendor_member", "customer_member", "api_token"):
        c = world.callers[name]
        headers = {"X-CSRF-Token": c.csrf} if c.csrf else {}
        url = f"/api/plans/{world.plan}"
        assert c.client.patch(url, json={"archived": True}, headers=headers).status_code == 403
        r = c.client.request("DELETE", url, json={"confirm": "Shared plan"}, headers=headers)
        assert r.status_code == 403
    assert owner(world).get(f"/api/plans/{world.plan}").json()["archived"] is False


# Archive and restore


def test_archive_makes_every_socket_and_write_read_only_until_restored(world: World) -> None:
    plan = new_plan(world, "To archive")
    viewer = create_link(owner(world), plan, role="viewer")
    url = f"/api/plans/{plan}"

    async def scenario() -> None:
        async with (
            connect(world.server.ws, plan, world.owner_token) as (doc, writer),
            websockets.connect(f"{world.server.ws}/{plan}?token={viewer['token']}") as watcher,
        ):
            add_paragraph(doc, "before archiving")
            await asyncio.sleep(0.3)
            r = await asyncio.to_thread(owner(world).patch, url, json={"archived": True})
            assert r.status_code == 200 and r.json()["archived"] is True, r.text
            # A socket that could edit is told it cannot (the editor reloads into the
            # archived view); a viewer's stays open and keeps syncing.
            assert await provider_closed_code(writer) == 4405
            await watcher.send(SYNC_STEP1_EMPTY)
            async with asyncio.timeout(10):
                while (await watcher.recv())[:2] != b"\x00\x01":
                    pass
        # Reconnecting does not make it writable again: the edit goes nowhere.
        async with connect(world.server.ws, plan, world.owner_token) as (doc, _):
            add_paragraph(doc, "edit while archived")
            await asyncio.sleep(0.5)

    asyncio.run(scenario())
    text = markdown(world, plan)
    assert "before archiving" in text and "edit while archived" not in text

    # Every write through the API answers 409 with a message; reads still work.
    o = owner(world)
    assert "archived" in error(o.put(f"{url}/status", json={"rag": "red", "reason": "x"}), 409)
    assert "archived" in error(o.delete(f"{url}/status"), 409)
    error(o.patch(f"{url}/tasks/t_x", json={"status": "done"}), 409)
    error(o.post(f"{url}/links", json={"role": "viewer"}), 409)
    error(o.patch(url, json={"title": "Renamed while archived"}), 409)
    # Taking access away and reusing the content still work.
    assert o.delete(f"{url}/links/{viewer['id']}").status_code == 204
    r = o.post(f"{url}/save-as-template", json={"name": "From an archived plan"})
    assert r.status_code == 201, r.text
    assert o.get(f"{url}/summary").status_code == 200
    # Hidden from the list, shown with archived=true.
    assert plan not in [p["id"] for p in o.get("/api/plans").json()["plans"]]
    listed = o.get("/api/plans", params={"archived": "true"}).json()["plans"]
    assert [p["id"] for p in listed if p["id"] == plan] == [plan]

    r = o.patch(url, json={"archived": False})
    assert r.status_code == 200 and r.json()["archived"] is False
    assert o.put(f"{url}/status", json={"rag": "red", "reason": "x"}).status_code == 200

    async def after() -> None:
        async with connect(world.server.ws, plan, world.owner_token) as (doc, _):
            add_paragraph(doc, "edit after restoring")
            await asyncio.sleep(0.5)

    asyncio.run(after())
    assert "edit after restoring" in markdown(world, plan)


def test_archived_plan_page_shows_the_banner_and_pages_refuse_writes(world: World) -> None:
    plan = new_plan(world, "Banner plan")
    embed = owner(world).post(f"/api/plans/{plan}/embeds", json={"role": "editor"})
    assert embed.status_code == 201, embed.text
    assert owner(world).patch(f"/api/plans/{plan}", json={"archived": True}).status_code == 200
    # Every page that hosts the editor starts it read-only, the CRM embed included.
    framed = httpx.get(embed.json()["url"])
    assert framed.status_code == 200 and '"readOnly": true' in framed.text
    page = world.callers["owner"].client.get(f"/plans/{plan}")
    assert page.status_code == 200
    assert 'id="archived-banner"' in page.text and 'id="restore-plan"' in page.text
    assert '"readOnly": true' in page.text
    c = world.callers["owner"]
    r = c.client.post(
        f"/plans/{plan}/dashboard", data={"csrf": c.csrf, "rag": "red", "reason": "late"}
    )
    assert r.status_code == 409
    # Restore from the page, as the banner's button does.
    r = c.client.post(f"/plans/{plan}/settings", data={"csrf": c.csrf, "action": "restore"})
    assert r.status_code == 303
    assert owner(world).get(f"/api/plans/{plan}").json()["archived"] is False


# Delete


def test_delete_needs_the_typed_title(world: World) -> None:
    plan = new_plan(world, "Keep me")
    url = f"/api/plans/{plan}"
    error(owner(world).delete(url), 400, "confirm")
    error(owner(world).request("DELETE", url, json={"confirm": "keep me"}), 400, "confirm")
    error(owner(world).request("DELETE", url, json={"confirm": 1}), 400, "confirm")
    assert owner(world).get(url).status_code == 200


def test_delete_removes_every_row_of_the_plan_and_keeps_a_workspace_record(
    world: World,
) -> None:
    plan = new_plan(world, "Doomed plan", template="joint-success-plan")
    o = owner(world)
    url = f"/api/plans/{plan}"
    invite_and_join(
        world.server, o, plan, "dee@customer.example", "Dee Customer", "editor", "customer"
    )
    r = o.post(
        f"{url}/members", json={"email": "pending@x.example", "role": "viewer", "side": "customer"}
    )
    assert r.status_code == 201, r.text
    create_link(o, plan, role="viewer")
    locked = create_link(o, plan, role="editor", domain="customer.example")
    # A one-time code for the domain-locked link: a row that hangs off the link, not the plan.
    path = "/" + locked["url"].split("://", 1)[1].split("/", 1)[1]
    data = {"step": "name", "name": "Dee", "email": "dee@customer.example"}
    assert httpx.post(world.server.http + path, data=data).status_code == 200
    assert email_codes(world.server.database_url, locked["id"]) == 1
    assert o.put(f"{url}/status", json={"rag": "amber", "reason": "slipping"}).status_code == 200
    dee = world.server.create_token("dee@customer.example")

    async def scenario() -> None:
        async with (
            connect(world.server.ws, plan, world.owner_token) as (doc, _),
            websockets.connect(f"{world.server.ws}/{plan}?token={dee}") as other,
            websockets.connect(
                f"{world.server.ws}/{plan}/internal?token={world.owner_token}"
            ) as internal,
        ):
            add_paragraph(doc, "some content")
            await asyncio.sleep(0.3)
            before = rows_of_plan(world.server.database_url, plan)
            for table in (
                "plan_updates",
                "plan_tasks",
                "plan_members",
                "invites",
                "share_links",
                "access_events",
                "plan_status",
                "plan_projections",
                "outbox",
            ):
                assert before[table] > 0, (table, before)
            r = await asyncio.to_thread(o.request, "DELETE", url, json={"confirm": "Doomed plan"})
            assert r.status_code == 204, r.text
            # Everyone in it is told, with a named code, that the plan is gone.
            assert await closed_code(other) == 4404
            assert await closed_code(internal) == 4404
        async with websockets.connect(f"{world.server.ws}/{plan}?token={dee}") as late:
            assert await closed_code(late) in (4401, 4404)

    asyncio.run(scenario())
    assert o.get(url).status_code == 404
    assert rows_of_plan(world.server.database_url, plan) == {
        t.name: 0 for t in Base.metadata.sorted_tables if "plan_id" in t.c
    }
    assert email_codes(world.server.database_url, locked["id"]) == 0
    engine = persistence.make_engine(world.server.database_url)
    try:
        with engine.connect() as conn:
            kept = conn.execute(
                select(AccessEvent).where(
                    AccessEvent.kind == "plan.deleted", AccessEvent.detail == f"plan {plan}"
                )
            ).all()
    finally:
        engine.dispose()
    assert len(kept) == 1 and kept[0].plan_id is None
    assert kept[0].subject == "Doomed plan (Initech)"
    assert "owner@vendor.example" in kept[0].actor
    assert plan not in [
        p["id"] for p in o.get("/api/plans", params={"archived": "all"}).json()["plans"]
    ]


def test_every_plan_write_route_answers_409_once_archived(world: World) -> None:
    """Enumerated from the app's route table, like the authorization matrix: a write route
    added later is covered without anyone remembering to."""
    plan = new_plan(world, "Frozen")
    assert owner(world).patch(f"/api/plans/{plan}", json={"archived": True}).status_code == 200
    c = world.callers["owner"]
    routes = app_routes()
    checked = 0
    for method, path, _rule in ENDPOINTS:
        if method in ("GET", "WS") or "{plan_id}" not in path:
            continue
        route = next(
            r
            for r in routes
            if getattr(r, "path", None) == path and method in (getattr(r, "methods", None) or ())
        )
        if route.endpoint.on_archived:
            continue
        url = fill(path, world).replace(world.plan, plan)
        kwargs: dict[str, Any] = {"headers": {"X-CSRF-Token": c.csrf}}
        if path.startswith("/api/"):
            kwargs["json"] = {}
        else:
            kwargs["data"] = {"csrf": c.csrf, "action": "none-such"}
        r = c.client.request(method, url, **kwargs)
        assert r.status_code == 409, f"{method} {path}: {r.status_code} {r.text[:200]}"
        checked += 1
    assert checked >= 8


def test_settings_page_renames_and_saves_as_template_without_javascript(world: World) -> None:
    plan = new_plan(world, "Form plan")
    c = world.callers["owner"]
    page = c.client.get(f"/plans/{plan}/settings")
    assert page.status_code == 200 and 'id="save-template"' in page.text
    url = f"/plans/{plan}/settings"
    r = c.client.post(url, data={"csrf": c.csrf, "action": "rename", "title": "", "customer": "X"})
    assert r.status_code == 400 and "Enter a title" in r.text
    data = {"csrf": c.csrf, "action": "rename", "title": "Form plan 2", "customer": "Hooli"}
    assert c.client.post(url, data=data).status_code == 303
    assert owner(world).get(f"/api/plans/{plan}").json()["customer"] == "Hooli"
    data = {"csrf": c.csrf, "action": "template", "name": "Our onboarding"}
    assert c.client.post(url, data=data).status_code == 303
    names = [t["name"] for t in owner(world).get("/api/templates").json()["templates"]]
    assert "Our onboarding" in names
    # Editors do not see it.
    assert (
        world.callers["vendor_member"].client.get(f"/plans/{world.plan}/settings").status_code
        == 403
    )

"""Access on live sockets: viewers cannot edit, revocation and removal disconnect, the internal
plan stays with the vendor."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

import websockets

from server.live.protocol import awareness_frame, parse_awareness
from tests.support.access import World, create_link, invite_and_join, sign_in, visit
from tests.support.servers import ROOT
from tests.support.yclient import add_paragraph, connect, paragraphs

NODE_CLIENT = Path(__file__).resolve().parents[1] / "js" / "yjs_client.mjs"


def markdown(world: World, suffix: str = "") -> str:
    r = world.callers["owner_api"].client.get(
        f"/api/plans/{world.plan}{suffix}/document", params={"format": "markdown"}
    )
    assert r.status_code == 200, r.text
    return r.text


def node_client(world: World, room: str, token: str, text: str, name: str = "") -> dict:
    done = subprocess.run(
        ["node", str(NODE_CLIENT), world.server.ws, room, token, text, name],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def test_stock_yjs_viewer_edit_reaches_nobody(world: World) -> None:
    async def scenario() -> None:
        async with connect(world.server.ws, world.plan, world.owner_token) as (owner_doc, _):
            add_paragraph(owner_doc, "Agreed goals")
            await asyncio.sleep(0.5)
            viewer = await asyncio.to_thread(
                node_client, world, world.plan, world.links["viewer"]["token"], "VIEWER EDIT", "Vic"
            )
            assert viewer["synced"] is True
            assert "Agreed goals" in viewer["text"]  # the viewer receives the document
            assert viewer["denied"] == ["read-only"]  # ...and is told its edit was refused
            await asyncio.sleep(0.5)
            assert "VIEWER EDIT" not in " ".join(paragraphs(owner_doc))
            # An editor's link, through the same stock client, does edit.
            editor = await asyncio.to_thread(
                node_client, world, world.plan, world.links["editor"]["token"], "EDITOR EDIT"
            )
            assert editor["denied"] == []
            await wait_for(lambda: "EDITOR EDIT" in " ".join(paragraphs(owner_doc)))

    asyncio.run(scenario())
    text = markdown(world)
    assert "Agreed goals" in text and "EDITOR EDIT" in text
    assert "VIEWER EDIT" not in text


def test_pycrdt_viewer_member_edit_is_dropped(world: World) -> None:
    owner = world.callers["owner_api"].client
    invite_and_join(
        world.server, owner, world.plan, "val@customer.example", "Val Viewer", "viewer", "customer"
    )
    token = world.server.create_token("val@customer.example")

    async def scenario() -> None:
        async with (
            connect(world.server.ws, world.plan, world.owner_token) as (owner_doc, _),
            connect(world.server.ws, world.plan, token) as (viewer_doc, _),
        ):
            add_paragraph(viewer_doc, "sneaky viewer change")
            add_paragraph(owner_doc, "owner change")
            await wait_for(lambda: "owner change" in paragraphs(viewer_doc))
            await asyncio.sleep(0.5)
            assert "sneaky viewer change" not in paragraphs(owner_doc)

    asyncio.run(scenario())
    assert "sneaky viewer change" not in markdown(world)


async def _closed_within(ws, seconds: float) -> int | None:  # type: ignore[no-untyped-def]
    try:
        async with asyncio.timeout(seconds):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


def test_revoking_a_link_closes_its_connections(world: World) -> None:
    owner = world.callers["owner_api"].client
    link = create_link(owner, world.plan, role="editor", label="Temporary")
    visitor = visit(world.server, link["url"], "Tess Temp")

    async def scenario() -> None:
        url = f"{world.server.ws}/{world.plan}"
        headers = {"Origin": world.server.http, "Cookie": visitor.cookie_header()}
        async with (
            websockets.connect(f"{url}?token={link['token']}") as by_token,
            websockets.connect(url, additional_headers=headers) as by_cookie,
        ):
            await by_token.recv()
            await by_cookie.recv()
            r = await asyncio.to_thread(owner.delete, f"/api/plans/{world.plan}/links/{link['id']}")
            assert r.status_code == 204
            assert await _closed_within(by_token, 5) == 4403
            assert await _closed_within(by_cookie, 5) == 4403
        async with websockets.connect(f"{url}?token={link['token']}") as again:
            assert await _closed_within(again, 5) == 4401

    asyncio.run(scenario())
    # Told the link is gone, not sent to a sign-in page they have no account for.
    gone = visitor.client.get(f"/plans/{world.plan}")
    assert gone.status_code == 403 and "not valid any more" in gone.text
    listed = owner.get(f"/api/plans/{world.plan}/links").json()["links"]
    row = next(x for x in listed if x["id"] == link["id"])
    assert row["revoked_at"] and row["last_used_at"] and not row["active"]
    visitor.client.close()


def test_removing_a_member_closes_their_connections(world: World) -> None:
    owner = world.callers["owner_api"].client
    invite_and_join(
        world.server, owner, world.plan, "rex@customer.example", "Rex Removed", "editor", "customer"
    )
    token = world.server.create_token("rex@customer.example")
    members = owner.get(f"/api/plans/{world.plan}/members").json()["members"]
    rex = next(m for m in members if m["email"] == "rex@customer.example")

    async def scenario() -> None:
        async with websockets.connect(f"{world.server.ws}/{world.plan}?token={token}") as ws:
            await ws.recv()
            r = await asyncio.to_thread(
                owner.delete, f"/api/plans/{world.plan}/members/{rex['user_id']}"
            )
            assert r.status_code == 204
            assert await _closed_within(ws, 5) == 4403
        async with websockets.connect(f"{world.server.ws}/{world.plan}?token={token}") as ws:
            assert await _closed_within(ws, 5) == 4404

    asyncio.run(scenario())
    log = owner.get(f"/api/plans/{world.plan}/access-log").json()["events"]
    assert any(
        e["kind"] == "member.removed" and e["subject"] == "rex@customer.example" for e in log
    )


def test_internal_plan_is_for_the_vendor_side_only(world: World) -> None:
    vera = world.server.create_token("vera@vendor.example")

    async def scenario() -> None:
        async with connect(f"{world.server.ws}/{world.plan}", "internal", vera) as (internal, _):
            add_paragraph(internal, "RISK: champion is leaving")
            await asyncio.sleep(0.5)
        for caller in ("customer_member", "link_viewer", "link_editor", "api_token"):
            c = world.callers[caller]
            url = f"{world.server.ws}/{world.plan}/internal"
            headers = {"Origin": world.server.http}
            if c.token:
                url += f"?token={c.token}"
            else:
                headers["Cookie"] = c.cookie_header()
            async with websockets.connect(url, additional_headers=headers) as ws:
                assert await _closed_within(ws, 5) == 4403, caller
        for link in world.links.values():
            url = f"{world.server.ws}/{world.plan}/internal?token={link['token']}"
            async with websockets.connect(url) as ws:
                assert await _closed_within(ws, 5) == 4403

    asyncio.run(scenario())
    assert "champion is leaving" in markdown(world, "/internal")
    # Nothing of it anywhere a customer can look.
    for caller in ("customer_member", "link_viewer", "link_editor", "api_token"):
        client = world.callers[caller].client
        for path in ("", "/document", "/document?format=markdown"):
            r = client.get(f"/api/plans/{world.plan}{path}")
            assert "champion" not in r.text
        for tab in ("", "/dashboard", "/history"):
            page = client.get(f"/plans/{world.plan}{tab}")
            assert "champion" not in page.text and "/internal" not in page.text, (caller, tab)
        assert client.get(f"/plans/{world.plan}/internal").status_code in (303, 404)
        assert client.get(f"/api/plans/{world.plan}/internal/document").status_code in (401, 404)
    assert "champion" not in markdown(world)


def test_every_plan_page_offers_the_same_tabs_to_the_same_person(world: World) -> None:
    """Editor, dashboard and history share one tab bar: Share for the plan's owners, the
    internal plan for the vendor side, on each of them (the dashboard and history used to
    drop both, so an owner lost Share by looking at the dashboard)."""
    expected = {
        "owner": {"share-link", "internal-link"},
        "vendor_member": {"internal-link"},
        "customer_member": set(),
        "link_editor": set(),
    }
    for caller, links in expected.items():
        client = world.callers[caller].client
        # A link visitor sees the history only through a link created with "history": true.
        tabs = ("", "/dashboard") if caller.startswith("link") else ("", "/dashboard", "/history")
        for tab in tabs:
            page = client.get(f"/plans/{world.plan}{tab}")
            assert page.status_code == 200, (caller, tab)
            shown = {i for i in ("share-link", "internal-link") if f'id="{i}"' in page.text}
            assert shown == links, (caller, tab)


def test_csrf_is_required_for_cookie_state_changes(world: World) -> None:
    owner = world.callers["owner"]
    r = owner.client.post(f"/api/plans/{world.plan}/links", json={"role": "viewer"})
    assert r.status_code == 403
    r = owner.client.post(f"/plans/{world.plan}/share", data={"action": "link", "role": "viewer"})
    assert r.status_code == 403
    r = owner.client.post("/", data={"title": "x", "customer": "y"})
    assert r.status_code == 403
    r = owner.client.post(
        f"/api/plans/{world.plan}/links",
        json={"role": "viewer"},
        headers={"X-CSRF-Token": owner.csrf},
    )
    assert r.status_code == 201


def test_presence_names_come_from_the_server(world: World) -> None:
    async def scenario() -> None:
        url = (
            f"{world.server.ws}/{world.plan}?token={world.links['viewer']['token']}&name=Honest+Hal"
        )
        observer_url = f"{world.server.ws}/{world.plan}?token={world.owner_token}"
        async with websockets.connect(observer_url) as observer, websockets.connect(url) as ws:
            await ws.recv()
            state = json.dumps({"user": {"name": "The CEO", "color": "#000"}})
            await ws.send(awareness_frame([(42, 1, state)]))
            async with asyncio.timeout(5):
                while True:
                    frame = await observer.recv()
                    if frame[:1] == b"\x01":
                        entries = parse_awareness(frame)
                        if any(client == 42 for client, _, _ in entries):
                            break
            names = [json.loads(st)["user"]["name"] for c, _, st in entries if c == 42]
            assert names == ["Honest Hal"]

    asyncio.run(scenario())


def test_presence_names_each_person_once_whatever_they_claim(world: World) -> None:
    """An account's tabs share one server-made person key (so the strip lists them once);
    another account, another key; a visitor through a link none; claimed keys are replaced."""
    second_plan = world.server.create_plan(world.owner_token, "Second plan", "Acme")
    cora, olive = world.callers["api_token"].token, world.owner_token
    claim = json.dumps({"user": {"name": "x", "color": "#000", "person": "forged", "guest": False}})

    async def presence(plan: str, observer: str, senders: dict[int, str]) -> dict[int, dict]:
        """Each sender (client id -> token) sends ``claim``; the ``user`` the observer gets."""
        base = f"{world.server.ws}/{plan}"
        async with websockets.connect(f"{base}?token={observer}") as watch:
            sockets = [await websockets.connect(f"{base}?token={t}") for t in senders.values()]
            try:
                for client, ws in zip(senders, sockets, strict=True):
                    await ws.recv()
                    await ws.send(awareness_frame([(client, 1, claim)]))
                seen: dict[int, dict] = {}
                async with asyncio.timeout(5):
                    while len(seen) < len(senders):
                        frame = await watch.recv()
                        for c, _, st in parse_awareness(frame) if frame[:1] == b"\x01" else []:
                            if c in senders and st != "null":
                                seen[c] = json.loads(st)["user"]
                return seen
            finally:
                for ws in sockets:
                    await ws.close()

    async def scenario() -> None:
        link = f"{world.links['editor']['token']}&name=Ed+Editor"
        seen = await presence(world.plan, cora, {1: olive, 2: olive, 3: link})
        assert seen[1]["name"] == seen[2]["name"] == "Olive Owner"
        key = seen[1]["person"]
        assert seen[2]["person"] == key and re.fullmatch(r"[0-9a-f]{12}", key)
        # A visitor: no key, and a guest whatever they claimed.
        assert seen[3] == {"name": "Ed Editor", "color": "#000", "guest": True}
        assert seen[1]["guest"] is False
        # Another account, another key; the same account on another plan, another key.
        other = (await presence(world.plan, olive, {4: cora}))[4]
        assert other["name"] == "Cora Customer" and other["person"] not in (key, "forged")
        elsewhere = (await presence(second_plan, olive, {5: olive}))[5]
        assert elsewhere["name"] == "Olive Owner" and elsewhere["person"] not in (key, "forged")

    asyncio.run(scenario())


def test_viewer_page_is_read_only_and_plan_list_is_members_only(world: World) -> None:
    viewer = world.callers["link_viewer"].client
    page = viewer.get(f"/plans/{world.plan}")
    assert page.status_code == 200
    assert '"readOnly": true' in page.text
    editor = world.callers["customer_member"].client
    assert '"readOnly": false' in editor.get(f"/plans/{world.plan}").text
    stranger = sign_in(world.server, "stranger@elsewhere.example")
    listing = stranger.client.get("/")
    assert "Shared plan" not in listing.text and "Someone else" in listing.text
    stranger.client.close()


def test_role_and_side_changes_apply_to_open_connections(world: World) -> None:
    owner = world.callers["owner_api"].client
    invite_and_join(
        world.server, owner, world.plan, "dan@vendor.example", "Dan Demoted", "editor", "vendor"
    )
    token = world.server.create_token("dan@vendor.example")
    members = owner.get(f"/api/plans/{world.plan}/members").json()["members"]
    dan = next(m for m in members if m["email"] == "dan@vendor.example")
    member_url = f"/api/plans/{world.plan}/members/{dan['user_id']}"

    async def scenario() -> None:
        base = f"{world.server.ws}/{world.plan}"
        async with (
            websockets.connect(f"{base}?token={token}") as shared,
            websockets.connect(f"{base}/internal?token={token}") as internal,
        ):
            await shared.recv()
            await internal.recv()
            r = await asyncio.to_thread(
                owner.patch, member_url, json={"role": "viewer", "side": "vendor"}
            )
            assert r.status_code == 200
            assert await _closed_within(shared, 5) == 4405
            assert await _closed_within(internal, 5) == 4405
        # A member's side follows the account kind: staff cannot be moved to the customer
        # side; making the account a guest moves it, and closes the internal plan at once.
        r = owner.patch(member_url, json={"role": "viewer", "side": "customer"})
        assert r.status_code == 409 and "staff" in r.json()["error"]
        async with websockets.connect(f"{base}/internal?token={token}") as internal:
            await internal.recv()
            r = await asyncio.to_thread(
                owner.patch, f"/api/workspace/people/{dan['user_id']}", json={"staff": False}
            )
            assert r.status_code == 200, r.text
            assert await _closed_within(internal, 5) == 4403
        async with websockets.connect(f"{base}/internal?token={token}") as internal:
            assert await _closed_within(internal, 5) == 4403
        async with connect(world.server.ws, world.plan, token) as (doc, _):
            add_paragraph(doc, "edit after demotion")
            await asyncio.sleep(0.5)

    asyncio.run(scenario())
    assert "edit after demotion" not in markdown(world)
    # The last owner cannot be demoted or removed.
    owners = [m for m in members if m["role"] == "owner"]
    r = owner.patch(
        f"/api/plans/{world.plan}/members/{owners[0]['user_id']}",
        json={"role": "editor", "side": "vendor"},
    )
    assert r.status_code == 409
    assert (
        owner.delete(f"/api/plans/{world.plan}/members/{owners[0]['user_id']}").status_code == 409
    )


def test_cookie_sockets_from_another_origin_are_refused(world: World) -> None:
    for name in ("owner", "link_viewer"):
        cookie = world.callers[name].cookie_header()

        async def go(query: str, cookie: str = cookie) -> int | None:
            url = f"{world.server.ws}/{world.plan}{query}"
            headers = {"Origin": "https://evil.example", "Cookie": cookie}
            async with websockets.connect(url, additional_headers=headers) as ws:
                return await _closed_within(ws, 5)

        assert asyncio.run(go("")) == 4403, name
        # A junk ?token= must not switch the origin check off for the cookie behind it.
        assert asyncio.run(go("?token=junk")) in (4401, 4403), name

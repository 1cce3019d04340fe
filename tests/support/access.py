"""A plan with every kind of caller, made the way users make them: forms, the API, share links."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import httpx

from tests.support.servers import Server

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Caller:
    name: str
    client: httpx.Client
    csrf: str | None = None
    token: str | None = None  # an API token (sent as a bearer header, or ?token= on sockets)
    headers: dict[str, str] = field(default_factory=dict)

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.client.cookies.jar)


def sign_in(server: Server, email: str) -> Caller:
    client = httpx.Client(base_url=server.http, follow_redirects=False)
    r = client.post("/login", data={"email": email, "password": PASSWORD, "next": "/"})
    assert r.status_code == 303, r.text
    page = client.get("/")
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found
    return Caller(email, client, csrf=found.group(1))


def api(server: Server, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.http, headers={"Authorization": f"Bearer {token}"}, follow_redirects=False
    )


def create_link(owner: httpx.Client, plan_id: str, **body: object) -> dict:
    r = owner.post(f"/api/plans/{plan_id}/links", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def visit(server: Server, url: str, name: str) -> Caller:
    """A stakeholder opening a share link in a fresh client and giving their name."""
    client = httpx.Client(base_url=server.http, follow_redirects=False)
    path = url.split("://", 1)[1].split("/", 1)[1]
    r = client.post("/" + path, data={"step": "name", "name": name})
    assert r.status_code == 303, r.text
    return Caller(name, client)


def invite_and_join(
    server: Server, owner: httpx.Client, plan_id: str, email: str, name: str, role: str, side: str
) -> None:
    r = owner.post(
        f"/api/plans/{plan_id}/members", json={"email": email, "role": role, "side": side}
    )
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    with httpx.Client(base_url=server.http, follow_redirects=False) as c:
        done = c.post(path, data={"name": name, "password": PASSWORD, "confirm": PASSWORD})
        assert done.status_code == 303, done.text


@dataclass
class World:
    server: Server
    plan: str
    other_plan: str
    owner_token: str
    callers: dict[str, Caller]
    links: dict[str, dict]

    def close(self) -> None:
        for caller in self.callers.values():
            caller.client.close()


def build_world(server: Server) -> World:
    server.create_user("owner@vendor.example", "Olive Owner", PASSWORD)
    server.create_user("stranger@elsewhere.example", "Sam Stranger", PASSWORD)
    owner_token = server.create_token("owner@vendor.example")
    stranger_token = server.create_token("stranger@elsewhere.example")
    owner = api(server, owner_token)
    plan = server.create_plan(owner_token, "Shared plan", "Acme")
    callers: dict[str, Caller] = {"owner_api": Caller("owner_api", owner, token=owner_token)}
    other_plan = server.create_plan(stranger_token, "Someone else's plan", "Globex")
    invite_and_join(server, owner, plan, "vera@vendor.example", "Vera Vendor", "editor", "vendor")
    invite_and_join(
        server, owner, plan, "cora@customer.example", "Cora Customer", "editor", "customer"
    )
    viewer_link = create_link(owner, plan, role="viewer", label="Board")
    editor_link = create_link(owner, plan, role="editor", label="Working group")
    callers |= {
        "anonymous": Caller(
            "anonymous", httpx.Client(base_url=server.http, follow_redirects=False)
        ),
        "wrong_plan": sign_in(server, "stranger@elsewhere.example"),
        "link_viewer": visit(server, viewer_link["url"], "Lee Viewer"),
        "link_editor": visit(server, editor_link["url"], "Ed Editor"),
        "customer_member": sign_in(server, "cora@customer.example"),
        "vendor_member": sign_in(server, "vera@vendor.example"),
        "owner": sign_in(server, "owner@vendor.example"),
    }
    cora_token = server.create_token("cora@customer.example")
    callers["api_token"] = Caller("api_token", api(server, cora_token), token=cora_token)
    return World(
        server,
        plan,
        other_plan,
        owner_token,
        callers,
        {"viewer": viewer_link, "editor": editor_link},
    )

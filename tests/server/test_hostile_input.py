"""Hostile input: script payloads stay inert, rate limits, size limits, headers and cookies."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.access import PASSWORD, api, create_link, sign_in, visit
from tests.support.servers import Database, Server
from tests.support.yclient import add_paragraph, connect

SCRIPT = "<script>alert('xss')</script>"
IMG = '"><img src=x onerror=alert(1)>'
PAYLOAD = SCRIPT + IMG
RAW = ["<script>alert", "<img src=x", "onerror=alert(1)>"]


@pytest.fixture
def hostile_server(database: Database, tmp_path: Path) -> Iterator[Server]:
    srv = Server(
        data_dir=tmp_path,
        database_url=database.url,
        extra_env={
            "TANDEM_WS_CONNECTS_PER_MINUTE": "6",
            "TANDEM_SIGNIN_PER_MINUTE": "3",
            "TANDEM_EMBED_ALLOWED_ORIGINS": "https://*.lightning.force.com https://*.my.salesforce.com",
            "TANDEM_MAX_FRAME_BYTES": "65536",
        },
    ).start()
    yield srv
    srv.stop()


def assert_inert(html: str, where: str) -> None:
    lowered = html.lower()
    for raw in RAW:
        assert raw.lower() not in lowered, f"{raw!r} rendered raw on {where}"


def test_script_payloads_stay_inert_on_every_page(hostile_server: Server) -> None:
    srv = hostile_server
    srv.create_user("owner@vendor.example", "Owner " + PAYLOAD, PASSWORD)
    token = srv.create_token("owner@vendor.example")
    plan = srv.create_plan(token, "Plan " + PAYLOAD, "Customer " + PAYLOAD)
    owner_api = api(srv, token)
    link = create_link(owner_api, plan, role="editor", label="Label " + PAYLOAD)
    invite = owner_api.post(
        f"/api/plans/{plan}/members",
        json={"email": "new@customer.example", "role": "editor", "side": "customer"},
    ).json()

    async def write() -> None:
        async with connect(srv.ws, plan, token) as (doc, _):
            add_paragraph(doc, "Text " + PAYLOAD)
            await asyncio.sleep(0.5)

    asyncio.run(write())
    # Names are trimmed to printable text but otherwise kept: presence shows what people typed.
    guest = visit(srv, link["url"], "Guest " + PAYLOAD)
    owner = sign_in(srv, "owner@vendor.example")
    pages = {
        "plan list": owner.client.get("/"),
        "plan": owner.client.get(f"/plans/{plan}"),
        "internal plan": owner.client.get(f"/plans/{plan}/internal"),
        "share": owner.client.get(f"/plans/{plan}/share"),
        "access log": owner.client.get(f"/plans/{plan}/access"),
        "visitor's plan": guest.client.get(f"/plans/{plan}"),
        "link landing": guest.client.get("/s/" + link["token"]),
        "invite": httpx.get(invite["url"]),
        "share error": owner.client.post(
            f"/plans/{plan}/share",
            data={
                "csrf": owner.csrf,
                "action": "invite",
                "email": PAYLOAD,
                "role": "editor",
                "side": "customer",
            },
        ),
        "login error": httpx.post(f"{srv.http}/login", data={"email": PAYLOAD, "password": "x"}),
    }
    for where, response in pages.items():
        assert response.status_code < 500, where
        assert_inert(response.text, where)
    assert "Plan &lt;script&gt;" in pages["plan list"].text
    assert "\\u003cscript\\u003e" in pages["plan"].text  # the page config, escaped for <script>
    for path in ("/document", "/document?format=markdown"):
        r = owner_api.get(f"/api/plans/{plan}{path}")
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["content-type"].split(";")[0] in ("application/json", "text/markdown")
    for c in (guest.client, owner.client, owner_api):
        c.close()


def test_rate_limits_on_sign_in_and_sockets(hostile_server: Server) -> None:
    srv = hostile_server
    srv.create_user("owner@vendor.example", "Olive", PASSWORD)
    codes = [
        httpx.post(
            f"{srv.http}/login", data={"email": "owner@vendor.example", "password": "wrong"}
        ).status_code
        for _ in range(5)
    ]
    assert codes[:3] == [401, 401, 401] and codes[-1] == 429
    # Even the right password waits out the limit.
    r = httpx.post(
        f"{srv.http}/login", data={"email": "owner@vendor.example", "password": PASSWORD}
    )
    assert r.status_code == 429 and "retry-after" in r.headers
    token = srv.create_token("owner@vendor.example")
    plan = srv.create_plan(token)

    async def connects() -> list[int | None]:
        out = []
        for _ in range(8):
            async with websockets.connect(f"{srv.ws}/{plan}") as ws:  # unauthenticated
                try:
                    await asyncio.wait_for(ws.recv(), 5)
                except websockets.ConnectionClosed as exc:
                    out.append(exc.rcvd.code if exc.rcvd else None)
        return out

    closes = asyncio.run(connects())
    assert closes[0] == 4401 and closes[-1] == 4429
    with api(srv, token) as owner_api:
        events = owner_api.get(f"/api/plans/{plan}/access-log").json()["events"]
    assert any(e["kind"] == "signin.failed" for e in events)


def test_frame_and_request_size_limits(hostile_server: Server) -> None:
    srv = hostile_server
    srv.create_user("owner@vendor.example", "Olive", PASSWORD)
    token = srv.create_token("owner@vendor.example")
    plan = srv.create_plan(token)
    r = httpx.post(
        f"{srv.http}/api/plans",
        content=b"x" * (2 * 1024 * 1024),
        headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    assert r.status_code == 413

    async def big_frame() -> int | None:
        async with websockets.connect(f"{srv.ws}/{plan}?token={token}", max_size=None) as ws:
            await ws.recv()
            await ws.send(b"\x00\x02" + b"\x00" * 70_000)
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            except websockets.ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else None

    assert asyncio.run(big_frame()) == 4413


def test_security_headers_embed_framing_and_cookies(hostile_server: Server, tmp_path: Path) -> None:
    # Behind HTTPS (TANDEM_SECURE_COOKIES): the embed's cookie must work in a third-party iframe.
    (tmp_path / "https").mkdir()
    srv = Server(
        data_dir=tmp_path / "https",
        database_url=f"sqlite:///{tmp_path / 'https' / 'tandem.db'}",
        extra_env={**hostile_server.extra_env, "TANDEM_SECURE_COOKIES": "true"},
    ).start()
    try:
        _check_headers(srv)
    finally:
        srv.stop()


def _check_headers(srv: Server) -> None:
    srv.create_user("owner@vendor.example", "Olive", PASSWORD)
    token = srv.create_token("owner@vendor.example")
    plan = srv.create_plan(token)
    owner_api = api(srv, token)
    embed = owner_api.post(f"/api/plans/{plan}/embeds", json={"role": "viewer"}).json()
    page = httpx.get(embed["url"] + "?name=Casey+from+Salesforce")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors https://*.lightning.force.com https://*.my.salesforce.com;" in csp
    assert "x-frame-options" not in page.headers
    cookie = page.headers["set-cookie"]
    assert f"tandem_v_{plan}=" in cookie and "SameSite=none" in cookie and "Secure" in cookie
    assert '"readOnly": true' in page.text and "Casey from Salesforce" in page.text
    for path in ("/login", f"/plans/{plan}", "/api/plans", "/healthz", "/s/nothing"):
        r = httpx.get(srv.http + path, headers={"Authorization": f"Bearer {token}"})
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
        assert "strict-transport-security" in r.headers
    owner_api.close()

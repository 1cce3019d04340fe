"""Tampered, expired, revoked, wrong-plan and wrong-purpose tokens of every kind are rejected."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
import websockets
from itsdangerous import TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer

from server.identity.tokens import LIFETIMES, PURPOSES
from tests.support.access import PASSWORD, World, create_link, sign_in

SECRET = "test-secret-key-not-for-production"


class _OldSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 400 * 86400


class _Old(URLSafeTimedSerializer):
    """Signs as if 400 days ago: past every token's lifetime."""

    default_signer = _OldSigner


def forge(purpose: str, value: object, *, old: bool = False, secret: str = SECRET) -> str:
    salt, prefix = PURPOSES[purpose]
    cls = _Old if old else URLSafeTimedSerializer
    return prefix + cls(secret, salt=salt).dumps(value)


def tamper(token: str) -> str:
    i = len(token) // 2
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


def ws_close(world: World, path: str, headers: dict | None = None) -> int | None:
    async def go() -> int | None:
        url = world.server.ws.rsplit("/ws/plans", 1)[0] + path
        async with websockets.connect(url, additional_headers=headers or {}) as ws:
            try:
                async with asyncio.timeout(5):
                    while True:
                        await ws.recv()
            except websockets.ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else None

    return asyncio.run(go())


def anon(world: World) -> httpx.Client:
    return httpx.Client(base_url=world.server.http, follow_redirects=False)


def test_share_link_tokens(world: World) -> None:
    owner = world.callers["owner_api"].client
    link = create_link(owner, world.plan, role="viewer", label="to break")
    token = link["token"]
    link_id = link["id"]
    bad = {
        "tampered": tamper(token),
        "other secret": forge("link", [link_id, world.plan], secret="not-our-secret"),
        "expired signature": forge("link", [link_id, world.plan], old=True),
        "wrong plan": forge("link", [link_id, world.other_plan]),
        "wrong purpose (embed)": forge("embed", [link_id, world.plan]),
        "wrong purpose (invite)": forge("invite", [link_id, world.plan]),
        "unknown link": forge("link", ["0000000000000000", world.plan]),
    }
    with anon(world) as c:
        assert c.get(f"/s/{token}").status_code == 200
        for why, t in bad.items():
            assert c.get(f"/s/{t}").status_code == 404, why
            assert c.post(f"/s/{t}", data={"name": "x"}).status_code == 404, why
            assert ws_close(world, f"/ws/plans/{world.plan}?token={t}") in (4401, 4404), why
        # A link for this plan opens nothing else.
        assert ws_close(world, f"/ws/plans/{world.other_plan}?token={token}") == 4401
        assert owner.delete(f"/api/plans/{world.plan}/links/{link_id}").status_code == 204
        assert c.get(f"/s/{token}").status_code == 404
        assert ws_close(world, f"/ws/plans/{world.plan}?token={token}") == 4401


def test_link_expires_by_its_row(world: World) -> None:
    owner = world.callers["owner_api"].client
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    link = create_link(owner, world.plan, role="editor", expires_at=soon)
    with anon(world) as c:
        assert c.get(f"/s/{link['token']}").status_code == 200
        time.sleep(2.5)
        assert c.get(f"/s/{link['token']}").status_code == 404
    assert ws_close(world, f"/ws/plans/{world.plan}?token={link['token']}") == 4401
    bad = owner.post(
        f"/api/plans/{world.plan}/links",
        json={"role": "viewer", "expires_at": "2001-01-01T00:00:00Z"},
    )
    assert bad.status_code == 400
    bad = owner.post(f"/api/plans/{world.plan}/links", json={"role": "owner"})
    assert bad.status_code == 400


def test_visit_cookie_is_for_one_plan(world: World) -> None:
    visitor = world.callers["link_editor"]
    value = visitor.client.cookies.get(f"tandem_v_{world.plan}")
    assert value
    with anon(world) as c:
        c.cookies.set(f"tandem_v_{world.other_plan}", value)
        assert c.get(f"/plans/{world.other_plan}").status_code == 303
        c.cookies.set(f"tandem_v_{world.plan}", tamper(value))
        assert c.get(f"/plans/{world.plan}").status_code == 303
        c.cookies.set(
            f"tandem_v_{world.plan}",
            forge(
                "visit", ["v", world.links["editor"]["id"], world.plan, "Mallory", None], old=True
            ),
        )
        assert c.get(f"/plans/{world.plan}").status_code == 303
    # Used as a session cookie, a visit token is nothing.
    with anon(world) as c:
        c.cookies.set("tandem_session", value)
        assert c.get("/api/plans").status_code == 401


def forge_aged(purpose: str, value: object, days: float) -> str:
    class Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - days * 86400)

    class Serializer(URLSafeTimedSerializer):
        default_signer = Signer

    salt, prefix = PURPOSES[purpose]
    return prefix + Serializer(SECRET, salt=salt).dumps(value)


def test_visit_cookie_is_honoured_for_its_own_age_only(world: World) -> None:
    # It says 7 days (VISIT_DAYS) but was read with the 366-day ceiling of every token.
    for kind in ("viewer", "editor"):
        link_id = world.links[kind]["id"]
        cookie = f"tandem_v_{world.plan}"
        value = ["v", link_id, world.plan, "Mallory", None]
        with anon(world) as c:
            c.cookies.set(cookie, forge_aged("visit", value, 6.9))
            assert c.get(f"/plans/{world.plan}").status_code == 200, kind
            c.cookies.set(cookie, forge_aged("visit", value, 7.1))
            assert c.get(f"/plans/{world.plan}").status_code == 303, kind
        headers = {
            "Cookie": f"{cookie}={forge_aged('visit', value, 7.1)}",
            "Origin": world.server.http,
        }
        assert ws_close(world, f"/ws/plans/{world.plan}", headers) == 4401, kind


def test_embed_tokens(world: World) -> None:
    owner = world.callers["owner_api"].client
    r = owner.post(f"/api/plans/{world.plan}/embeds", json={"role": "viewer", "label": "CRM"})
    assert r.status_code == 201
    embed = r.json()
    with anon(world) as c:
        assert c.get(f"/embed/{embed['token']}").status_code == 200
        for t in (
            tamper(embed["token"]),
            forge("embed", [embed["id"], world.plan], old=True),
            forge("link", [embed["id"], world.plan]),
            forge("embed", [embed["id"], world.other_plan]),
            world.links["viewer"]["token"],
        ):
            assert c.get(f"/embed/{t}").status_code == 404
        # An embed token is not a share link.
        assert c.get(f"/s/{embed['token']}").status_code == 404
        assert owner.delete(f"/api/plans/{world.plan}/links/{embed['id']}").status_code == 204
        assert c.get(f"/embed/{embed['token']}").status_code == 404


def test_invite_tokens(world: World) -> None:
    owner = world.callers["owner_api"].client
    r = owner.post(
        f"/api/plans/{world.plan}/members",
        json={"email": "ivy@customer.example", "role": "viewer", "side": "customer"},
    )
    assert r.status_code == 201
    url = r.json()["url"]
    token = url.rsplit("/", 1)[1]
    invite_id = r.json()["id"]
    with anon(world) as c:
        for t in (
            tamper(token),
            forge("invite", [invite_id, world.plan], old=True),
            forge("invite", [invite_id, world.other_plan]),
            forge("link", [invite_id, world.plan]),
        ):
            assert c.get(f"/invite/{t}").status_code == 404
        form = {"name": "Ivy", "password": PASSWORD, "confirm": PASSWORD}
        assert c.post(f"/invite/{token}", data=form).status_code == 303
    with anon(world) as c:  # single use
        assert c.get(f"/invite/{token}").status_code == 410
        assert c.post(f"/invite/{token}", data=form).status_code == 410
    # Revoked before use.
    r = owner.post(
        f"/api/plans/{world.plan}/members",
        json={"email": "rae@customer.example", "role": "viewer", "side": "customer"},
    )
    token2 = r.json()["url"].rsplit("/", 1)[1]
    owner_page = world.callers["owner"]
    owner_page.client.post(
        f"/plans/{world.plan}/share",
        data={"csrf": owner_page.csrf, "action": "revoke-invite", "invite_id": r.json()["id"]},
    )
    with anon(world) as c:
        assert c.get(f"/invite/{token2}").status_code == 410


def test_session_cookies(world: World) -> None:
    caller = sign_in(world.server, "vera@vendor.example")
    cookie = caller.client.cookies.get("tandem_session")
    sid = URLSafeTimedSerializer(SECRET, salt="tandem.session").loads(cookie)
    cases = {
        "tampered": tamper(cookie),
        "expired": _Old(SECRET, salt="tandem.session").dumps(sid),
        "wrong purpose": forge("visit", sid)[4:],
        "other secret": URLSafeTimedSerializer("nope", salt="tandem.session").dumps(sid),
    }
    for why, value in cases.items():
        with anon(world) as c:
            c.cookies.set("tandem_session", value)
            assert c.get("/api/plans").status_code == 401, why
            assert (
                ws_close(world, f"/ws/plans/{world.plan}", {"Cookie": f"tandem_session={value}"})
                == 4401
            ), why
    # Revoked: signing out ends the session server-side, even for a copied cookie.
    assert caller.client.get("/api/plans").status_code == 200
    caller.client.post("/logout", data={"csrf": caller.csrf})
    with anon(world) as c:
        c.cookies.set("tandem_session", cookie)
        assert c.get("/api/plans").status_code == 401
    caller.client.close()


def test_api_tokens(world: World, backend: str) -> None:
    token = world.server.create_token("cora@customer.example")
    good = {"Authorization": f"Bearer {token}"}
    with anon(world) as c:
        assert c.get("/api/plans", headers=good).status_code == 200
        for t in (
            tamper(token),
            "tdm_" + forge("link", ["x", "y"])[4:],
            world.links["viewer"]["token"],
        ):
            assert c.get("/api/plans", headers={"Authorization": f"Bearer {t}"}).status_code == 401
        token_id = URLSafeSerializer(SECRET, salt="tandem.api-token").loads(token[4:])[0]
        # Expired: the row says so.
        engine = sa.create_engine(
            world.server.database_url.replace("postgresql://", "postgresql+psycopg://")
        )
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE api_tokens SET expires_at = :t WHERE id = :i"),
                {"t": datetime.now(UTC) - timedelta(days=1), "i": token_id},
            )
        engine.dispose()
        assert c.get("/api/plans", headers=good).status_code == 401
    token2 = world.server.create_token("cora@customer.example")
    token2_id = URLSafeSerializer(SECRET, salt="tandem.api-token").loads(token2[4:])[0]
    assert world.server.cli("tokens", "revoke", token2_id).returncode == 0
    with anon(world) as c:
        assert c.get("/api/plans", headers={"Authorization": f"Bearer {token2}"}).status_code == 401
    assert ws_close(world, f"/ws/plans/{world.plan}?token={token2}") == 4401


@pytest.mark.parametrize("purpose", sorted(PURPOSES))
def test_every_purpose_has_its_own_salt_and_prefix(purpose: str) -> None:
    salts = [s for s, _ in PURPOSES.values()]
    prefixes = [p for _, p in PURPOSES.values()]
    assert len(set(salts)) == len(salts) and len(set(prefixes)) == len(prefixes)
    assert PURPOSES[purpose][0] not in ("tandem.session", "tandem.api-token")


def test_every_token_purpose_has_its_own_lifetime() -> None:
    """A purpose without a lifetime made every link of that kind answer 500."""
    assert set(LIFETIMES) == set(PURPOSES)

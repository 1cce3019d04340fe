"""Login CSRF and its kin: a form posted from another site changes nothing and sets no cookie.

Browsers send Origin with every cross-site POST (``null`` from sandboxes and no-referrer
pages); without it the Referer decides; a request with neither comes from no browser.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.access import PASSWORD, World, sign_in
from tests.support.servers import Server

EVIL = [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Referer": "https://evil.example/page"},
    {"Origin": "https://evil.example", "Referer": "HERE/login"},
]


INVITEES = itertools.count()


def fresh(world: World) -> httpx.Client:
    return httpx.Client(base_url=world.server.http, follow_redirects=False)


def forms(world: World) -> dict[str, Callable[[httpx.Client, dict[str, str]], httpx.Response]]:
    """Each unauthenticated form, posted as a stranger's browser would post it."""
    owner = world.callers["owner_api"].client

    def invitation(c: httpx.Client, headers: dict[str, str]) -> httpx.Response:
        r = owner.post(
            f"/api/plans/{world.plan}/members",
            json={
                "email": f"new{next(INVITEES)}@customer.example",
                "role": "viewer",
                "side": "customer",
            },
        )
        assert r.status_code == 201, r.text
        path = "/invite/" + r.json()["url"].rsplit("/invite/", 1)[1]
        body = {"name": "Mallory", "password": PASSWORD, "confirm": PASSWORD}
        return c.post(path, data=body, headers=headers)

    link = "/s/" + world.links["editor"]["token"]
    return {
        "login": lambda c, h: c.post(
            "/login",
            data={"email": "owner@vendor.example", "password": PASSWORD, "next": "/"},
            headers=h,
        ),
        "share link name": lambda c, h: c.post(
            link, data={"step": "name", "name": "Mallory"}, headers=h
        ),
        "invitation": invitation,
    }


@pytest.mark.parametrize("headers", EVIL, ids=["origin", "null origin", "referer", "both"])
def test_unauthenticated_forms_from_another_site_are_refused(
    world: World, headers: dict[str, str]
) -> None:
    headers = {k: v.replace("HERE", world.server.http) for k, v in headers.items()}
    for name, post in forms(world).items():
        with fresh(world) as c:
            r = post(c, headers)
            assert r.status_code == 403, name
            assert "another site" in r.text, name
            assert "set-cookie" not in r.headers, name


@pytest.mark.parametrize(
    "headers", [{}, {"Origin": "ORIGIN"}, {"Referer": "ORIGIN/login?next=/"}], ids=str
)
def test_the_same_forms_from_this_site_or_no_browser_work(
    world: World, headers: dict[str, str]
) -> None:
    headers = {k: v.replace("ORIGIN", world.server.http) for k, v in headers.items()}
    for name, post in forms(world).items():
        with fresh(world) as c:
            r = post(c, headers)
            assert r.status_code == 303, (name, r.text)
            assert "set-cookie" in r.headers, name


def test_signed_in_forms_and_sign_out_from_another_site_are_refused(world: World) -> None:
    owner = sign_in(world.server, "owner@vendor.example")
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}):
        r = owner.client.post(
            f"/plans/{world.plan}/share",
            data={"csrf": owner.csrf, "action": "link", "role": "editor", "days": "30"},
            headers=headers,
        )
        assert r.status_code == 403
        r = owner.client.post("/logout", data={"csrf": owner.csrf}, headers=headers)
        assert r.status_code == 403
        assert owner.client.get("/").status_code == 200  # still signed in
    r = owner.client.post(
        "/logout", data={"csrf": owner.csrf}, headers={"Origin": world.server.http}
    )
    assert r.status_code == 303
    owner.client.close()


def test_bearer_token_calls_are_not_origin_checked(world: World) -> None:
    token = world.owner_token
    r = httpx.post(
        f"{world.server.http}/api/plans",
        json={"title": "From a CRM", "customer": "Acme"},
        headers={"Authorization": f"Bearer {token}", "Origin": "https://crm.example"},
    )
    assert r.status_code == 201, r.text


def test_setup_from_another_site_is_refused(tmp_path: Path) -> None:
    srv = Server(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'tandem.db'}").start()
    try:
        body = {"name": "Mallory", "email": "m@evil.example", "password": "x" * 12}
        body["confirm"] = body["password"]
        with httpx.Client(base_url=srv.http, follow_redirects=False) as c:
            r = c.post("/setup", data=body, headers={"Origin": "https://evil.example"})
            assert r.status_code == 403 and "set-cookie" not in r.headers
            assert c.get("/setup").status_code == 200  # still no owner
            r = c.post("/setup", data=body, headers={"Origin": srv.http})
            assert r.status_code == 303 and "set-cookie" in r.headers
    finally:
        srv.stop()

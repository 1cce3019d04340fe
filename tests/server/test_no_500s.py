"""Input that was answered with a 500: huge and non-ASCII integers, lone surrogates; and the 500
page itself, which carried none of the security headers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.support.access import PASSWORD, World, sign_in
from tests.support.servers import Server

HUGE = "9" * 30
NUMBERS = [HUGE, "2147483648", "²", "١", "-1", "0", "1e3", "0x1"]


def json_error(r: httpx.Response, status: int, field: str | None = None) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.text
    body = r.json()
    if field is not None:
        assert body.get("field") == field, body
    return body["error"]


@pytest.mark.parametrize("number", NUMBERS)
def test_integer_path_query_form_and_json_ids(world: World, number: str) -> None:
    owner = world.callers["owner_api"].client
    plan = world.plan
    member = f"/api/plans/{plan}/members/{number}"
    json_error(owner.patch(member, json={"role": "viewer", "side": "vendor"}), 404)
    json_error(owner.delete(member), 404)
    json_error(owner.get(f"/api/plans/{plan}/audit", params={"before": number}), 400, "before")
    json_error(owner.get(f"/api/plans/{plan}/audit", params={"limit": number}), 400, "limit")
    patch = owner.patch(
        f"/api/plans/{plan}/tasks/no-such-task",
        json={"owner": {"id": f"user:{number}", "label": "X"}},
    )
    json_error(patch, 400, "owner")
    browser = world.callers["owner"]
    for action in ("member", "remove"):
        r = browser.client.post(
            f"/plans/{plan}/share",
            data={"csrf": browser.csrf, "action": action, "user_id": number, "role": "viewer"},
        )
        assert r.status_code == 400, r.text
        assert "no such member" in r.text


def test_in_range_integers_still_work(world: World) -> None:
    owner = world.callers["owner_api"].client
    r = owner.get(f"/api/plans/{world.plan}/audit", params={"before": "2147483647", "limit": "5"})
    assert r.status_code == 200, r.text
    json_error(owner.delete(f"/api/plans/{world.plan}/members/2147483647"), 404)


LONE = '"x\\ud800y"'  # JSON text: decodes to a str no database or encoder accepts


@pytest.mark.parametrize(
    ("path", "method", "body", "field"),
    [
        ("/api/plans", "POST", '{"title": %s, "customer": "Acme"}', "title"),
        ("/api/plans", "POST", '{"title": "T", "customer": %s}', "customer"),
        ("/api/plans/{plan}/links", "POST", '{"role": "viewer", "label": %s}', "label"),
        ("/api/plans/{plan}/members", "POST", '{"email": %s, "role": "editor"}', "email"),
        ("/api/plans/{plan}/status", "PUT", '{"rag": "red", "reason": %s}', "reason"),
        ("/api/plans/{plan}/save-as-template", "POST", '{"name": %s}', "name"),
        ("/api/plans/{plan}/tasks/t1", "PATCH", '{"owner": {"id": "name:a", "label": %s}}', None),
        ("/api/plans", "POST", '{"title": "T", "customer": "A", "x": [{"y": %s}]}', "x[0].y"),
    ],
)
def test_lone_surrogates_are_refused_naming_the_field(
    world: World, path: str, method: str, body: str, field: str | None
) -> None:
    owner = world.callers["owner_api"].client
    r = owner.request(
        method,
        path.format(plan=world.plan),
        content=(body % LONE).encode(),
        headers={"content-type": "application/json"},
    )
    error = json_error(r, 400, field)
    assert "surrogate" in error
    if field is None:
        assert r.json()["field"] == "owner.label"


def test_a_500_carries_the_security_headers(tmp_path: Path) -> None:
    # A database that breaks under a running server is a real 500 (nothing else is left that
    # makes one); the answer must still carry the headers every other answer does.
    db = tmp_path / "tandem.db"
    srv = Server(data_dir=tmp_path, database_url=f"sqlite:///{db}").start()
    try:
        srv.create_user("owner@vendor.example", "Olive", PASSWORD)
        owner = sign_in(srv, "owner@vendor.example")
        with sqlite3.connect(db) as broken:
            broken.execute("ALTER TABLE users RENAME TO users_gone")
        r = owner.client.get("/")
        assert r.status_code == 500
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        owner.client.close()
    finally:
        srv.stop()

"""GET /api/people: the workspace people offered as task owners (@mentions)."""

from __future__ import annotations

import httpx

from tests.support.servers import Server


def test_people_lists_workspace_users_for_signed_in_callers(server: Server, token: str) -> None:
    server.create_user("robin@customer.example", "Robin Customer")
    r = httpx.get(f"{server.http}/api/people", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    people = r.json()["people"]
    assert [(p["label"], p["email"], p["side"]) for p in people] == [
        ("Casey CSM", "csm@vendor.example", None),
        ("Robin Customer", "robin@customer.example", None),
    ]
    assert all(p["id"].startswith("user:") and p["id"][5:].isdigit() for p in people)
    assert len({p["id"] for p in people}) == 2


def test_people_needs_a_signed_in_caller(server: Server, token: str) -> None:
    assert httpx.get(f"{server.http}/api/people").status_code == 401
    bad = httpx.get(f"{server.http}/api/people", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert "error" in bad.json()

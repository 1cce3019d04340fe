"""GET /api/plans/{id}/people: the plan's members, offered as task owners (@mentions)."""

from __future__ import annotations

import httpx

from tests.support.servers import Server


def test_people_lists_the_plans_members_with_their_side(
    server: Server, token: str, plan_id: str
) -> None:
    server.create_user("robin@customer.example", "Robin Customer")  # in the workspace, not the plan
    r = httpx.get(
        f"{server.http}/api/plans/{plan_id}/people", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200, r.text
    people = r.json()["people"]
    assert [(p["label"], p["side"]) for p in people] == [("Casey CSM", "vendor")]
    assert people[0]["id"].startswith("user:") and people[0]["id"][5:].isdigit()
    # Nobody's address is handed out through the owner picker.
    assert all("email" not in p for p in people)


def test_people_is_for_people_in_the_plan(server: Server, token: str, plan_id: str) -> None:
    url = f"{server.http}/api/plans/{plan_id}/people"
    assert httpx.get(url).status_code == 401
    server.create_user("robin@customer.example", "Robin Customer")
    outsider = server.create_token("robin@customer.example")
    r = httpx.get(url, headers={"Authorization": f"Bearer {outsider}"})
    assert r.status_code == 404
    assert "error" in r.json()

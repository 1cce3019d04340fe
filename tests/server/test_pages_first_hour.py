"""Pages a new user meets: every refusal says what happened, in the product's own page."""

from __future__ import annotations

import re
from datetime import date

import httpx

from server.plan import summarise
from tests.support.access import World, create_link, visit


def test_unknown_addresses_get_a_styled_page_and_api_json(world: World) -> None:
    c = world.callers["owner"].client
    for path in ("/nowhere", "/invite/", "/plans/", "/static-nope/x"):
        r = c.get(path)
        assert r.status_code == 404, path
        assert "text/html" in r.headers["content-type"], path
        assert "There is no page at this address." in r.text
        assert re.search(r'href="/static/app-\w+\.css"', r.text), path  # the product's page, styled
    # Signed in, the page keeps the person's top bar; signed out, it has none.
    assert "Sign out" in r.text and "Olive Owner" in r.text and "/settings/notifications" in r.text
    anon = world.callers["anonymous"].client.get("/nowhere")
    assert anon.status_code == 404 and "Sign out" not in anon.text
    r = c.get("/api/nowhere")
    assert r.status_code == 404 and r.json() == {"error": "There is no page at this address."}
    r = c.delete("/login")
    assert r.status_code == 405 and "does not answer" in r.text


def test_signed_in_login_and_setup_go_to_the_plans(world: World) -> None:
    c = world.callers["owner"].client
    for path, where in (
        ("/login", "/"),
        ("/setup", "/"),
        (f"/login?next=/plans/{world.plan}", f"/plans/{world.plan}"),
    ):
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"] == where, path
    anon = world.callers["anonymous"].client
    assert anon.get("/login").status_code == 200
    assert anon.get("/setup").headers["location"] == "/login"


def test_a_customer_member_is_told_the_internal_plan_is_the_vendors(world: World) -> None:
    r = world.callers["customer_member"].client.get(f"/plans/{world.plan}/internal")
    assert r.status_code == 404
    assert "for the vendor team only" in r.text and "no plan with id" not in r.text
    assert "Sign out" in r.text  # refused, still signed in: the top bar stays
    # Someone with no part in the plan still learns nothing about it.
    r = world.callers["wrong_plan"].client.get(f"/plans/{world.plan}/internal")
    assert r.status_code == 404 and "no plan with id" in r.text
    assert "Sign out" in r.text and "Shared plan" not in r.text


def test_a_revoked_links_visitor_is_told_so_not_sent_to_sign_in(world: World) -> None:
    with httpx.Client(base_url=world.server.http) as owner_api:
        owner_api.headers["Authorization"] = f"Bearer {world.owner_token}"
        link = create_link(owner_api, world.plan, role="viewer", label="Soon gone")
        guest = visit(world.server, link["url"], "Gus Guest")
        assert guest.client.get(f"/plans/{world.plan}").status_code == 200
        assert owner_api.delete(f"/api/plans/{world.plan}/links/{link['id']}").status_code < 300
    r = guest.client.get(f"/plans/{world.plan}")
    assert r.status_code == 403 and "not valid any more" in r.text
    assert "location" not in r.headers
    guest.client.close()
    # Without a visit cookie, the sign-in page as before.
    r = world.callers["anonymous"].client.get(f"/plans/{world.plan}")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def _task(n: int, **kw: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": f"t_{n:010d}",
        "text": f"Task {n}",
        "owner_ref": None,
        "owner_label": None,
        "owner_side": None,
        "due": date(2026, 1, 1),  # overdue
        "status": "todo",
        "checked": False,
        "milestone": False,
        "section": [],
        "position": n,
    }
    return row | kw


def test_a_task_owned_by_a_bare_name_is_not_unassigned() -> None:
    tasks = [
        _task(1, owner_ref="name:Pat", owner_label="Pat"),
        _task(2),
        _task(3, owner_ref="user:1", owner_label="Ann", owner_side="vendor"),
    ]
    s = summarise(tasks, [], [], None, date(2026, 6, 1))
    assert [t["owner"]["label"] for t in s["overdue"]["unknown"]] == ["Pat"]
    assert [t["text"] for t in s["overdue"]["unassigned"]] == ["Task 2"]
    assert [t["owner"]["label"] for t in s["overdue"]["vendor"]] == ["Ann"]


def test_dashboard_without_milestones_says_so_and_access_log_uses_words(world: World) -> None:
    c = world.callers["owner"].client
    page = c.get(f"/plans/{world.plan}/dashboard").text
    assert 'aria-label="No milestones yet"' in page and "0 / 0" not in page
    assert "Side not set" in page
    log = c.get(f"/plans/{world.plan}/access").text
    assert ">Joined<" in log and ">Invited<" in log and ">member.added<" not in log


def test_a_too_long_link_label_is_refused_not_cut(world: World) -> None:
    owner = world.callers["owner"]
    form = {"csrf": owner.csrf, "action": "link", "role": "viewer", "days": "30"}
    r = owner.client.post(f"/plans/{world.plan}/share", data=form | {"label": "L" * 300})
    assert r.status_code == 400 and "Keep the label to 200 characters" in r.text
    assert "L" * 200 not in r.text.split("<table", 1)[-1]  # no link was made with it cut

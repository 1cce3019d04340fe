"""The authorization matrix: every route and websocket of the app x every kind of caller.

Rows come from the application's own route table, so a new route is tested the moment it exists;
a route without an access rule, or a public route nobody listed here, fails.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
import websockets
from starlette.routing import Mount, Route, WebSocketRoute

from server.app import create_app
from server.identity import Rule
from server.settings import Settings
from tests.support.access import World

# Routes anyone may call, each with the reason; anything else public is a failure.
PUBLIC = {
    "/setup": "first-run setup, refuses once a user exists",
    "/login": "sign-in form",
    "/logout": "checks its own CSRF field",
    "/healthz": "liveness probe",
    "/readyz": "readiness probe: names what is down (database, redis, draining), nothing more",
    "/metrics": "404 unless TANDEM_METRICS_TOKEN is set and sent as the bearer token",
    "/invite/{token}": "the signed invitation is the credential",
    "/s/{token}": "the signed share link is the credential",
    "/embed/{token}": "the signed embed URL is the credential",
    "/password-reset": "asks for a reset link; the same answer whether or not the address exists",
    "/password-reset/{token}": "the signed, single-use reset link is the credential",
    "/act/{action}/{task_id}/{token}": "the signed, single-use notification action link",
    "/unsubscribe/{token}": "the signed unsubscribe link (RFC 8058 one-click, no login)",
    "/slack/interactivity": "Slack's request signature is the credential; 404 unless "
    "TANDEM_SLACK_SIGNING_SECRET is set",
    "/calendar/{token}.ics": "the signed calendar feed URL, revocable by its owner",
    "/internal/plans/{plan_id}/ids": "loopback only; the worker's signed, plan-scoped credential",
}
CALLERS = [
    "anonymous",
    "wrong_plan",
    "link_viewer",
    "link_editor",
    "customer_member",
    "vendor_member",
    "owner",
    "api_token",
]
ALLOWED = {
    Rule.SIGNED_IN: {"wrong_plan", "customer_member", "vendor_member", "owner", "api_token"},
    Rule.PLAN_VIEW: {
        "link_viewer",
        "link_editor",
        "customer_member",
        "vendor_member",
        "owner",
        "api_token",
    },
    # Accounts with a role in the plan; link and embed visitors see no history or brief.
    # Owners and editors with an account; link editors change the plan only through its socket.
    Rule.PLAN_EDIT: {"customer_member", "vendor_member", "owner", "api_token"},
    Rule.PLAN_VENDOR: {"vendor_member", "owner"},
    Rule.PLAN_OWNER: {"owner"},
    # Members read the history; link visitors only through a link created with "history":
    # true (the world's links are not; tests/server/test_version_history.py has one that is).
    Rule.PLAN_HISTORY: {"customer_member", "vendor_member", "owner", "api_token"},
    # wrong_plan (made by `tandem users create`) and vendor_member (invited to the vendor side
    # by the workspace owner) are staff; customer_member and api_token (hers) are guests.
    # Their own notification preferences in the plan: every account with a role in it.
    Rule.PLAN_MEMBER: {"customer_member", "vendor_member", "owner", "api_token"},
    Rule.STAFF: {"wrong_plan", "vendor_member", "owner"},
    Rule.WORKSPACE_OWNER: {"owner"},
}


def app_routes() -> list:
    settings = Settings(data_dir=Path("/tmp"), database_url="sqlite://", secret_key="x")
    return list(create_app(settings).routes)


def endpoints() -> list[tuple[str, str, Rule]]:
    out = []
    for route in app_routes():
        if isinstance(route, Mount):
            assert route.name == "static", f"unexpected mount {route.path}"
            continue
        rule = getattr(route.endpoint, "access_rule", None)
        assert isinstance(rule, Rule), f"{route.path} has no access rule"
        if isinstance(route, WebSocketRoute):
            out.append(("WS", route.path, rule))
        else:
            assert isinstance(route, Route)
            out += [(m, route.path, rule) for m in sorted(route.methods or ()) if m != "HEAD"]
    return out


ENDPOINTS = endpoints()


def test_every_route_has_a_rule_and_public_ones_are_listed() -> None:
    for _method, path, rule in ENDPOINTS:
        if rule is Rule.PUBLIC:
            assert path in PUBLIC, f"{path} is public but not listed as such in this test"
        elif rule not in (Rule.SIGNED_IN, Rule.STAFF, Rule.WORKSPACE_OWNER):
            assert "{plan_id}" in path, f"{path} has a plan rule but no plan in its path"


def fill(path: str, world: World) -> str:
    values = {
        "plan_id": world.plan,
        "user_id": "999999",
        "link_id": "nonexistent",
        "task_id": "t_nonexistent",
        "token": "not-a-token",
    }
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values[m.group(1)], path)


def denied_http(response, path: str) -> bool:  # type: ignore[no-untyped-def]
    if response.status_code in (401, 403):
        return True
    if response.status_code in (302, 303, 307):
        return response.headers["location"].startswith("/login")
    # A plan the caller has no role in answers like a plan that does not exist; a customer-side
    # member is told the internal plan is the vendor team's.
    refusals = ("no plan with id", "for the vendor team only")
    return response.status_code == 404 and any(r in response.text for r in refusals)


async def ws_outcome(world: World, caller: str, path: str) -> str:
    c = world.callers[caller]
    url = world.server.http.replace("http", "ws") + path
    headers = {"Origin": world.server.http}
    if c.token:
        url += f"?token={c.token}"
    elif cookies := c.cookie_header():
        headers["Cookie"] = cookies
    async with websockets.connect(url, additional_headers=headers) as ws:
        try:
            first = await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed as exc:
            return f"closed {exc.rcvd.code if exc.rcvd else None}"
    return "synced" if isinstance(first, bytes) and first[:2] == b"\x00\x00" else f"other {first!r}"


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(
    ("method", "path", "rule"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS]
)
def test_matrix(world: World, caller: str, method: str, path: str, rule: Rule) -> None:
    if rule is Rule.PUBLIC:
        pytest.skip("public by design (see PUBLIC)")
    allowed = caller in ALLOWED[rule]
    url = fill(path, world)
    if method == "WS":
        outcome = asyncio.run(ws_outcome(world, caller, url))
        assert (outcome == "synced") == allowed, f"{caller} on {path}: {outcome}"
        return
    c = world.callers[caller]
    headers = {"X-CSRF-Token": c.csrf} if c.csrf else {}
    kwargs: dict = {"headers": headers}
    if method in ("POST", "PATCH", "PUT"):
        if path.startswith("/api/"):
            kwargs["json"] = {}
        else:
            kwargs["data"] = {"csrf": c.csrf or "", "action": "none-such"}
    response = c.client.request(method, url, **kwargs)
    assert response.status_code < 500, response.text
    assert denied_http(response, path) == (not allowed), (
        f"{caller} {method} {path}: {response.status_code} {response.text[:200]}"
    )


def test_members_of_one_plan_cannot_see_another(world: World) -> None:
    # A member of one plan asking for another learns nothing, not even that it exists;
    # the workspace owner (the first account) sees every plan.
    for name in ("vendor_member", "customer_member", "link_editor"):
        client = world.callers[name].client
        for suffix in ("", "/document", "/internal/document"):
            r = client.get(f"/api/plans/{world.other_plan}{suffix}")
            assert r.status_code in (401, 404), (name, suffix, r.status_code)
        listed = client.get("/api/plans")
        if listed.status_code == 200:
            assert [p["id"] for p in listed.json()["plans"]] == [world.plan]
    assert world.callers["owner"].client.get(f"/api/plans/{world.other_plan}").status_code == 200

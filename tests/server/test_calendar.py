"""The calendar feed against the real server, read with the ``icalendar`` package as a calendar
application would: what it lists (and for whom), its RFC 5545 shape, and every way its URL stops
working (turned off, replaced, tampered with)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import icalendar
import pytest

from tests.support.access import api, invite_and_join, sign_in
from tests.support.servers import Database, Server

OWNER = "olive@vendor.example"
CORA = "cora@customer.example"
STRANGER = "sam@elsewhere.example"


@dataclass
class Setup:
    server: Server
    owner: httpx.Client
    cora: httpx.Client
    stranger: httpx.Client
    plan: str
    other_plan: str
    tasks: dict[str, dict[str, Any]]


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json() if r.content else None


def poll(fn, timeout: float = 20.0) -> Any:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def setup(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp(f"calendar-{backend}")
    db = Database(backend, tmp, at_head=True)
    srv = Server(data_dir=tmp, database_url=db.url)
    srv.extra_env["TANDEM_MATERIALISE_QUIET_SECONDS"] = "0.05"
    srv.extra_env["TANDEM_BASE_URL"] = "https://tandem.example.com"
    srv.start()
    clients: list[httpx.Client] = []
    try:
        srv.create_user(OWNER, "Olive Owner")
        srv.create_user(STRANGER, "Sam Stranger")
        owner = api(srv, srv.create_token(OWNER))
        stranger = api(srv, srv.create_token(STRANGER))
        clients += [owner, stranger]
        body = {"title": "Rollout <b>", "customer": "Acme", "template": "onboarding-roadmap"}
        plan = ok(owner.post("/api/plans", json=body), 201)["id"]
        other = ok(stranger.post("/api/plans", json={**body, "title": "Sam's own"}), 201)["id"]
        invite_and_join(srv, owner, plan, CORA, "Cora Customer", "editor", "customer")
        cora = api(srv, srv.create_token(CORA))
        clients.append(cora)
        members = ok(owner.get(f"/api/plans/{plan}/members"))["members"]
        ids = {m["email"]: m["user_id"] for m in members}
        sam_id = ok(stranger.get(f"/api/plans/{other}/members"))["members"][0]["user_id"]

        def assign(client: httpx.Client, plan_id: str, task: dict, who: str, uid: int, due: str):  # type: ignore[no-untyped-def]
            owner_ref = {"id": f"user:{uid}", "label": who, "side": "vendor"}
            url = f"/api/plans/{plan_id}/tasks/{task['id']}"
            return ok(client.patch(url, json={"owner": owner_ref, "due": due}))

        tasks = ok(owner.get(f"/api/plans/{plan}/tasks"))["tasks"]
        plain = [t for t in tasks if not t["milestone"]]
        milestone = next(t for t in tasks if t["milestone"])
        chosen = {
            "olive": plain[0],
            "cora": plain[1],
            "undated": plain[2],
            "milestone": milestone,
        }
        chosen["olive"] = assign(owner, plan, chosen["olive"], "Olive", ids[OWNER], "2027-03-01")
        chosen["cora"] = assign(owner, plan, chosen["cora"], "Cora", ids[CORA], "2027-03-05")
        undated = {"owner": {"id": f"user:{ids[CORA]}", "label": "Cora", "side": "customer"}}
        undated["due"] = None  # type: ignore[assignment]
        url = f"/api/plans/{plan}/tasks/{chosen['undated']['id']}"
        chosen["undated"] = ok(owner.patch(url, json=undated))
        chosen["olive"]["owner_id"] = f"user:{ids[OWNER]}"
        chosen["cora"]["owner_id"] = f"user:{ids[CORA]}"
        ok(owner.patch(f"/api/plans/{plan}/tasks/{milestone['id']}", json={"due": "2027-04-01"}))
        other_tasks = ok(stranger.get(f"/api/plans/{other}/tasks"))["tasks"]
        assign(stranger, other, other_tasks[0], "Sam", sam_id, "2027-03-02")
        ok(
            stranger.patch(
                f"/api/plans/{other}/tasks/{next(t for t in other_tasks if t['milestone'])['id']}",
                json={"due": "2027-03-03"},
            )
        )
        yield Setup(srv, owner, cora, stranger, plan, other, chosen)
    finally:
        for c in clients:
            c.close()
        srv.stop()
        db.drop()


def feed_path(url: str) -> str:
    assert url.startswith("https://tandem.example.com/calendar/") and url.endswith(".ics"), url
    return url.removeprefix("https://tandem.example.com")


def fetch(srv: Server, path: str) -> httpx.Response:
    # A calendar application: no cookie, no token, only the URL.
    return httpx.get(srv.http + path)


def events(srv: Server, path: str) -> tuple[icalendar.Calendar, dict[str, icalendar.Event]]:
    r = fetch(srv, path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/calendar; charset=utf-8"
    cal = icalendar.Calendar.from_ical(r.content)
    return cal, {str(e["summary"]): e for e in cal.walk("VEVENT")}


def settled(srv: Server, path: str, count: int) -> dict[str, icalendar.Event]:
    """The feed once the tasks' changes have reached the tables it is read from."""
    return poll(lambda: (found := events(srv, path)[1]) and len(found) >= count and found)


def test_a_feed_lists_the_persons_tasks_and_their_plans_milestones(setup: Setup) -> None:
    made = ok(setup.cora.post("/api/me/calendar"), 201)
    path = feed_path(made["url"])
    assert ok(setup.cora.get("/api/me/calendar")) == {
        "active": True,
        "created_at": made["created_at"],
    }
    found = settled(setup.server, path, 2)
    cal, _ = events(setup.server, path)
    assert str(cal["version"]) == "2.0" and "Tandem" in str(cal["prodid"])
    assert str(cal["method"]) == "PUBLISH"
    assert str(cal["x-wr-calname"]) == "Tandem: Cora Customer"
    # Her dated tasks and the plan's dated milestones; not Olive's task, not her undated one,
    # nothing of a plan she is not in.
    assert sorted(found) == expected(setup, "cora"), sorted(found)
    assert f"Due: {wording(setup.tasks['cora'])}" in found
    assert f"Due: {wording(setup.tasks['undated'])}" not in found
    assert f"Due: {wording(setup.tasks['olive'])}" not in found
    task = found[f"Due: {wording(setup.tasks['cora'])}"]
    start, end = task.decoded("dtstart"), task.decoded("dtend")
    assert start == date(2027, 3, 5) and end == start + timedelta(days=1)
    assert task["dtstart"].params.get("VALUE") == "DATE"
    assert isinstance(task.decoded("dtstart"), date)
    assert task.get("dtstamp") is not None
    plan_url = f"https://tandem.example.com/plans/{setup.plan}"
    assert str(task["url"]) == plan_url
    description = str(task["description"])
    assert "Rollout <b> (Acme)" in description and plan_url in description
    uid = str(task["uid"])
    assert setup.tasks["cora"]["id"] in uid and uid.endswith("@tandem.example.com")
    # The same UID on every fetch, and after the feed is replaced: calendars update, not add.
    again = ok(setup.cora.post("/api/me/calendar"), 201)
    assert fetch(setup.server, path).status_code == 404  # the replaced URL is gone
    _, refetched = events(setup.server, feed_path(again["url"]))
    assert str(refetched[f"Due: {wording(setup.tasks['cora'])}"]["uid"]) == uid


def test_the_owners_feed_has_their_task_and_not_other_plans(setup: Setup) -> None:
    path = feed_path(ok(setup.owner.post("/api/me/calendar"), 201)["url"])
    found = settled(setup.server, path, 2)
    assert sorted(found) == expected(setup, "olive")
    assert f"Due: {wording(setup.tasks['olive'])}" in found
    assert f"Milestone: {wording(setup.tasks['milestone'])}" in found
    sams = feed_path(ok(setup.stranger.post("/api/me/calendar"), 201)["url"])
    theirs = settled(setup.server, sams, 2)
    assert all(str(e["url"]).endswith(setup.other_plan) for e in theirs.values())


def test_a_turned_off_or_tampered_feed_answers_404(setup: Setup) -> None:
    assert ok(setup.stranger.get("/api/me/calendar"))["active"] in (True, False)
    path = feed_path(ok(setup.stranger.post("/api/me/calendar"), 201)["url"])
    assert fetch(setup.server, path).status_code == 200
    token = path.removeprefix("/calendar/").removesuffix(".ics")
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, "tdf_" + token[4:-1], "not-a-token", "tdu_" + token[4:]):
        assert fetch(setup.server, f"/calendar/{bad}.ics").status_code == 404, bad
    assert setup.stranger.delete("/api/me/calendar").status_code == 204
    assert fetch(setup.server, path).status_code == 404
    assert ok(setup.stranger.get("/api/me/calendar")) == {"active": False, "created_at": None}
    # Turning off what is off is no error.
    assert setup.stranger.delete("/api/me/calendar").status_code == 204


def test_the_plan_list_makes_shows_once_and_turns_off_the_feed(setup: Setup) -> None:
    caller = sign_in(setup.server, CORA)
    try:
        page = caller.client.get("/")
        assert 'id="calendar"' in page.text
        made = caller.client.post("/calendar", data={"csrf": caller.csrf, "action": "create"})
        assert made.status_code == 200, made.text
        url = made.text.split('id="calendar-url"', 1)[0].rsplit('value="', 1)[1].split('"')[0]
        assert fetch(setup.server, feed_path(url)).status_code == 200
        later = caller.client.get("/")
        assert 'id="calendar-url"' not in later.text and 'id="calendar-revoke"' in later.text
        off = caller.client.post("/calendar", data={"csrf": caller.csrf, "action": "revoke"})
        assert off.status_code == 200 and 'id="calendar-create"' in off.text
        assert fetch(setup.server, feed_path(url)).status_code == 404
        bad = caller.client.post("/calendar", data={"csrf": caller.csrf, "action": "nope"})
        assert bad.status_code == 400
    finally:
        caller.client.close()


def test_a_deactivated_account_s_feed_answers_404(setup: Setup) -> None:
    # Last in this module: Sam's account stays deactivated.
    path = feed_path(ok(setup.stranger.post("/api/me/calendar"), 201)["url"])
    assert fetch(setup.server, path).status_code == 200
    done = setup.server.cli("users", "deactivate", STRANGER)
    assert done.returncode == 0, done.stderr
    assert fetch(setup.server, path).status_code == 404


def expected(setup: Setup, who: str) -> list[str]:
    """What the feed of ``who`` should list, from the plan's tasks as the API gives them."""
    owner_id = setup.tasks[who]["owner_id"]
    tasks = ok(setup.owner.get(f"/api/plans/{setup.plan}/tasks"))["tasks"]
    out = []
    for t in tasks:
        if not t["due"]:
            continue
        prefix = "Done" if t["status"] == "done" else "Due"
        if t["milestone"]:
            prefix = "Milestone reached" if t["status"] == "done" else "Milestone"
        elif (t.get("owner") or {}).get("id") != owner_id:
            continue
        out.append(f"{prefix}: {wording(t)}")
    return sorted(out)


def wording(task: dict[str, Any]) -> str:
    text = task["text"]
    if task.get("owner"):
        text = text.replace(f"@{task['owner']['label']}", " ", 1)
    return " ".join(text.split()) or "Untitled task"

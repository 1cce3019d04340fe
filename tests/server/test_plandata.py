"""The plan as data over a real server: templates, tables, audit, write-back and rebuild."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from pycrdt import Doc, XmlElement, XmlText

from tests.support.access import api as client
from tests.support.access import invite_and_join
from tests.support.servers import Database, Server
from tests.support.yclient import connect, fragment

pytestmark = pytest.mark.anyio


def api(server: Server, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(
        method, f"{server.http}{path}", headers={"Authorization": f"Bearer {token}"}, **kw
    )


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def new_plan(server: Server, token: str, template: str | None = None) -> str:
    body = {"title": "JSP", "customer": "Acme", **({"template": template} if template else {})}
    return ok(api(server, token, "POST", "/api/plans", json=body), 201)["id"]


async def poll(fn, timeout: float = 10.0) -> Any:  # type: ignore[no-untyped-def]
    """fn() until it returns something truthy."""
    with anyio.fail_after(timeout):
        while True:
            value = fn()
            if value:
                return value
            await anyio.sleep(0.1)


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


def tasks(server: Server, token: str, plan_id: str, query: str = "") -> list[dict[str, Any]]:
    return ok(api(server, token, "GET", f"/api/plans/{plan_id}/tasks{query}"))["tasks"]


def task_elements(doc: Doc) -> list[XmlElement]:
    out = []

    def walk(parent: Any) -> None:
        for child in parent.children:
            if isinstance(child, XmlElement):
                if child.tag == "taskItem":
                    out.append(child)
                walk(child)

    walk(fragment(doc))
    return out


def add_task(doc: Doc, text: str, attrs: dict[str, Any] | None = None) -> XmlElement:
    with doc.transaction():
        lst = fragment(doc).children.append(XmlElement("taskList"))
        item = lst.children.append(XmlElement("taskItem", {"checked": False, **(attrs or {})}))
        item.children.append(XmlElement("paragraph", {}, [XmlText(text)]))
    return item


def second_user(server: Server, token: str, plan_id: str) -> str:
    """Robin, invited into the plan by its owner, on the customer side."""
    with client(server, token) as owner:
        invite_and_join(
            server, owner, plan_id, "robin@customer.example", "Robin Customer", "editor", "customer"
        )
    return server.create_token("robin@customer.example")


async def test_plan_from_template_is_materialised_with_its_creator(
    server: Server, token: str
) -> None:
    templates = ok(api(server, token, "GET", "/api/templates"))["templates"]
    assert {t["id"] for t in templates} >= {
        "onboarding-roadmap",
        "success-plan-canvas",
        "joint-success-plan",
        "executive-business-review",
    }
    bad = api(
        server,
        token,
        "POST",
        "/api/plans",
        json={"title": "x", "customer": "y", "template": "nope"},
    )
    assert bad.status_code == 400 and bad.json()["field"] == "template"

    plan_id = new_plan(server, token, "joint-success-plan")
    got = tasks(server, token, plan_id)
    assert len(got) == 6 and all(t["id"].startswith("t_") for t in got)
    milestones = ok(api(server, token, "GET", f"/api/plans/{plan_id}/milestones"))["milestones"]
    assert [m["text"] for m in milestones][:2] == ["Plan agreed by both sponsors", "Go-live"]
    krs = ok(api(server, token, "GET", f"/api/plans/{plan_id}/key-results"))["key_results"]
    # The template's samples are prompts: no made-up figures, and a new plan is not amber.
    assert krs[0]["metric"] == "e.g. Monthly revenue" and krs[0]["target_value"] is None
    risks = ok(api(server, token, "GET", f"/api/plans/{plan_id}/risks"))["risks"]
    assert risks[0]["risk"].startswith("e.g. ")
    status = ok(api(server, token, "GET", f"/api/plans/{plan_id}/summary"))["status"]
    assert status["computed"] == "green", status["reasons"]
    contacts = ok(api(server, token, "GET", f"/api/plans/{plan_id}/contacts"))["contacts"]
    assert {c["side"] for c in contacts} == {"vendor", "customer"}
    vendor = tasks(server, token, plan_id, "?side=vendor")
    assert [t["owner"]["label"] for t in vendor] == ["CSM"]
    assert tasks(server, token, plan_id, "?owner=name:CSM") == vendor
    assert tasks(server, token, plan_id, "?owner=csm") == vendor
    assert len(tasks(server, token, plan_id, "?milestone=true")) == 4
    assert tasks(server, token, plan_id, "?due_before=2000-01-01") == []
    events = ok(api(server, token, "GET", f"/api/plans/{plan_id}/audit"))["events"]
    assert {e["kind"] for e in events} == {"created"}
    assert {e["author"]["name"] for e in events} == {"Casey CSM"}
    for query, field in [
        ("?side=both", "side"),
        ("?status=finished", "status"),
        ("?due_before=tomorrow", "due_before"),
        ("?due_after=2027-13-01", "due_after"),
        ("?milestone=yes", "milestone"),
        ("?colour=red", "colour"),
    ]:
        r = api(server, token, "GET", f"/api/plans/{plan_id}/tasks{query}")
        assert r.status_code == 400 and r.json()["field"] == field, query


async def test_the_commitment_history_answers_at_its_new_and_its_first_address(
    server: Server, token: str
) -> None:
    body = {"title": "Rollout", "customer": "Acme", "template": "onboarding-roadmap"}
    plan_id = ok(api(server, token, "POST", "/api/plans", json=body), 201)["id"]
    events = ok(api(server, token, "GET", f"/api/plans/{plan_id}/history"))["events"]
    assert events and {e["kind"] for e in events} == {"created"}
    assert ok(api(server, token, "GET", f"/api/plans/{plan_id}/audit"))["events"] == events


async def test_plain_yjs_client_creates_a_task_and_ids_reach_every_client(
    server: Server, token: str, plan_id: str
) -> None:
    async with (
        connect(server.ws, plan_id, token) as (a, _),
        connect(server.ws, plan_id, token) as (b, _),
    ):
        add_task(a, "Book the kick-off")
        (task,) = await poll(lambda: tasks(server, token, plan_id))
        assert task["text"] == "Book the kick-off" and task["status"] == "todo"
        # The server-assigned id reached both clients through the room.
        await wait_for(
            lambda: all(
                task_elements(d) and task_elements(d)[0].attributes.get("id") for d in (a, b)
            )
        )
        assert task_elements(b)[0].attributes.get("id") == task["id"]

        # A paste: a copy carrying the same id gets a new one; the original keeps its own.
        add_task(a, "Book the kick-off (copy)", {"id": task["id"]})
        got = await poll(lambda: t if len(t := tasks(server, token, plan_id)) == 2 else None)
        assert got[0]["id"] == task["id"] and got[1]["id"] != task["id"]
        assert got[1]["text"] == "Book the kick-off (copy)"

        # Typing key by key is one audit event, not one per key.
        text = task_elements(a)[0].children[0].children[0]
        for ch in " today":
            text.insert(len(text), ch)
            await anyio.sleep(0.05)
        await poll(lambda: tasks(server, token, plan_id)[0]["text"] == "Book the kick-off today")
        events = ok(api(server, token, "GET", f"/api/plans/{plan_id}/audit"))["events"]
        texts = [e for e in events if e["entity_id"] == task["id"] and e["kind"] != "created"]
        created = [e for e in events if e["entity_id"] == task["id"] and e["kind"] == "created"]
        assert len(created) == 1
        assert len(texts) <= 1 and (not texts or texts[0]["new"] == "Book the kick-off today")


async def test_two_people_edit_one_task_both_land_and_both_are_audited(
    server: Server, token: str
) -> None:
    plan_id = new_plan(server, token, "joint-success-plan")
    robin = second_user(server, token, plan_id)
    target = next(t for t in tasks(server, token, plan_id) if t["owner"] and t["due"])
    async with (
        connect(server.ws, plan_id, token) as (casey_doc, _),
        connect(server.ws, plan_id, robin) as (robin_doc, _),
    ):

        def find(doc: Doc) -> XmlElement:
            return next(e for e in task_elements(doc) if e.attributes.get("id") == target["id"])

        def chip(doc: Doc) -> XmlElement:
            para = find(doc).children[0]
            return next(
                c for c in para.children if isinstance(c, XmlElement) and c.tag == "dueDate"
            )

        # At the same moment: Casey ticks the task, Robin moves its date.
        find(casey_doc).attributes["checked"] = True
        chip(robin_doc).attributes["date"] = "2031-05-05"

        def landed() -> dict[str, Any] | None:
            t = next(t for t in tasks(server, token, plan_id) if t["id"] == target["id"])
            return t if t["checked"] and t["due"] == "2031-05-05" else None

        t = await poll(landed)
        assert t["status"] == "done" and t["owner"] == target["owner"]
        await wait_for(lambda: find(robin_doc).attributes.get("checked") is True)
        await wait_for(lambda: chip(casey_doc).attributes.get("date") == "2031-05-05")
    events = ok(api(server, token, "GET", f"/api/plans/{plan_id}/audit"))["events"]
    mine = {e["kind"]: e for e in events if e["entity_id"] == target["id"]}
    assert mine["completed"]["author"]["name"] == "Casey CSM"
    assert mine["completed"]["old"] == "todo" and mine["completed"]["new"] == "done"
    assert mine["due_moved"]["author"]["name"] == "Robin Customer"
    assert mine["due_moved"]["old"] == target["due"] and mine["due_moved"]["new"] == "2031-05-05"


async def test_patch_writes_back_through_the_room(server: Server, token: str) -> None:
    plan_id = new_plan(server, token, "onboarding-roadmap")
    robin = second_user(server, token, plan_id)
    target = tasks(server, token, plan_id)[0]
    path = f"/api/plans/{plan_id}/tasks/{target['id']}"
    async with connect(server.ws, plan_id, token) as (doc, _):
        body = {
            "status": "done",
            "owner": {"id": "user:2", "side": "customer"},
            "due": "2030-01-31",
        }
        got = ok(api(server, robin, "PATCH", path, json=body))
        assert got["status"] == "done" and got["checked"] is True and got["due"] == "2030-01-31"
        assert got["owner"] == {"id": "user:2", "label": "Robin Customer", "side": "customer"}

        def seen() -> bool:
            el = next(
                (e for e in task_elements(doc) if e.attributes.get("id") == target["id"]), None
            )
            if el is None or el.attributes.get("checked") is not True:
                return False
            inline = [c for c in el.children[0].children if isinstance(c, XmlElement)]
            return {c.tag for c in inline} >= {"mention", "dueDate"}

        await wait_for(seen)
        ok(api(server, robin, "PATCH", path, json={"checked": False, "owner": None, "due": None}))
        await wait_for(lambda: not seen())
    events = ok(api(server, token, "GET", f"/api/plans/{plan_id}/audit"))["events"]
    kinds = {(e["kind"], e["author"]["name"]) for e in events if e["entity_id"] == target["id"]}
    assert {("completed", "Robin Customer"), ("reopened", "Robin Customer")} <= kinds
    assert ("reassigned", "Robin Customer") in kinds and ("due_moved", "Robin Customer") in kinds

    for body, field in [
        ({"status": "finished"}, "status"),
        ({"checked": "yes"}, "checked"),
        ({"due": "31/01/2030"}, "due"),
        ({"owner": {"id": "someone"}}, "owner"),
        ({"owner": {"id": "user:999"}}, "owner"),
        ({"title": "x"}, "title"),
    ]:
        r = api(server, token, "PATCH", path, json=body)
        assert r.status_code == 400 and r.json()["field"] == field, body
    assert api(server, token, "PATCH", path, json={}).status_code == 400
    r = api(
        server, token, "PATCH", f"/api/plans/{plan_id}/tasks/t_nosuchtask", json={"checked": True}
    )
    assert r.status_code == 404
    r = api(server, token, "PATCH", f"/api/plans/nope/tasks/{target['id']}", json={"checked": True})
    assert r.status_code == 404


async def test_summary_status_override_and_save_as_template(server: Server, token: str) -> None:
    plan_id = new_plan(server, token, "executive-business-review")
    summary = ok(api(server, token, "GET", f"/api/plans/{plan_id}/summary"))
    assert summary["progress"]["tasks"] == {"done": 0, "total": 6}
    assert summary["progress"]["milestones"] == {"done": 0, "total": 1}
    assert summary["next_milestone"]["text"] == "Next executive business review"
    assert summary["next_milestone"]["verdict"] in ("on_track", "at_risk")
    assert len(summary["due_soon"]["vendor"]) == 1  # "Send the review summary", in 2 days
    assert summary["status"]["rag"] == summary["status"]["computed"]
    for body, field in [({"rag": "blue", "reason": "x"}, "rag"), ({"rag": "red"}, "reason")]:
        r = api(server, token, "PUT", f"/api/plans/{plan_id}/status", json=body)
        assert r.status_code == 400 and r.json()["field"] == field
    status = ok(
        api(
            server,
            token,
            "PUT",
            f"/api/plans/{plan_id}/status",
            json={"rag": "red", "reason": "Sponsor left"},
        )
    )
    assert status["rag"] == "red" and status["override"]["reason"] == "Sponsor left"
    assert status["override"]["by"] == "Casey CSM"
    status = ok(api(server, token, "DELETE", f"/api/plans/{plan_id}/status"))
    assert status["override"] is None and status["rag"] == status["computed"]

    saved = ok(
        api(
            server,
            token,
            "POST",
            f"/api/plans/{plan_id}/save-as-template",
            json={"name": "Our EBR"},
        ),
        201,
    )
    assert saved["builtin"] is False
    assert saved["id"] in {
        t["id"] for t in ok(api(server, token, "GET", "/api/templates"))["templates"]
    }
    copy = new_plan(server, token, saved["id"])
    assert [t["text"] for t in tasks(server, token, copy)] == [
        t["text"] for t in tasks(server, token, plan_id)
    ]
    copied_ids = {t["id"] for t in tasks(server, token, copy)}
    assert not copied_ids & {t["id"] for t in tasks(server, token, plan_id)}
    r = api(server, token, "POST", f"/api/plans/{plan_id}/save-as-template", json={"name": ""})
    assert r.status_code == 400 and r.json()["field"] == "name"


def tables(server: Server, token: str, plan_id: str) -> dict[str, Any]:
    out = {}
    for name in ("tasks", "key-results", "risks", "contacts"):
        out[name] = api(server, token, "GET", f"/api/plans/{plan_id}/{name}").json()
    events = ok(api(server, token, "GET", f"/api/plans/{plan_id}/audit?limit=1000"))["events"]
    out["audit"] = [{k: v for k, v in e.items() if k != "id"} for e in reversed(events)]
    return out


async def test_rebuild_from_the_log_gives_the_live_tables(server: Server, token: str) -> None:
    plan_id = new_plan(server, token, "joint-success-plan")
    robin = second_user(server, token, plan_id)
    async with (
        connect(server.ws, plan_id, token) as (a, _),
        connect(server.ws, plan_id, robin) as (b, _),
    ):
        add_task(a, "Casey's new task")
        await poll(lambda: len(tasks(server, token, plan_id)) == 7)
        first = task_elements(b)[0]
        first.attributes["checked"] = True
        del fragment(b).children[len(fragment(b).children) - 1]  # Robin removes Casey's task
        await poll(lambda: len(tasks(server, token, plan_id)) == 6)
        add_task(b, "Robin's task")
        await poll(lambda: len(tasks(server, token, plan_id)) == 7)
    ok(
        api(
            server,
            token,
            "PATCH",
            f"/api/plans/{plan_id}/tasks/{tasks(server, token, plan_id)[1]['id']}",
            json={"due": "2029-09-09"},
        )
    )
    time.sleep(1.0)
    live = tables(server, token, plan_id)
    assert {e["kind"] for e in live["audit"]} >= {"created", "completed", "removed", "due_moved"}
    server.stop()
    done = server.cli("plans", "rebuild", "--all")
    assert done.returncode == 0, done.stderr
    assert plan_id in done.stdout
    server.start()
    assert tables(server, token, plan_id) == live
    assert server.cli("plans", "rebuild", "nope").returncode == 1


async def test_tables_follow_continuous_typing_at_least_every_few_seconds(
    server: Server, token: str, plan_id: str
) -> None:
    async with connect(server.ws, plan_id, token) as (doc, _):
        add_task(doc, "Typing")
        await poll(lambda: tasks(server, token, plan_id))
        text = task_elements(doc)[0].children[0].children[0]
        seen: set[str] = set()
        start = anyio.current_time()
        while anyio.current_time() - start < 5.0:  # a key every 0.2 s: never a quiet 0.6 s
            text.insert(len(text), ".")
            await anyio.sleep(0.2)
            seen.add(tasks(server, token, plan_id)[0]["text"])
        # The max wait (3 s) forced at least one materialisation while typing went on.
        assert len(seen - {"Typing"}) >= 1


async def test_edits_logged_before_a_crash_are_materialised_at_the_next_start(
    server: Server, token: str, plan_id: str
) -> None:
    async with (
        connect(server.ws, plan_id, token) as (a, _),
        connect(server.ws, plan_id, token) as (b, _),
    ):
        add_task(a, "Logged, then the server died")
        # Once b has it, it is in the log; the materialiser is still waiting for a pause.
        await wait_for(lambda: bool(task_elements(b)))
        server.kill()
    server.start()
    (task,) = await poll(lambda: tasks(server, token, plan_id))
    assert task["text"] == "Logged, then the server died"
    events = ok(api(server, token, "GET", f"/api/plans/{plan_id}/audit"))["events"]
    assert [(e["kind"], e["author"]["name"]) for e in events] == [("created", "Casey CSM")]


async def test_after_a_restart_the_tables_pick_up_from_a_checkpoint(
    database: Database, tmp_path: Path
) -> None:
    """A long-lived plan's first materialisation after a restart starts from a checkpoint, not
    from the whole log; after a crash, from one no newer than what the tables had seen. The
    audit trail goes on as if the server had never stopped."""
    server = Server(
        data_dir=tmp_path, database_url=database.url, extra_env={"TANDEM_CHECKPOINT_EVERY": "2"}
    ).start()
    try:
        server.create_user("csm@vendor.example", "Casey CSM")
        token = server.create_token("csm@vendor.example")
        plan_id = server.create_plan(token)
        async with connect(server.ws, plan_id, token) as (doc, _):
            for i in range(6):
                add_task(doc, f"Task {i}")
                await poll(lambda i=i: len(tasks(server, token, plan_id)) == i + 1)
        before = tables(server, token, plan_id)
        server.stop()
        server.start()
        async with connect(server.ws, plan_id, token) as (doc, _):
            task_elements(doc)[2].attributes["checked"] = True
            add_task(doc, "After the restart")
            await poll(lambda: len(tasks(server, token, plan_id)) == 7)
            await poll(lambda: tasks(server, token, plan_id)[2]["checked"])
        after = tables(server, token, plan_id)
        # Now edits are logged (and checkpointed) but not yet in the tables when it dies.
        async with (
            connect(server.ws, plan_id, token) as (a, _),
            connect(server.ws, plan_id, token) as (b, _),
        ):
            # One logged row each (b sees one before a writes the next), so three checkpoints
            # or more fall after the tables' watermark: with only the two newest kept, a
            # restart would have nothing older to start from but the beginning of the log.
            for n in range(1, 7):
                add_task(a, f"Logged {n}")
                await wait_for(lambda n=n: len(task_elements(b)) == 7 + n)
            await anyio.sleep(0.2)  # the checkpoint's write; the tables wait for a quiet 0.6 s
            server.kill()
        server.start()
        await poll(lambda: len(tasks(server, token, plan_id)) == 13)
        crashed = tables(server, token, plan_id)
        rebuilt = [line for line in server.log().splitlines() if "shadow rebuilt from" in line]
    finally:
        server.stop()
    assert rebuilt and all("from the checkpoint at" in line for line in rebuilt), rebuilt

    # Only what changed since is new in the audit trail: nothing recreated, nothing lost.
    def new_events(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str]]:
        assert new["audit"][: len(old["audit"])] == old["audit"]
        return [
            (e["kind"], e["new"]["text"] if isinstance(e["new"], dict) else "")
            for e in new["audit"][len(old["audit"]) :]
        ]

    assert new_events(before, after) == [("completed", ""), ("created", "After the restart")]
    assert new_events(after, crashed) == [("created", f"Logged {n}") for n in range(1, 7)]

"""Notification preferences and the weekly digest, through a real server and a real SMTP server.

A kind switched off is not sent; a kind set to the digest waits for it; a time zone zoneinfo does
not know is refused; the digest comes once, at its hour in the reader's zone (``tandem
notifications run --at`` on both sides of a time-zone boundary); Key contacts without an account
set theirs from the signed link in every message, which still unsubscribes in one click (RFC 8058).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.test_notifications import (
    JORDAN,
    OWNER,
    Inbox,
    Plan,
    close_clients,  # noqa: F401  (an autouse fixture)
    inbox,  # noqa: F401  (a fixture)
    invite_and_join,
    mail_server,
    parts,
    path_of,
    poll,
    subject,
    wording,
)
from tests.server.test_notify_more_rules import run_twice
from tests.support.access import sign_in
from tests.support.servers import Database, Server

ROBIN = "robin@customer.example"
VERA = "vera@vendor.example"


@pytest.fixture
def server(database: Database, tmp_path: Path, inbox: tuple[Inbox, int]) -> Iterator[Server]:  # noqa: F811
    srv = mail_server(tmp_path, database, inbox[1]).start()
    yield srv
    srv.stop()


def run_at(srv: Server, at: str) -> list[str]:
    """The lines ``tandem notifications run --at`` printed about what it queued."""
    done = srv.cli("notifications", "run", "--at", at)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith("queued")]


def with_members(server: Server, plan: Plan) -> httpx.Client:
    """Robin (customer editor) and Vera (vendor editor) join; Robin's API client."""
    invite_and_join(server, plan.owner, plan.id, ROBIN, "Robin", "editor", "customer")
    invite_and_join(server, plan.owner, plan.id, VERA, "Vera Vendor", "editor", "vendor")
    return plan.client(server.create_token(ROBIN))


def prefs(plan: Plan, body: dict[str, Any] | None = None) -> dict[str, Any]:
    url = f"/api/plans/{plan.id}/notification-preferences"
    r = plan.owner.put(url, json=body) if body is not None else plan.owner.get(url)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_kind_switched_off_is_not_sent_and_one_set_to_the_digest_waits(
    server: Server,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    box, _ = inbox
    plan = Plan(server)
    robin = with_members(server, plan)
    assert prefs(plan)["effective"]["completed"] == "immediate"
    assert prefs(plan, {"kinds": {"completed": "off"}})["kinds"]["completed"] == "off"

    # A milestone done tells everyone but the one who ticked it: Vera, not Olive (off).
    milestone = next(t for t in plan.tasks() if t["milestone"])
    r = robin.patch(f"/api/plans/{plan.id}/tasks/{milestone['id']}", json={"status": "done"})
    assert r.status_code == 200, r.text
    (vera_mail,) = [m for m in box.wait(VERA, 2) if "Milestone reached" in subject(m)]
    assert [(n["kind"], n["recipient"]["email"]) for n in plan.notifications()] == [
        ("completed", VERA)
    ]

    # Set to the digest: queued, held for it, not mailed.
    assert prefs(plan, {"kinds": {"completed": "digest"}})["effective"]["completed"] == "digest"
    task = plan.tasks()[4]
    r = robin.patch(f"/api/plans/{plan.id}/tasks/{task['id']}", json={"status": "done"})
    assert r.status_code == 200, r.text
    held = poll(lambda: [n for n in plan.notifications() if n["recipient"]["email"] == OWNER])
    assert [(n["kind"], n["state"]) for n in held] == [("completed", "held")]

    # Olive's digest (Monday 08:00 UTC by default) carries it, once; then it is in_digest.
    assert run_at(server, "2030-01-07T07:59:00Z") == []
    queued = run_at(server, "2030-01-07T08:00:00Z")
    assert any(line.startswith(f"queued digest to {OWNER}: ") for line in queued), queued
    digest = next(m for m in box.wait(OWNER) if "Your week in Tandem" in subject(m))
    text, html = parts(digest)
    assert "NOTIFICATIONS YOU CHOSE TO GET HERE" in text
    assert held[0]["subject"] in text
    assert "Rollout &lt;b&gt;" in html and "Rollout <b>" not in html
    assert [n["state"] for n in plan.notifications() if n["recipient"]["email"] == OWNER] == [
        "in_digest"
    ]
    assert not [m for m in box.to(OWNER) if "] Done: " in subject(m)]
    assert not any(OWNER in line for line in run_at(server, "2030-01-07T09:00:00Z"))
    assert len([m for m in box.to(OWNER) if "Your week" in subject(m)]) == 1
    # Back to the default: the plan follows the person's default again.
    assert prefs(plan, {"kinds": {"completed": "default"}})["kinds"]["completed"] is None


def test_bad_preferences_are_refused_with_a_reason(server: Server) -> None:
    plan = Plan(server)
    me = plan.owner.get("/api/me/notifications")
    assert me.status_code == 200
    body = me.json()
    assert (body["time_zone"], body["digest_weekday"], body["digest_hour"]) == ("UTC", 0, 8)
    assert body["digest"] is True and body["plans"][plan.id]["kinds"]["assigned"] is None
    for bad, words in [
        ({"time_zone": "Mars/Olympus_Mons"}, "unknown time zone 'Mars/Olympus_Mons'"),
        ({"time_zone": "../../etc/passwd"}, "unknown time zone"),
        ({"time_zone": 7}, "IANA time zone name"),
        ({"time_zone": "posixrules"}, "unknown time zone"),
        ({"digest_hour": 24}, "digest_hour must be a whole number from 0 to 23"),
        ({"digest_hour": "²"}, "digest_hour must be a whole number from 0 to 23"),
        ({"digest_weekday": "Someday"}, "digest_weekday must be"),
        ({"kinds": {"assigned": "loudly"}}, "unknown mode 'loudly'"),
        ({"kinds": {"gossip": "off"}}, "unknown kind 'gossip'"),
        ({"colour": "blue"}, "unknown field 'colour'"),
    ]:
        r = plan.owner.put("/api/me/notifications", json=bad)
        assert r.status_code == 400 and words in r.json()["error"], (bad, r.text)
    r = plan.owner.put(
        f"/api/plans/{plan.id}/notification-preferences", json={"kinds": {"x": "off"}}
    )
    assert r.status_code == 400 and "unknown kind 'x'" in r.text
    ok = plan.owner.put(
        "/api/me/notifications",
        json={"time_zone": "America/St_Johns", "digest_weekday": "friday", "digest_hour": 17},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["time_zone"] == "America/St_Johns" and ok.json()["digest_weekday"] == 4

    # The page, signed in with a session: the same check, the message on the page.
    olive = sign_in(server, OWNER)
    page = olive.client.get("/settings/notifications")
    assert page.status_code == 200
    assert 'name="time_zone"' in page.text and f'name="mode:{plan.id}:assigned"' in page.text
    assert 'value="America/St_Johns"' in page.text
    form = {"csrf": olive.csrf, "time_zone": "Europe/Atlantis", "digest": "on"}
    r = olive.client.post("/settings/notifications", data=form)
    assert r.status_code == 400 and "unknown time zone &#39;Europe/Atlantis&#39;" in r.text
    form |= {"time_zone": "Europe/Berlin", f"mode:{plan.id}:overdue": "off"}
    form |= {"mode:*:assigned": "digest", "digest_weekday": "2", "digest_hour": "6"}
    r = olive.client.post("/settings/notifications", data=form)
    assert r.status_code == 303 and r.headers["location"] == "/settings/notifications?saved=1"
    body = plan.owner.get("/api/me/notifications").json()
    assert (body["time_zone"], body["digest_weekday"], body["digest_hour"]) == (
        "Europe/Berlin",
        2,
        6,
    )
    assert body["kinds"]["assigned"] == "digest"
    assert prefs(plan)["effective"] == {**prefs(plan)["defaults"], "overdue": "off"}
    olive.client.close()


def test_a_contact_sets_theirs_from_the_link_and_gets_the_digest_once_at_their_hour(
    server: Server,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    box, _ = inbox
    plan = Plan(server)
    first, second = plan.tasks()[4:6]
    plan.assign_to_jordan(first["id"])
    (mail,) = box.wait(JORDAN)
    url = path_of(mail["List-Unsubscribe"].strip("<>"))

    with httpx.Client(base_url=server.http) as jordan:
        page = jordan.get(url)
        assert page.status_code == 200
        assert f'name="mode:{plan.id}:assigned"' in page.text and 'name="time_zone"' in page.text
        fields = {"step": "preferences", "digest": "on", "digest_weekday": "0"}
        fields |= {"digest_hour": "8", f"mode:{plan.id}:assigned": "digest"}
        fields |= {f"mode:{plan.id}:due_soon": "off", f"mode:{plan.id}:overdue": "off"}
        bad = jordan.post(url, data=fields | {"time_zone": "Pacific/Nowhere"})
        assert bad.status_code == 400 and "unknown time zone" in bad.text
        done = jordan.post(url, data=fields | {"time_zone": "Pacific/Auckland"})
        assert done.status_code == 200 and "Your preferences are saved" in done.text
        assert 'value="Pacific/Auckland"' in done.text

    # Assigned again: held for the digest, not mailed.
    plan.assign_to_jordan(second["id"])
    poll(lambda: [n for n in plan.notifications() if n["state"] == "held"])
    assert len(box.to(JORDAN)) == 1

    # Monday 08:00 in Auckland (NZDT, UTC+13) is Sunday 19:00 UTC: not a minute before, once at
    # it, not again later that week; reminders of the overdue tasks are off.
    assert not any(JORDAN in q for q in run_at(server, "2030-01-06T18:59:00Z"))
    queued = [q for q in run_at(server, "2030-01-06T19:00:00Z") if JORDAN in q]
    assert len(queued) == 1 and queued[0].startswith(f"queued digest to {JORDAN}: Your week")
    assert not any(JORDAN in q for q in run_at(server, "2030-01-06T23:00:00Z"))
    assert not any(JORDAN in q for q in run_at(server, "2030-01-07T08:00:00Z"))
    (_, digest) = box.wait(JORDAN, 2)
    assert subject(digest).startswith("Your week in Tandem: 2 open task(s)")
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = parts(digest)
    assert "YOUR OPEN TASKS" in text and "(Rollout <b>, due" in text
    assert "Rollout &lt;b&gt;" in html and "Rollout <b>" not in html
    assert "week of 2030-01-07, Pacific/Auckland" in text
    assert "NOTIFICATIONS YOU CHOSE TO GET HERE" in text and "Assigned to you" in text
    # Overdue first: both are, the earlier due date first.
    lines = [line for line in text.splitlines() if line.startswith("- OVERDUE")]
    dues = [re.search(r"due (\d{4}-\d\d-\d\d)\)", line).group(1) for line in lines[:2]]  # type: ignore[union-attr]
    assert dues == sorted(dues)

    # The digest's own one-click unsubscribe (RFC 8058) stops the digest, not the plan's mail.
    unsubscribe = path_of(digest["List-Unsubscribe"].strip("<>"))
    with httpx.Client(base_url=server.http) as client:
        page = client.get(unsubscribe)
        assert "Only the weekly digest" in page.text
        r = client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
        assert r.status_code == 200 and "no more messages about the weekly digest" in r.text
    assert not any(JORDAN in q for q in run_at(server, "2030-01-13T19:00:00Z"))
    # With the digest off, what was set to come in it comes at once instead.
    third = plan.tasks()[6]
    plan.assign_to_jordan(third["id"])
    (_, _, now) = box.wait(JORDAN, 3)
    assert subject(now).startswith("[Rollout <b>] Assigned to you: ")
    assert wording(third) in parts(now)[0]


def test_unsubscribe_from_the_link_then_subscribe_again_from_the_same_page(
    server: Server,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    box, _ = inbox
    plan = Plan(server)
    first, second, third = plan.tasks()[4:7]
    plan.assign_to_jordan(first["id"])
    (mail,) = box.wait(JORDAN)
    url = path_of(mail["List-Unsubscribe"].strip("<>"))
    with httpx.Client(base_url=server.http) as jordan:
        # RFC 8058: the mail client's POST, no cookie, no form of ours.
        r = jordan.post(
            url,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 200 and "Unsubscribed" in r.text
        page = jordan.get(url)
        assert "is unsubscribed from everything about Rollout &lt;b&gt;" in page.text
        assert f'name="subscribe:{plan.id}"' in page.text
        assert f'name="mode:{plan.id}:assigned"' not in page.text
    plan.assign_to_jordan(second["id"])
    plan.patch(second["id"], {"owner": None})  # a change after it, to wait for
    poll(lambda: plan.task(second["id"])["owner"] is None)
    with httpx.Client(base_url=server.http) as jordan:
        r = jordan.post(
            url,
            data={"step": "preferences", "time_zone": "UTC", f"subscribe:{plan.id}": "yes"},
        )
        assert r.status_code == 200 and f'name="mode:{plan.id}:assigned"' in r.text
    plan.assign_to_jordan(third["id"])
    mails = box.wait(JORDAN, 2)
    assert [subject(m).split(": ", 1)[0] for m in mails] == ["[Rollout <b>] Assigned to you"] * 2
    assert wording(third) in parts(mails[1])[0]


def test_the_digest_tells_what_the_other_side_owes_and_what_changed_this_week(
    server: Server,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    box, _ = inbox
    plan = Plan(server)
    task = plan.tasks()[5]
    plan.assign_to_jordan(task["id"])  # Jordan is on the customer side; Olive, vendor
    box.wait(JORDAN)
    soon = (datetime.now(UTC) + timedelta(days=3)).date()
    milestone = next(t for t in plan.tasks() if t["milestone"])
    plan.patch(milestone["id"], {"due": soon.isoformat()})
    poll(lambda: plan.task(milestone["id"])["due"] == soon.isoformat())
    # Olive's next Monday 08:00 UTC: the history of this week is in it.
    now = datetime.now(UTC) + timedelta(minutes=1)
    monday = now.date() + timedelta(days=(7 - now.weekday()) % 7)
    at = datetime.combine(monday, time(8), tzinfo=UTC)
    if at < now:
        at += timedelta(days=7)
    queued = run_at(server, at.isoformat())
    assert any(q.startswith(f"queued digest to {OWNER}") for q in queued), queued
    digest = next(m for m in box.wait(OWNER) if "Your week" in subject(m))
    text, html = parts(digest)
    owed = text.split("WHAT THE OTHER SIDE OWES YOU", 1)[1].split("\n\n", 1)[0]
    assert wording(task) in owed and "Jordan Lee" in owed
    coming = text.split("MILESTONES COMING UP", 1)[1].split("\n\n", 1)[0]
    assert f"- {soon.isoformat()}: {wording(milestone)}" in coming
    changed = text.split("WHAT CHANGED THIS WEEK", 1)[1].split("\n\n", 1)[0]
    assert f'Olive Owner reassigned the task "{wording(task)}"' in changed
    assert "moved the date of the task" in changed
    assert "What the other side owes you" in html


def test_a_digest_missed_while_the_clock_stood_still_comes_once_when_it_runs_again(
    server: Server,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    """The clock (``tandem notifications run --at``) runs just after Olive's digest moment,
    then not again until two days after the second moment after it: at that pass, one digest
    (not one per missed week, not one per process, not again at the next pass), with what
    changed since her last one; the one after comes on time, a week's worth again."""
    box, _ = inbox
    plan = Plan(server)
    task = plan.tasks()[5]
    plan.assign_to_jordan(task["id"])  # something the other side owes Olive
    box.wait(JORDAN)
    # Olive's digest moment: the hour two hours ago, so the reassignment above falls in the
    # first week after it.
    last = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    r = plan.owner.put(
        "/api/me/notifications", json={"digest_weekday": last.weekday(), "digest_hour": last.hour}
    )
    assert r.status_code == 200, r.text

    def olives(queued: list[str]) -> list[str]:
        return [q for q in queued if q.startswith(f"queued digest to {OWNER}: ")]

    def digests(count: int) -> list[str]:
        poll(lambda: len([m for m in box.to(OWNER) if "Your week" in subject(m)]) >= count)
        return [parts(m)[0] for m in box.to(OWNER) if "Your week" in subject(m)]

    assert len(olives(run_at(server, (last + timedelta(minutes=1)).isoformat()))) == 1
    (first,) = digests(1)
    assert "WHAT CHANGED" not in first  # the reassignment came after it

    # Stopped across last + 7 days and last + 14 days; back two days after the second.
    back = last + timedelta(days=16)
    assert len(olives(run_twice(server, back.isoformat()))) == 1
    assert olives(run_at(server, (back + timedelta(minutes=5)).isoformat())) == []
    (_, caught_up) = digests(2)
    assert f"Digests were missed after {last.date().isoformat()}: this one covers" in caught_up
    changed = caught_up.split(f"WHAT CHANGED SINCE {last.date().isoformat()}", 1)[1]
    assert f'Olive Owner reassigned the task "{wording(task)}"' in changed.split("\n\n", 1)[0]

    # The next moment: on time, this week's changes only (none).
    assert len(olives(run_at(server, (last + timedelta(days=21)).isoformat()))) == 1
    (_, _, on_time) = digests(3)
    assert "Digests were missed" not in on_time and "WHAT CHANGED" not in on_time
    assert "WHAT THE OTHER SIDE OWES YOU" in on_time

    # A pass run as if a year later (--at) holds back none of the ones after it.
    assert len(olives(run_at(server, (last + timedelta(days=365)).isoformat()))) == 1
    assert len(olives(run_at(server, (last + timedelta(days=28)).isoformat()))) == 1

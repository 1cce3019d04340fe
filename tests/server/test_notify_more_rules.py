"""Mentioned, key result moved, risk raised to high and escalation, through a real server, a
pycrdt client making the edits, `tandem notifications run --at` and a real SMTP server.

Each is sent once: not again for edits around a mention, a mention deleted and written back,
the keystrokes of one value, a restart, or two processes running the clock at one moment."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import anyio
import pytest
from pycrdt import Doc, XmlElement, XmlText

from tests.server.test_notifications import (
    JORDAN,
    OWNER,
    Inbox,
    Plan,
    close_clients,  # noqa: F401  (an autouse fixture)
    inbox,  # noqa: F401  (a fixture)
    mail_server,
    parts,
    poll,
    subject,
)
from tests.support.access import invite_and_join
from tests.support.servers import ROOT, Database, Server
from tests.support.yclient import connect, fragment

ROBIN = "robin@customer.example"


@pytest.fixture
def server(database: Database, tmp_path: Path, inbox: tuple[Inbox, int]) -> Iterator[Server]:  # noqa: F811
    srv = mail_server(tmp_path, database, inbox[1]).start()
    yield srv
    srv.stop()


def with_robin(plan: Plan) -> tuple[str, Any]:
    """Robin, an editor on the customer side: her mention reference and her API client."""
    invite_and_join(plan.srv, plan.owner, plan.id, ROBIN, "Robin <i>", "editor", "customer")
    people = plan.owner.get(f"/api/plans/{plan.id}/people").json()["people"]
    ref = next(p["id"] for p in people if p["label"] == "Robin <i>")
    return ref, plan.client(plan.srv.create_token(ROBIN))


def mention(ref: str, label: str, side: str | None = "customer") -> XmlElement:
    return XmlElement("mention", {"id": ref, "label": label, "side": side})


async def arrived(box: Inbox, address: str, count: int = 1) -> None:
    """Wait for the mail while the client's connection goes on sending and receiving."""
    await anyio.to_thread.run_sync(lambda: box.wait(address, count))


def kinds(plan: Plan) -> list[tuple[str, str]]:
    return sorted((n["kind"], n["recipient"]["email"]) for n in plan.notifications())


def test_a_mention_notifies_the_person_once(
    database: Database,
    tmp_path: Path,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    box, port = inbox
    srv = mail_server(tmp_path, database, port).start()
    try:
        plan = Plan(srv)
        robin_ref, _ = with_robin(plan)
        jordan = f"contact:{plan.contact}"

        async def write() -> None:
            async with connect(srv.ws, plan.id, plan.token) as (doc, _):
                # Olive writes a note mentioning Jordan (a contact) and herself.
                note = XmlElement(
                    "paragraph",
                    {},
                    [
                        XmlText("Check <b>the SSO</b> with "),
                        mention(jordan, "Jordan Lee"),
                        XmlText(" and "),
                        mention("user:1", "Olive Owner", "vendor"),
                    ],
                )
                fragment(doc).children.insert(2, note)
                await arrived(box, JORDAN)
                # Text typed around it, the mention deleted and written back: nothing new.
                note.children[0].insert(0, "Please: ")
                await anyio.sleep(0)
                del note.children[1]
                await anyio.sleep(0)
                note.children.insert(1, mention(jordan, "Jordan Lee"))
                await anyio.sleep(0)
                # A second mention of Jordan, in a task after its owner chip, is a new one.
                item = _first_owned_task(doc)
                item.children[0].children.append(mention(jordan, "Jordan Lee"))
                await arrived(box, JORDAN, 2)

        anyio.run(write)
        first, second = box.to(JORDAN)
        assert subject(first) == (
            "[Rollout <b>] Olive Owner mentioned you: Check <b>the SSO</b> with @Jordan Lee "
            "and @Olive Owner"
        )
        text, html = parts(first)
        assert "Olive Owner mentioned you in Rollout <b> (Acme), under Customer onboarding" in text
        assert "Check <b>the SSO</b> with @Jordan Lee" in text
        assert "Check &lt;b&gt;the SSO&lt;/b&gt;" in html and "<b>the SSO" not in html
        assert second["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert 'in the task "' in parts(second)[0]
        # Olive mentioned herself: nothing to her.
        assert box.to(OWNER) == []
    finally:
        srv.stop()

    # After a restart (the materialiser's shadow rebuilt), a mention of Robin by Olive is sent;
    # Jordan's are not repeated.
    srv.start()
    try:
        plan.owner = plan.client(plan.token)

        async def more() -> None:
            async with connect(srv.ws, plan.id, plan.token) as (doc, _):
                fragment(doc).children.append(
                    XmlElement("paragraph", {}, [XmlText("Over to "), mention(robin_ref, "Robin")])
                )
                await arrived(box, ROBIN, 2)  # her invitation, then this

        anyio.run(more)
        assert subject(box.to(ROBIN)[1]).startswith("[Rollout <b>] Olive Owner mentioned you: ")
        assert kinds(plan) == [
            ("mentioned", JORDAN),
            ("mentioned", JORDAN),
            ("mentioned", ROBIN),
        ]
        assert len(box.to(JORDAN)) == 2
    finally:
        srv.stop()


def _first_owned_task(doc: Doc) -> XmlElement:
    def owned(item: XmlElement) -> bool:
        para = item.children[0]
        return any(isinstance(c, XmlElement) and c.tag == "mention" for c in para.children)

    def walk(parent: Any) -> XmlElement | None:
        for child in parent.children:
            if isinstance(child, XmlElement):
                if child.tag == "taskItem" and owned(child):
                    return child
                if (found := walk(child)) is not None:
                    return found
        return None

    found = walk(fragment(doc))
    assert found is not None
    return found


def cell(doc: Doc, table: int, row: int, column: int) -> XmlElement:
    """The paragraph of a cell: ``table`` counts the document's tables, ``row`` the data rows."""
    tables = [c for c in fragment(doc).children if isinstance(c, XmlElement) and c.tag == "table"]
    cells = list(list(tables[table].children)[row + 1].children)
    return next(iter(cells[column].children))


def type_into(doc: Doc, paragraph: XmlElement, value: str) -> None:
    """Clear the paragraph, then type ``value`` key by key, one update per key."""
    with doc.transaction():
        while len(paragraph.children):
            del paragraph.children[0]
        paragraph.children.append(XmlText(""))
    text = paragraph.children[0]
    for i, ch in enumerate(value):
        text.insert(i, ch)


def first_row(plan: Plan) -> tuple[str, str]:
    """The first key result's current value and the first risk's severity."""
    krs = plan.owner.get(f"/api/plans/{plan.id}/key-results").json()["key_results"]
    risks = plan.owner.get(f"/api/plans/{plan.id}/risks").json()["risks"]
    return str(krs[0]["current"]), str(risks[0]["severity"])


def olive_sets(srv: Server, plan: Plan, value: str = "40", severity: str = "medium") -> None:
    """Olive's own values to start from (nothing goes to her for her own changes)."""

    async def typing() -> None:
        async with connect(srv.ws, plan.id, plan.token) as (doc, _):
            type_into(doc, cell(doc, 1, 0, 3), value)
            type_into(doc, cell(doc, 2, 0, 1), severity)

    anyio.run(typing)
    poll(lambda: first_row(plan) == (value, severity))


async def wait(check: Any) -> None:
    """``poll`` from inside a test's event loop."""
    await anyio.to_thread.run_sync(lambda: poll(check))


def test_key_result_moved_and_risk_raised_to_high_reach_the_owners_once(
    database: Database,
    tmp_path: Path,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    box, port = inbox
    # Long enough for the second half of the value below to be typed while it waits.
    srv = mail_server(tmp_path, database, port, TANDEM_NOTIFY_SETTLE_SECONDS="8").start()
    try:
        plan = Plan(srv)
        with_robin(plan)
        robin_token = srv.create_token(ROBIN)

        def current(row: int) -> str:
            rows = plan.owner.get(f"/api/plans/{plan.id}/key-results").json()["key_results"]
            return str(rows[row]["current"])

        async def robin_edits() -> None:
            async with connect(srv.ws, plan.id, robin_token) as (doc, _):
                # Tables: Key contacts, Key results, Risks; Current is the 4th column.
                value = cell(doc, 1, 0, 3)
                type_into(doc, value, "1")
                # Materialised and queued on its own; the rest of the value is typed after.
                await anyio.to_thread.run_sync(lambda: poll(lambda: current(0) == "1"))
                await anyio.to_thread.run_sync(lambda: poll(lambda: plan.notifications()))
                text = value.children[0]
                text.insert(1, "2")
                text.insert(2, "0")
                type_into(doc, cell(doc, 2, 0, 1), "High")
                await arrived(box, OWNER, 2)

        anyio.run(robin_edits)
        by_subject = {subject(m): m for m in box.to(OWNER)}
        assert set(by_subject) == {
            "[Rollout <b>] Key result moved: e.g. Weekly active users: 120",
            "[Rollout <b>] Risk raised to high: e.g. Key people not available for training",
        }
        kr = by_subject["[Rollout <b>] Key result moved: e.g. Weekly active users: 120"]
        text, html = parts(kr)
        # One message, for the value as typed, from what it was before the first key.
        assert "e.g. Weekly active users: (empty) -> 120 users" in text
        assert "Changed by Robin <i>." in text and "Changed by Robin &lt;i&gt;." in html
        risk = by_subject[
            "[Rollout <b>] Risk raised to high: e.g. Key people not available for training"
        ]
        assert "(it was high, medium or low?)" in parts(risk)[0]
        assert "Raised by Robin <i>." in parts(risk)[0]

        # Olive's own changes to a key result and the risk: nothing to her (the only owner).
        async def olive_edits() -> None:
            async with connect(srv.ws, plan.id, plan.token) as (doc, _):
                type_into(doc, cell(doc, 1, 1, 3), "7")
                type_into(doc, cell(doc, 2, 0, 1), "low")
                type_into(doc, cell(doc, 2, 0, 1), "high")

        anyio.run(olive_edits)
        poll(lambda: current(1) == "7")

        # Robin mentions Olive afterwards: that mail is the only new one.
        async def robin_mentions() -> None:
            async with connect(srv.ws, plan.id, robin_token) as (doc, _):
                fragment(doc).children.append(
                    XmlElement("paragraph", {}, [mention("user:1", "Olive Owner", "vendor")])
                )
                await arrived(box, OWNER, 3)

        anyio.run(robin_mentions)
        assert kinds(plan) == [
            ("kr_moved", OWNER),
            ("mentioned", OWNER),
            ("risk_high", OWNER),
        ]
    finally:
        srv.stop()


def test_a_value_typed_back_before_it_is_sent_sends_nothing(
    database: Database,
    tmp_path: Path,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    """Robin moves a key result from 40 to 45 and raises a risk to high, then types both back
    while their messages wait: nothing is sent for either. A value that still moved at the end
    of its keys is sent once, as it ended; once sent, it is not taken back, and Sam moving it
    back is a message of its own."""
    box, port = inbox
    srv = mail_server(tmp_path, database, port, TANDEM_NOTIFY_SETTLE_SECONDS="6").start()
    try:
        plan = Plan(srv)
        with_robin(plan)
        robin_token = srv.create_token(ROBIN)
        sam = "sam@customer.example"
        invite_and_join(srv, plan.owner, plan.id, sam, "Sam Lee", "editor", "customer")

        def row0() -> tuple[str, str]:
            return first_row(plan)

        def subjects() -> list[str]:
            return sorted(subject(m) for m in box.to(OWNER))

        olive_sets(srv, plan)
        moved = "[Rollout <b>] Key result moved: e.g. Weekly active users: "

        async def robin_types_back() -> None:
            async with connect(srv.ws, plan.id, robin_token) as (doc, _):
                value = cell(doc, 1, 0, 3).children[0]
                del value[1:2]  # 40 -> 4 -> 45, a key at a time
                value.insert(1, "5")
                type_into(doc, cell(doc, 2, 0, 1), "High")
                # Materialised and queued, then typed back while the two messages wait.
                await wait(lambda: row0() == ("45", "High") and len(plan.notifications()) == 2)
                del value[1:2]
                value.insert(1, "0")
                type_into(doc, cell(doc, 2, 0, 1), "medium")
                await wait(lambda: row0() == ("40", "medium"))
                # Then the second key result moves: its message is due after theirs would be.
                type_into(doc, cell(doc, 1, 1, 3), "7")
                await wait(lambda: fence in subjects())

        fence = "[Rollout <b>] Key result moved: e.g. Time to first value: 7"
        anyio.run(robin_types_back)
        assert subjects() == [fence]
        assert [n["subject"] for n in plan.notifications()] == [fence]

        # Typed back part of the way, then on: one message, with the value as it ended.
        async def robin_moves() -> None:
            async with connect(srv.ws, plan.id, robin_token) as (doc, _):
                value = cell(doc, 1, 0, 3).children[0]
                del value[1:2]
                value.insert(1, "5")
                await wait(lambda: row0()[0] == "45" and len(plan.notifications()) == 2)
                del value[1:2]
                value.insert(1, "8")
                await arrived(box, OWNER, 2)

        anyio.run(robin_moves)
        assert subjects() == [fence, moved + "48"]
        text = parts(box.to(OWNER)[-1])[0]
        assert "e.g. Weekly active users: 40 -> 48 users" in text

        # Sent: Sam moving it back is a change of its own (and the sent one stays sent).
        async def sam_moves_back() -> None:
            async with connect(srv.ws, plan.id, srv.create_token(sam)) as (doc, _):
                type_into(doc, cell(doc, 1, 0, 3), "40")
                await arrived(box, OWNER, 3)

        anyio.run(sam_moves_back)
        assert subject(box.to(OWNER)[-1]) == moved + "40"
        assert "e.g. Weekly active users: 48 -> 40 users" in parts(box.to(OWNER)[-1])[0]
        poll(lambda: [n["state"] for n in plan.notifications()] == ["sent"] * 3)
    finally:
        srv.stop()


def test_a_value_moved_with_another_field_in_one_update_is_still_sent(
    database: Database,
    tmp_path: Path,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    """Robin sets a key result's target and its current value in one update (a paste, an
    undo): the value's history entry is then not the row's newest (its target's is, made
    after it), and the move is still sent, with the row as it now is."""
    box, port = inbox
    srv = mail_server(tmp_path, database, port, TANDEM_NOTIFY_SETTLE_SECONDS="1").start()
    try:
        plan = Plan(srv)
        with_robin(plan)

        async def robin_edits() -> None:
            async with connect(srv.ws, plan.id, srv.create_token(ROBIN)) as (doc, _):
                with doc.transaction():
                    for column, value in ((2, "500 <b>"), (3, "120")):
                        paragraph = cell(doc, 1, 0, column)
                        while len(paragraph.children):
                            del paragraph.children[0]
                        paragraph.children.append(XmlText(value))
                await arrived(box, OWNER)

        anyio.run(robin_edits)
        (mail,) = box.to(OWNER)
        assert subject(mail) == "[Rollout <b>] Key result moved: e.g. Weekly active users: 120"
        text, html = parts(mail)
        assert "e.g. Weekly active users: (empty) -> 120 users" in text
        assert "Target: 500 <b> users, from a baseline of Today's figure." in text
        assert "Target: 500 &lt;b&gt; users" in html
        assert kinds(plan) == [("kr_moved", OWNER)]
    finally:
        srv.stop()


def test_the_digest_holds_a_value_as_it_ended(
    database: Database,
    tmp_path: Path,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    """Olive takes key results in her digest. Robin types one value in two goes while its
    message is held, and types another and back: the digest says where the first ended, and
    nothing of the second."""
    box, port = inbox
    srv = mail_server(tmp_path, database, port, TANDEM_NOTIFY_SETTLE_SECONDS="1").start()
    try:
        plan = Plan(srv)
        with_robin(plan)
        url = f"/api/plans/{plan.id}/notification-preferences"
        r = plan.owner.put(url, json={"kinds": {"kr_moved": "digest"}})
        assert r.status_code == 200, r.text
        moved = "[Rollout <b>] Key result moved: e.g. "

        def held() -> list[str]:
            return [n["subject"] for n in plan.notifications() if n["state"] == "held"]

        async def robin_edits() -> None:
            async with connect(srv.ws, plan.id, srv.create_token(ROBIN)) as (doc, _):
                type_into(doc, cell(doc, 1, 0, 3), "1")
                type_into(doc, cell(doc, 1, 1, 3), "7")
                await anyio.to_thread.run_sync(lambda: poll(lambda: len(held()) == 2))
                text = cell(doc, 1, 0, 3).children[0]
                text.insert(1, "2")
                text.insert(2, "0")
                del cell(doc, 1, 1, 3).children[0][0:1]
                await anyio.to_thread.run_sync(
                    lambda: poll(lambda: held() == [moved + "Weekly active users: 120"])
                )

        anyio.run(robin_edits)
        done = srv.cli("notifications", "run", "--at", "2030-01-07T08:00:00Z")
        assert done.returncode == 0, done.stderr
        digest = next(m for m in box.wait(OWNER) if "Your week in Tandem" in subject(m))
        text, html = parts(digest)
        assert f"- {moved}Weekly active users: 120" in text.splitlines()
        assert "Time to first value" not in text
        assert "Rollout &lt;b&gt;] Key result moved: e.g. Weekly active users: 120" in html
        assert [m for m in box.to(OWNER) if "] Key result moved" in subject(m)] == []
    finally:
        srv.stop()


def test_a_value_typed_on_or_back_after_it_was_sent_is_corrected_once(
    database: Database,
    tmp_path: Path,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    """Robin moves a key result from 40 to 45; once that is sent, she types it to 4 and back
    to 45 (nothing to correct), then on to 48, then back to 40, each folded into the same
    history entry (the same person within a minute): each time the value ends elsewhere than
    what they were sent, the owners get one correction, from what they were last sent."""
    box, port = inbox
    srv = mail_server(tmp_path, database, port, TANDEM_NOTIFY_SETTLE_SECONDS="6").start()
    try:
        plan = Plan(srv)
        with_robin(plan)

        def current() -> str:
            rows = plan.owner.get(f"/api/plans/{plan.id}/key-results").json()["key_results"]
            return str(rows[0]["current"])

        olive_sets(srv, plan)
        fence = "[Rollout <b>] Key result moved: e.g. Time to first value: 7"

        async def robin_edits() -> None:
            async with connect(srv.ws, plan.id, srv.create_token(ROBIN)) as (doc, _):
                value = cell(doc, 1, 0, 3).children[0]
                del value[1:2]  # a key at a time: 40 -> 4 -> 45
                value.insert(1, "5")
                await arrived(box, OWNER)
                # 45 -> 4: a correction waits; typed back to what was sent, it is withdrawn.
                del value[1:2]
                await wait(lambda: [n["state"] for n in plan.notifications()] == ["queued", "sent"])
                value.insert(1, "5")
                await wait(lambda: len(plan.notifications()) == 1)
                for count, key in enumerate("80", start=2):
                    del value[1:2]  # 45 -> 4 -> 48, then 48 -> 4 -> 40
                    value.insert(1, key)
                    await arrived(box, OWNER, count)
                # Then the second key result moves: its message is due after any other.
                type_into(doc, cell(doc, 1, 1, 3), "7")
                await anyio.to_thread.run_sync(
                    lambda: poll(lambda: fence in [subject(m) for m in box.to(OWNER)])
                )

        anyio.run(robin_edits)
        mails = box.to(OWNER)
        corrected = "[Rollout <b>] Key result corrected: e.g. Weekly active users: "
        assert [subject(m) for m in mails] == [
            "[Rollout <b>] Key result moved: e.g. Weekly active users: 45",
            corrected + "now 48 (was 45)",
            corrected + "back to 40 (was 48)",
            fence,
        ]
        text, html = parts(mails[1])
        assert "e.g. Weekly active users: now 48 users (was 45)" in text
        assert "changed again after we wrote to you" in text and "Changed by Robin <i>." in text
        assert "Changed by Robin &lt;i&gt;." in html and "Robin <i>" not in html
        text, html = parts(mails[2])
        assert "e.g. Weekly active users: back to 40 users (was 48)" in text
        assert "back to <strong>40</strong> users (was 48)" in html
        poll(lambda: [n["state"] for n in plan.notifications()] == ["sent"] * 4)
    finally:
        srv.stop()


def test_a_rebuild_sends_nothing_again(
    database: Database,
    tmp_path: Path,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    """Robin moves a key result from 40 to 45 and raises a risk to high; both are sent. The
    plan is rebuilt from its log (its commitment history written anew), then Robin, within the
    minute that folds her keys into the same entries, types the value to 4 and back to 45 and
    the severity again: the owners were told all that, and get nothing more."""
    box, port = inbox
    srv = mail_server(tmp_path, database, port, TANDEM_NOTIFY_SETTLE_SECONDS="2").start()
    try:
        plan = Plan(srv)
        with_robin(plan)

        def row0() -> tuple[str, str]:
            return first_row(plan)

        olive_sets(srv, plan)
        fence = "[Rollout <b>] Key result moved: e.g. Time to first value: 7"

        def other_plan() -> None:
            r = plan.owner.post(
                "/api/plans",
                json={"title": "Other", "customer": "Beta", "template": "onboarding-roadmap"},
            )
            assert r.status_code == 201, r.text
            url = f"/api/plans/{r.json()['id']}/history"
            poll(lambda: plan.owner.get(url).json()["events"])

        async def robin_edits() -> None:
            async with connect(srv.ws, plan.id, srv.create_token(ROBIN)) as (doc, _):
                value = cell(doc, 1, 0, 3).children[0]
                del value[1:2]  # 40 -> 4 -> 45
                value.insert(1, "5")
                type_into(doc, cell(doc, 2, 0, 1), "High")
                await arrived(box, OWNER, 2)
                # History written since in another plan: new entries cannot take the old ids.
                await anyio.to_thread.run_sync(other_plan)
                done = await anyio.to_thread.run_sync(lambda: srv.cli("plans", "rebuild", plan.id))
                assert done.returncode == 0, done.stderr
                del value[1:2]  # 45 -> 4 -> 45: what the owners were sent
                value.insert(1, "5")
                type_into(doc, cell(doc, 2, 0, 1), "High")
                await anyio.to_thread.run_sync(lambda: poll(lambda: row0() == ("45", "High")))
                # Then the second key result moves: its message is due after any other.
                type_into(doc, cell(doc, 1, 1, 3), "7")
                await anyio.to_thread.run_sync(
                    lambda: poll(lambda: fence in [subject(m) for m in box.to(OWNER)])
                )

        anyio.run(robin_edits)
        assert sorted(subject(m) for m in box.to(OWNER)) == [
            fence,
            "[Rollout <b>] Key result moved: e.g. Weekly active users: 45",
            "[Rollout <b>] Risk raised to high: e.g. Key people not available for training",
        ]
        done = srv.cli("notifications", "run")
        assert done.returncode == 0, done.stderr
        assert len(box.to(OWNER)) == 3
        # Recorded as sent once the dispatcher has the mail server's answer.
        poll(lambda: [n["state"] for n in plan.notifications()] == ["sent"] * 3)
    finally:
        srv.stop()


def test_a_risk_lowered_after_it_was_sent_is_corrected(
    database: Database,
    tmp_path: Path,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    """Robin raises a risk from medium to high; once that is sent, she types it back to
    medium within the minute that folds her keys into the same history entry: the owners
    are told it is no longer high. Typed to high again and to low before that is sent, the
    owners hear nothing more (it is still not high)."""
    box, port = inbox
    srv = mail_server(tmp_path, database, port, TANDEM_NOTIFY_SETTLE_SECONDS="6").start()
    try:
        plan = Plan(srv)
        with_robin(plan)

        def severity() -> str:
            return str(plan.owner.get(f"/api/plans/{plan.id}/risks").json()["risks"][0]["severity"])

        olive_sets(srv, plan)
        fence = "[Rollout <b>] Key result moved: e.g. Time to first value: 7"

        async def robin_edits() -> None:
            async with connect(srv.ws, plan.id, srv.create_token(ROBIN)) as (doc, _):
                type_into(doc, cell(doc, 2, 0, 1), "High")
                await arrived(box, OWNER)
                type_into(doc, cell(doc, 2, 0, 1), "medium")
                await arrived(box, OWNER, 2)
                # High again, and low before that is sent: nothing to tell.
                type_into(doc, cell(doc, 2, 0, 1), "high")
                await wait(lambda: [n["state"] for n in plan.notifications()][0] == "queued")
                type_into(doc, cell(doc, 2, 0, 1), "low")
                await wait(lambda: len(plan.notifications()) == 2 and severity() == "low")
                # Then a key result moves: its message is due after any other.
                type_into(doc, cell(doc, 1, 1, 3), "7")
                await wait(lambda: fence in [subject(m) for m in box.to(OWNER)])

        anyio.run(robin_edits)
        mails = box.to(OWNER)
        risk = "e.g. Key people not available for training"
        assert [subject(m) for m in mails] == [
            f"[Rollout <b>] Risk raised to high: {risk}",
            f"[Rollout <b>] Risk no longer high: {risk} (now medium)",
            fence,
        ]
        text, html = parts(mails[1])
        assert "changed again after we wrote to you: it is no longer high" in text
        assert "(now medium, was High):" in text and f"  {risk}" in text
        assert "Changed by Robin <i>." in text and "Raised by" not in text
        assert "<h1>Risk no longer high</h1>" in html and "Changed by Robin &lt;i&gt;." in html
        assert "(now <strong>medium</strong>, was High)" in html
        poll(lambda: [n["state"] for n in plan.notifications()] == ["sent"] * 3)
    finally:
        srv.stop()


def run_twice(srv: Server, at: str) -> list[str]:
    """Two `tandem notifications run --at` processes at one moment: the lines they queued."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "server", "notifications", "run", "--at", at],
            env=srv.env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    return [line for out, _ in outs for line in out.splitlines() if line.startswith("queued")]


def reminders(queued: list[str]) -> list[str]:
    """The reminders among what a pass queued, without the weekly digests it also queues."""
    return [line for line in queued if not line.startswith("queued digest")]


def test_due_soon_overdue_and_escalation_each_once(
    server: Server,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    box, _ = inbox
    plan = Plan(server)
    task = plan.tasks()[4]
    plan.assign_to_jordan(task["id"])
    plan.patch(task["id"], {"due": "2030-01-10"})
    box.wait(JORDAN)  # the assigned mail

    steps = [
        ("2030-01-01", []),
        ("2030-01-08", [f"queued due_soon to {JORDAN}"]),
        ("2030-01-09", []),
        ("2030-01-11", [f"queued overdue to {JORDAN}"]),
        ("2030-01-12", []),  # two days overdue: not yet
        ("2030-01-13", [f"queued escalation to {OWNER}"]),
        ("2030-01-14", []),
        ("2030-01-20", []),
    ]
    digests = []
    for at, expected in steps:
        queued = run_twice(server, at)
        assert [line.split(":")[0] for line in reminders(queued)] == expected, (at, queued)
        week = date.fromisoformat(at).isocalendar()[:2]
        digests += [(week, line.split(":")[0]) for line in queued if "digest" in line.split(":")[0]]
    # The weekly digests the same passes queue (Monday 08:00 UTC by default; the 1st and the 8th
    # are the Tuesdays after, and no pass ran from the 14th at 00:00 to the 20th, so the 20th's
    # sends the 14th's): each person's once a week, though two processes ran each pass.
    assert {week for week, _ in digests} == {(2030, 1), (2030, 2), (2030, 3)}, digests
    assert len(digests) == len(set(digests)), digests
    escalation = next(m for m in box.wait(OWNER) if "days overdue" in subject(m))
    assert subject(escalation).startswith(
        "[Rollout <b>] 3 days overdue, with Jordan Lee (customer): "
    )
    text, html = parts(escalation)
    assert "is 3 days overdue" in text and "It was due 2030-01-10" in text
    assert "The ball is in the customer's court: Jordan Lee." in text
    assert "customer's court: <strong>Jordan Lee</strong>" in html
    assert "/act/" not in text  # the owners' links are the plan's, not Jordan's
    assert escalation["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    box.wait(JORDAN, 3)
    assert kinds(plan) == [
        ("assigned", JORDAN),
        ("due_soon", JORDAN),
        ("escalation", OWNER),
        ("overdue", JORDAN),
    ]

    # A new due date arms all three again; a done task is not escalated.
    plan.patch(task["id"], {"due": "2030-02-10"})
    assert [q.split(":")[0] for q in reminders(run_twice(server, "2030-02-14"))] == [
        f"queued overdue to {JORDAN}",
        f"queued escalation to {OWNER}",
    ]
    plan.patch(task["id"], {"status": "done"})
    plan.patch(task["id"], {"due": "2030-03-01"})
    assert reminders(run_twice(server, "2030-03-10")) == []


def test_escalation_turned_off(
    database: Database,
    tmp_path: Path,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    box, port = inbox
    srv = mail_server(tmp_path, database, port, TANDEM_NOTIFY_ESCALATE_DAYS="0").start()
    try:
        plan = Plan(srv)
        task = plan.tasks()[4]
        plan.assign_to_jordan(task["id"])
        plan.patch(task["id"], {"due": "2030-01-10"})
        box.wait(JORDAN)
        queued = run_twice(srv, "2030-01-30")
        assert [q.split(":")[0] for q in queued] == [f"queued overdue to {JORDAN}"]
    finally:
        srv.stop()

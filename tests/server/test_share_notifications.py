"""The Share page lists what was sent about the plan and what failed (server-rendered): kind,
recipient, subject, state, attempts, last error and time, with user text escaped, and an empty
state before anything was sent. Who may open the page: tests/server/test_access_matrix.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.test_notifications import (
    JORDAN,
    Inbox,
    Plan,
    mail_server,
    poll,
    start_smtp,
)
from tests.support.servers import Database, free_port

ROW = re.compile(r'<tr data-notification="(\d+)" data-state="(\w+)">(.*?)</tr>', re.S)


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while Plan.clients:
        Plan.clients.pop().close()


def rows(plan: Plan) -> list[tuple[str, str]]:
    """(state, the row's text with tags dropped and entities kept) of each listed notification."""
    r = plan.owner.get(f"/plans/{plan.id}/share")
    assert r.status_code == 200, r.text
    section = r.text.split('id="notifications"', 1)[1]
    return [(state, re.sub(r"<[^>]+>", " ", cells)) for _id, state, cells in ROW.findall(section)]


def test_the_share_page_lists_failed_then_sent_notifications(
    database: Database, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens yet: the first attempt fails
    srv = mail_server(tmp_path, database, port, TANDEM_NOTIFY_RETRY_SECONDS="0.3").start()
    box = Inbox()
    controller = None
    try:
        plan = Plan(srv)  # its title is "Rollout <b>"
        page = plan.owner.get(f"/plans/{plan.id}/share").text
        assert 'id="notifications-empty"' in page and "<tr data-notification" not in page
        plan.assign_to_jordan(plan.tasks()[4]["id"])
        poll(lambda: [n for n in plan.notifications() if n["last_error"]])
        ((state, text),) = rows(plan)
        assert state == "queued"
        assert "Assigned" in text and "Jordan Lee" in text and JORDAN in text
        assert "Retrying" in text and "ConnectionRefusedError" in text
        # The title is shown as text, escaped once: never as markup.
        page = plan.owner.get(f"/plans/{plan.id}/share").text
        assert "[Rollout &lt;b&gt;] Assigned to you" in page
        assert "[Rollout <b>]" not in page
        controller = start_smtp(box, port)
        box.wait(JORDAN)
        poll(lambda: all(n["state"] == "sent" for n in plan.notifications()))
        ((state, text),) = rows(plan)
        assert state == "sent" and "Sent" in text and "ConnectionRefusedError" not in text
        assert re.search(r"\b2\b", text)  # two attempts: the refused one and the one that went
    finally:
        if controller is not None:
            controller.stop()
        srv.stop()

"""The whole action flow in Chromium: a customer contact with no account gets the *assigned*
mail, opens its *mark complete* link in a fresh browser context, confirms, and the owner's
browser, with the plan open, sees the task ticked live; the history names the contact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser.conftest import ARGS, CHROMIUM, PASSWORD
from tests.server.test_notifications import (
    JORDAN,
    OWNER,
    Inbox,
    Plan,
    close_clients,  # noqa: F401  (an autouse fixture)
    links,
    mail_server,
    parts,
    start_smtp,
    wording,
)
from tests.support.servers import Database, Server, free_port

pytestmark = pytest.mark.browser


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    box, port = Inbox(), free_port()
    controller = start_smtp(box, port)
    yield box, port
    controller.stop()


def test_contact_completes_a_task_from_the_mail_and_the_owner_sees_it_live(
    tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    box, port = smtp
    db = Database("sqlite", tmp_path, at_head=True)
    srv: Server = mail_server(tmp_path, db, port).start()
    try:
        # Set up before Playwright starts: its sync API keeps an event loop in this thread.
        plan = Plan(srv)
        task = plan.tasks()[4]
        plan.assign_to_jordan(task["id"])
        (mail,) = box.wait(JORDAN)
        complete = links(parts(mail)[0])["complete"]
        text = wording(task)

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                owner = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                owner.goto(f"{srv.http}/login")
                owner.fill("#email", OWNER)
                owner.fill("#password", PASSWORD)
                owner.click("button[type=submit]")
                owner.wait_for_url(f"{srv.http}/")
                owner.goto(f"{srv.http}/plans/{plan.id}")
                expect(owner.locator("#connection")).to_have_attribute("data-state", "connected")
                expect(owner.locator("#editor")).to_have_attribute("data-synced", "true")
                item = owner.locator("#editor li[data-checked]", has_text=text)
                expect(item).to_have_attribute("data-checked", "false")

                # Jordan: no account, no cookie, a fresh context; the link only asks first.
                jordan = browser.new_context().new_page()
                jordan.goto(complete)
                expect(jordan.locator("h1")).to_have_text("Mark this task complete?")
                expect(jordan.locator("main")).to_contain_text(text)
                expect(item).to_have_attribute("data-checked", "false")
                jordan.click("button[type=submit]")
                expect(jordan.locator("h1")).to_have_text("Marked complete")

                # The owner's open editor shows the tick without a reload.
                expect(item).to_have_attribute("data-checked", "true")
                owner.goto(f"{srv.http}/plans/{plan.id}/history")
                expect(owner.locator("main")).to_contain_text("Jordan Lee, by email link")

                # The same link again: used, said plainly.
                jordan.goto(complete)
                expect(jordan.locator("main")).to_contain_text("already used")
            finally:
                browser.close()
    finally:
        srv.stop()
        db.drop()

"""Notifications through a real SMTP server (aiosmtpd on loopback), read as a mail client would.

Assigned and completed mail, its action links (confirm on GET, act once on POST, through the
live room, named in the commitment history), every way a link is refused, the unsubscribe
headers and page, SMTP down then up, and no repeat after a rebuild and a restart.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from aiosmtpd.controller import Controller
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from pycrdt import Doc, XmlElement, XmlText

from tests.support.access import PASSWORD, api, invite_and_join
from tests.support.servers import Database, Server, free_port
from tests.support.yclient import connect, fragment

SECRET = "test-secret-key-not-for-production"
OWNER = "owner@vendor.example"
JORDAN = "jordan@customer.example"


class Inbox:
    """What the SMTP server received, with a wait that wakes on each message."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.cond = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.cond:
            self.messages.append(message)  # type: ignore[arg-type]
            self.cond.notify_all()
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in m["To"]]

    def wait(self, address: str, count: int = 1, timeout: float = 20) -> list[EmailMessage]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.to(address)) >= count, timeout)
        assert ok, f"no mail to {address}: {[m['To'] for m in self.messages]}"
        return self.to(address)


def start_smtp(box: Inbox, port: int) -> Controller:
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


def mail_server(tmp: Path, db: Database, smtp_port: int, **env: str) -> Server:
    srv = Server(data_dir=tmp, database_url=db.url)
    srv.extra_env.update(
        {
            "TANDEM_SMTP_HOST": "127.0.0.1",
            "TANDEM_SMTP_PORT": str(smtp_port),
            "TANDEM_SMTP_FROM": "tandem@vendor.example",
            "TANDEM_BASE_URL": srv.http,
            "TANDEM_MATERIALISE_QUIET_SECONDS": "0.05",
            # The server's own reminder clock runs at today's date: tests run it with --at.
            "TANDEM_NOTIFY_CLOCK_SECONDS": "0",
            **env,
        }
    )
    return srv


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while Plan.clients:
        Plan.clients.pop().close()


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box = Inbox()
    port = free_port()
    controller = start_smtp(box, port)
    yield box, port
    controller.stop()


@pytest.fixture
def server(database: Database, tmp_path: Path, inbox: tuple[Inbox, int]) -> Iterator[Server]:
    srv = mail_server(tmp_path, database, inbox[1]).start()
    yield srv
    srv.stop()


def subject(message: EmailMessage) -> str:
    # A long subject may be folded right after "Subject:"; a mail client shows it unfolded.
    return str(message["Subject"]).strip()


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None, message
    return text.get_content(), html.get_content()


def links(text: str) -> dict[str, str]:
    found = re.findall(r"https?://\S+/act/(\w+)/\S+", text)
    urls = re.findall(r"https?://\S+/act/\w+/\S+", text)
    return dict(zip(found, urls, strict=True))


def wording(task: dict[str, Any]) -> str:
    """A task's text without its owner's chip, as messages and pages show it."""
    text = task["text"]
    if task.get("owner"):
        text = text.replace(f"@{task['owner']['label']}", " ", 1)
    return " ".join(text.split())


class Hrefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [v for k, v in attrs if tag == "a" and k == "href" and v]


def html_links(html: str) -> dict[str, str]:
    parser = Hrefs()
    parser.feed(html)
    return {u.split("/act/")[1].split("/")[0]: u for u in parser.hrefs if "/act/" in u}


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def set_contact(doc: Doc, row: int, name: str, email: str) -> None:
    """Fill the Name and Email cells of the Key contacts table's ``row``-th data row."""
    table = next(
        c for c in fragment(doc).children if isinstance(c, XmlElement) and c.tag == "table"
    )
    cells = list(list(table.children)[row + 1].children)
    with doc.transaction():
        for index, value in ((0, name), (2, email)):
            paragraph = next(iter(cells[index].children))
            while len(paragraph.children):
                del paragraph.children[0]
            paragraph.children.append(XmlText(value))


def poll(fn, timeout: float = 15.0) -> Any:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class Plan:
    """A plan (the onboarding roadmap) whose owner assigns tasks to Jordan Lee, a Key contacts
    row with an email and no account."""

    clients: list[httpx.Client] = []

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        srv.create_user(OWNER, "Olive Owner", PASSWORD)
        self.token = srv.create_token(OWNER)
        self.owner = self.client(self.token)
        r = self.owner.post(
            "/api/plans",
            json={"title": "Rollout <b>", "customer": "Acme", "template": "onboarding-roadmap"},
        )
        assert r.status_code == 201, r.text
        self.id = r.json()["id"]
        anyio.run(self._fill_contact, "Jordan Lee", JORDAN)
        self.contact = self.contacts()[0]["id"]

    def client(self, token: str) -> httpx.Client:
        c = api(self.srv, token)
        Plan.clients.append(c)
        return c

    async def _fill_contact(self, name: str, email: str) -> None:
        async with connect(self.srv.ws, self.id, self.token) as (doc, _):
            set_contact(doc, 0, name, email)
            await anyio.sleep(0)
        poll(lambda: self.contacts()[0]["email"] == email)

    def contacts(self) -> list[dict[str, Any]]:
        r = self.owner.get(f"/api/plans/{self.id}/contacts")
        return r.json()["contacts"]

    def tasks(self) -> list[dict[str, Any]]:
        return self.owner.get(f"/api/plans/{self.id}/tasks").json()["tasks"]

    def task(self, task_id: str) -> dict[str, Any]:
        return next(t for t in self.tasks() if t["id"] == task_id)

    def patch(self, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.owner.patch(f"/api/plans/{self.id}/tasks/{task_id}", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def assign_to_jordan(self, task_id: str) -> None:
        owner = {"id": f"contact:{self.contact}", "label": "Jordan Lee", "side": "customer"}
        self.patch(task_id, {"owner": owner})

    def notifications(self) -> list[dict[str, Any]]:
        r = self.owner.get(f"/api/plans/{self.id}/notifications")
        assert r.status_code == 200, r.text
        return r.json()["notifications"]


def test_assigned_mail_acts_once_through_the_room(server: Server, inbox: tuple[Inbox, int]) -> None:
    box, _ = inbox
    plan = Plan(server)
    task = plan.tasks()[4]  # a task, not a milestone
    plan.assign_to_jordan(task["id"])
    (mail,) = box.wait(JORDAN)

    # Headers as a mail client reads them, RFC 8058 one-click unsubscribe included.
    assert mail["To"].addresses[0].display_name == "Jordan Lee"
    assert mail["From"] == "tandem@vendor.example"
    assert subject(mail).startswith("[Rollout <b>] Assigned to you: ")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = re.fullmatch(r"<(https?://\S+/unsubscribe/\S+)>", mail["List-Unsubscribe"])
    assert unsubscribe is not None
    assert mail.get_content_type() == "multipart/alternative"
    text, html = parts(mail)
    assert wording(task) in text and "Olive Owner assigned you a task" in text
    assert f"Due {task['due']}" in text
    # The HTML part escapes what people typed.
    assert "Rollout &lt;b&gt;" in html and "Rollout <b>" not in html
    by_text, by_html = links(text), html_links(html)
    assert set(by_text) == {"complete", "due", "blocked"} and by_text == by_html
    assert unsubscribe.group(1) in text

    with httpx.Client(base_url=server.http) as jordan:
        # Every link opens a confirmation page; a GET changes nothing.
        for action, url in by_text.items():
            page = jordan.get(path_of(url))
            assert page.status_code == 200, (action, page.text)
            assert 'method="post"' in page.text and wording(task) in page.text
        assert jordan.get(path_of(unsubscribe.group(1))).status_code == 200
        assert plan.task(task["id"])["status"] != "done"

        async def confirm_while_watching() -> None:
            # An open editor sees the tick at once, through the room.
            async with connect(server.ws, plan.id, plan.token) as (doc, _):
                done = jordan.post(path_of(by_text["complete"]))
                assert done.status_code == 200 and "Marked complete" in done.text

                def ticked() -> bool:
                    for el in _tasks(doc):
                        if el.attributes.get("id") == task["id"]:
                            return el.attributes.get("checked") is True
                    return False

                with anyio.fail_after(10):
                    while not ticked():
                        await anyio.sleep(0.02)

        anyio.run(confirm_while_watching)
        assert plan.task(task["id"])["status"] == "done"
        # Used: a second press is refused plainly; the other links see the task is done.
        again = jordan.post(path_of(by_text["complete"]))
        assert again.status_code == 410 and "already used" in again.text
        blocked = jordan.post(path_of(by_text["blocked"]))
        assert blocked.status_code == 409 and "already done" in blocked.text

    history = plan.owner.get(f"/api/plans/{plan.id}/history").json()["events"]
    completed = [e for e in history if e["entity_id"] == task["id"] and e["kind"] == "completed"]
    assert [e["author"]["name"] for e in completed] == ["Jordan Lee, by email link"]
    page = plan.owner.get(f"/plans/{plan.id}/history")
    assert "Jordan Lee, by email link" in page.text

    # The owner hears that it is done (Jordan has no account, so it was not the owner's doing).
    (done_mail,) = box.wait(OWNER)
    assert subject(done_mail).startswith("[Rollout <b>] Done: ")
    assert "Marked done." in parts(done_mail)[0]
    # The row says "sent" once the dispatcher records the outcome, just after the mail
    # server took the message: the inbox can have it first.
    expected = {("assigned", JORDAN, "sent"), ("completed", OWNER, "sent")}

    def states() -> set[tuple[str, str, str]]:
        return {(n["kind"], n["recipient"]["email"], n["state"]) for n in plan.notifications()}

    poll(lambda: states() == expected)


def _tasks(doc: Doc) -> list[XmlElement]:
    out: list[XmlElement] = []

    def walk(parent: Any) -> None:
        for child in parent.children:
            if isinstance(child, XmlElement):
                if child.tag == "taskItem":
                    out.append(child)
                walk(child)

    walk(fragment(doc))
    return out


def test_links_are_refused_when_they_should_be(server: Server, inbox: tuple[Inbox, int]) -> None:
    box, _ = inbox
    plan = Plan(server)
    first, second, third = plan.tasks()[4:7]
    for t in (first, second, third):
        plan.assign_to_jordan(t["id"])
    mails = box.wait(JORDAN, 3)
    by_task = {}
    for m in mails:
        text = parts(m)[0]
        for t in (first, second, third):
            if wording(t) in text:
                by_task[t["id"]] = links(text)
    with httpx.Client(base_url=server.http) as c:
        url = path_of(by_task[first["id"]]["due"])
        _, _, action, task_id, token = url.split("/")

        def refused(path: str, status: int, words: str) -> None:
            for method in ("GET", "POST"):
                r = c.request(method, path, data={"due": "2031-01-01"})
                assert r.status_code == status and words in r.text, (method, path, r.text)

        # Tampered, wrong purpose (a due-date link used to complete), wrong task.
        tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
        refused(f"/act/due/{task_id}/{tampered}", 404, "not valid or has expired")
        refused(f"/act/complete/{task_id}/{token}", 404, "not valid or has expired")
        refused(f"/act/due/{second['id']}/{token}", 404, "not valid or has expired")
        refused(f"/act/nonsense/{task_id}/{token}", 404, "not valid or has expired")
        # Expired: the same claim, signed 15 days ago.
        claim = URLSafeTimedSerializer(SECRET, salt="tandem.act.due").loads(token[4:])

        class Old(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(time.time()) - 15 * 86400

        old = token[:4] + URLSafeTimedSerializer(SECRET, salt="tandem.act.due", signer=Old).dumps(
            claim
        )
        refused(f"/act/due/{task_id}/{old}", 404, "not valid or has expired")

        # A bad date is refused and the link still works; then it moves the date, once.
        bad = c.post(url, data={"due": "next week"})
        assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text
        moved = c.post(url, data={"due": "2031-01-01"})
        assert moved.status_code == 200 and "now due 2031-01-01" in moved.text
        assert plan.task(first["id"])["due"] == "2031-01-01"
        refused(url, 410, "already used")

        # Reassigned: the link is no longer this person's to use.
        plan.patch(second["id"], {"owner": {"id": "name:Someone", "label": "Someone"}})
        refused(path_of(by_task[second["id"]]["blocked"]), 409, "now someone else")
        assert plan.task(second["id"])["status"] != "blocked"

        # The recipient left the plan: the contact row no longer has their address.
        anyio.run(plan._fill_contact, "Jordan Lee", "jordan@elsewhere.example")
        refused(path_of(by_task[third["id"]]["complete"]), 409, "no longer part of this plan")
        assert plan.task(third["id"])["status"] != "done"


def test_unsubscribe_one_click_stops_the_plans_mail(
    server: Server, inbox: tuple[Inbox, int]
) -> None:
    box, _ = inbox
    plan = Plan(server)
    first, second = plan.tasks()[4:6]
    plan.assign_to_jordan(first["id"])
    (mail,) = box.wait(JORDAN)
    url = mail["List-Unsubscribe"].strip("<>")
    with httpx.Client(base_url=server.http) as client:
        page = client.get(path_of(url))
        assert "Only tasks assigned to you, about Rollout &lt;b&gt;" in page.text
        r = client.post(path_of(url), data={"scope": "kind"})
        assert "no more messages about tasks assigned to you about Rollout" in r.text
        # What a mail client sends for RFC 8058 one-click: no cookie, no login.
        r = client.post(path_of(url), data={"List-Unsubscribe": "One-Click"})
        assert r.status_code == 200 and "Unsubscribed" in r.text
        assert client.get(path_of(url[:-2] + "xx")).status_code == 404
    plan.assign_to_jordan(second["id"])
    # The owner is told the task is done by someone else...
    invite_and_join(
        server, plan.owner, plan.id, "robin@customer.example", "Robin", "editor", "customer"
    )
    robin = plan.client(server.create_token("robin@customer.example"))
    r = robin.patch(f"/api/plans/{plan.id}/tasks/{second['id']}", json={"status": "done"})
    assert r.status_code == 200, r.text
    box.wait(OWNER)
    # ...while Jordan, unsubscribed, got no second mail.
    assert len(box.to(JORDAN)) == 1
    assert [n["recipient"]["email"] for n in plan.notifications()] == [OWNER, JORDAN]


def test_nothing_for_your_own_change_and_milestones_go_to_everyone(
    server: Server, inbox: tuple[Inbox, int]
) -> None:
    box, _ = inbox
    plan = Plan(server)
    invite_and_join(
        server, plan.owner, plan.id, "robin@customer.example", "Robin", "editor", "customer"
    )
    milestone = next(t for t in plan.tasks() if t["milestone"])
    # The owner assigns a task to herself and ticks a milestone: nothing to her...
    me = plan.patch(plan.tasks()[4]["id"], {"owner": {"id": "user:1", "side": "vendor"}})
    assert me["owner"]["label"] == "Olive Owner"
    plan.patch(milestone["id"], {"status": "done"})
    # ...and the milestone to everyone else in the plan.
    # (Robin's first mail is her invitation.)
    invitation, mail = box.wait("robin@customer.example", 2)
    assert subject(mail).startswith("[Rollout <b>] Milestone reached: ")
    assert box.to(OWNER) == []
    assert [n["kind"] for n in plan.notifications()] == ["completed"]


def test_smtp_down_then_up_delivers_each_once(database: Database, tmp_path: Path) -> None:
    box = Inbox()
    port = free_port()
    srv = mail_server(tmp_path, database, port, TANDEM_NOTIFY_RETRY_SECONDS="0.2").start()
    try:
        plan = Plan(srv)
        for t in plan.tasks()[4:7]:
            plan.assign_to_jordan(t["id"])
        # Nothing listens: each attempt fails and is kept for later.
        poll(lambda: [n for n in plan.notifications() if n["attempts"] >= 1 and n["last_error"]])
        assert all(n["state"] == "queued" for n in plan.notifications())
        controller = start_smtp(box, port)
        try:
            box.wait(JORDAN, 3)
            poll(lambda: all(n["state"] == "sent" for n in plan.notifications()))
            assert len(box.to(JORDAN)) == 3
            assert len({subject(m) for m in box.to(JORDAN)}) == 3
        finally:
            controller.stop()
    finally:
        srv.stop()


def test_no_repeat_after_a_rebuild_and_a_restart(
    database: Database, tmp_path: Path, inbox: tuple[Inbox, int]
) -> None:
    box, port = inbox
    srv = mail_server(tmp_path, database, port).start()
    try:
        plan = Plan(srv)
        first, second = plan.tasks()[4:6]
        plan.assign_to_jordan(first["id"])
        box.wait(JORDAN)
    finally:
        srv.stop()
    done = srv.cli("plans", "rebuild", "--all")
    assert done.returncode == 0, done.stderr
    srv.start()
    try:
        plan.owner = plan.client(plan.token)
        plan.assign_to_jordan(second["id"])
        box.wait(JORDAN, 2)
        subjects = [subject(m) for m in box.to(JORDAN)]
        assert len(subjects) == 2 and len(set(subjects)) == 2
        sent = plan.notifications()
        assert len(sent) == 2, [(n["kind"], n["subject"]) for n in sent]
    finally:
        srv.stop()


class Authenticator:
    def __init__(self) -> None:
        self.logins: list[str] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN204
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login,
            auth_data.password,
        ) == (b"tandem", b"s3cret")
        if ok:
            self.logins.append(mechanism)
        return AuthResult(success=ok)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_login_when_configured(database: Database, tmp_path: Path) -> None:
    box, auth = Inbox(), Authenticator()
    port = free_port()
    # Login over a plain connection is for this test only (STARTTLS needs a trusted certificate).
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=auth,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    srv = mail_server(
        tmp_path, database, port, TANDEM_SMTP_USER="tandem", TANDEM_SMTP_PASSWORD="s3cret"
    ).start()
    try:
        plan = Plan(srv)
        plan.assign_to_jordan(plan.tasks()[4]["id"])
        box.wait(JORDAN)
        assert auth.logins
    finally:
        srv.stop()
        controller.stop()

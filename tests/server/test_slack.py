"""The Slack channel with real parts: a real server, a webhook receiver on 127.0.0.1 (listed in
TANDEM_WEBHOOK_ALLOW_HOSTS), and Slack's interactivity requests signed as Slack signs them.

Owners set and remove the webhook; URLs that would make the server call into its own network
are refused when saved; messages are valid Block Kit with the task's actions as buttons; a
plan-level event is posted once; a signed button press completes the task in place (an open
editor sees it) while unsigned, wrongly signed, replayed and forged presses are refused; a
receiver that is down gets every message once it is up.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx
import pytest

from tests.server.test_notifications import (
    JORDAN,
    OWNER,
    Plan,
    _tasks,
    path_of,
    poll,
    wording,
)
from tests.support.access import Caller, invite_and_join, sign_in
from tests.support.servers import Database, Server, free_port
from tests.support.yclient import connect

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


class Receiver:
    """A Slack incoming webhook stand-in: keeps every JSON body POSTed to it."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.messages: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self._srv: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/T000/B000/XXXXsecretpart"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.headers["Content-Type"] == "application/json"
                with receiver.cond:
                    receiver.messages.append(json.loads(body))
                    receiver.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self._srv = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._srv.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._srv is not None:
            self._srv.shutdown()
            self._srv.server_close()

    def wait(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.messages) >= count, timeout)
        assert ok, f"{len(self.messages)} Slack message(s), expected {count}: {self.messages}"
        return list(self.messages)


def slack_server(tmp: Path, db: Database, **env: str) -> Server:
    srv = Server(data_dir=tmp, database_url=db.url)
    srv.extra_env.update(
        {
            "TANDEM_BASE_URL": srv.http,
            "TANDEM_MATERIALISE_QUIET_SECONDS": "0.05",
            "TANDEM_NOTIFY_CLOCK_SECONDS": "0",
            "TANDEM_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
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
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def server(database: Database, tmp_path: Path) -> Iterator[Server]:
    srv = slack_server(tmp_path, database, TANDEM_SLACK_SIGNING_SECRET=SIGNING_SECRET).start()
    yield srv
    srv.stop()


# What Slack accepts (https://api.slack.com/reference/block-kit), as far as Tandem uses it.


def check_block_kit(message: dict[str, Any]) -> None:
    assert isinstance(message["text"], str) and message["text"]
    blocks = message["blocks"]
    assert isinstance(blocks, list) and 1 <= len(blocks) <= 50
    for block in blocks:
        kind = block["type"]
        assert kind in ("section", "context", "actions"), block
        if kind == "section":
            assert block["text"]["type"] == "mrkdwn" and 0 < len(block["text"]["text"]) <= 3000
        elif kind == "context":
            for el in block["elements"]:
                assert el["type"] == "mrkdwn" and el["text"]
        else:
            ids = [el["action_id"] for el in block["elements"]]
            assert len(ids) == len(set(ids)) and 1 <= len(ids) <= 25
            for el in block["elements"]:
                assert el["type"] == "button"
                assert el["text"]["type"] == "plain_text" and 0 < len(el["text"]["text"]) <= 75
                assert len(el["action_id"]) <= 255
                assert "url" in el or "value" in el
                assert len(el.get("url", "")) <= 3000 and len(el.get("value", "")) <= 2000
                assert el.get("style") in (None, "primary", "danger")


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        el["text"]["text"]: el
        for block in message["blocks"]
        if block["type"] == "actions"
        for el in block["elements"]
    }


def headline(message: dict[str, Any]) -> str:
    return str(message["blocks"][0]["text"]["text"])


def sign(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> dict[str, str]:
    base = f"v0:{timestamp}:".encode() + body
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest(),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def press(value: str, action_ts: str = "1700000000.000100") -> bytes:
    """The form body Slack POSTs when someone presses an interactive button."""
    payload = {
        "type": "block_actions",
        "team": {"id": "T000", "domain": "acme"},
        "user": {"id": "U123", "username": "sam", "name": "Sam Slack", "team_id": "T000"},
        "response_url": "https://hooks.slack.com/actions/T000/1/xyz",
        "actions": [
            {
                "type": "button",
                "action_id": "tandem_complete",
                "block_id": "b1",
                "value": value,
                "action_ts": action_ts,
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def test_owners_set_a_webhook_and_unsafe_urls_are_refused(
    server: Server, receiver: Receiver
) -> None:
    plan = Plan(server)
    path = f"/api/plans/{plan.id}/slack"
    assert plan.owner.get(path).json() == {"configured": False, "webhook_url": None, "set_at": None}

    def refused(url: str, words: str) -> None:
        r = plan.owner.put(path, json={"webhook_url": url})
        assert r.status_code == 400 and words in r.json()["error"], (url, r.text)
        assert r.json()["field"] == "webhook_url"

    # Plain http to a host not listed; loopback, private and link-local addresses not listed
    # (localhost is not 127.0.0.1 as far as the allow-list goes), and nonsense.
    refused("http://hooks.slack.com/services/T/B/x", "must use https")
    refused(f"http://localhost:{receiver.port}/hook", "must use https")
    refused(f"https://localhost:{receiver.port}/hook", "loopback")
    refused("https://127.0.0.2/hook", "loopback")
    refused("https://[::1]/hook", "loopback")
    refused("https://[::ffff:127.0.0.1]/hook", "loopback address (inside an IPv6 address)")
    refused("https://10.1.2.3/hook", "private")
    refused("https://169.254.169.254/latest/meta-data", "link-local")
    refused("not a url", "https")
    r = plan.owner.put(path, json={})
    assert r.status_code == 400 and "webhook URL" in r.json()["error"]
    assert r.json()["field"] == "webhook_url"
    assert plan.owner.get(path).json()["configured"] is False

    # The listed host, over http: kept, and never shown in full again.
    r = plan.owner.put(path, json={"webhook_url": receiver.url})
    assert r.status_code == 200, r.text
    state = plan.owner.get(path).json()
    assert state["configured"] is True
    assert state["webhook_url"] == "http://127.0.0.1/…part"
    assert "XXXXsecretpart" not in json.dumps(state)

    # Only owners: an editor of the plan is refused, and so is a caller with no credentials.
    invite_and_join(
        server, plan.owner, plan.id, "robin@customer.example", "Robin", "editor", "customer"
    )
    robin = plan.client(server.create_token("robin@customer.example"))
    for method in ("GET", "PUT", "DELETE"):
        r = robin.request(method, path, json={"webhook_url": receiver.url})
        assert r.status_code == 403, (method, r.text)
        assert "XXXXsecretpart" not in r.text
        anonymous = httpx.request(method, server.http + path, json={"webhook_url": receiver.url})
        assert anonymous.status_code == 401, (method, anonymous.text)
    assert plan.owner.get(path).json()["configured"] is True

    r = plan.owner.delete(path)
    assert r.status_code == 200 and r.json()["configured"] is False
    assert plan.owner.get(path).json()["configured"] is False


def test_the_settings_page_connects_replaces_and_disconnects_without_javascript(
    server: Server, receiver: Receiver
) -> None:
    plan = Plan(server)
    api = f"/api/plans/{plan.id}/slack"
    url = f"/plans/{plan.id}/settings"
    c = sign_in(server, OWNER)
    Plan.clients.append(c.client)

    def post(who: Caller, **data: str) -> httpx.Response:
        return who.client.post(url, data={"csrf": who.csrf or "", **data})

    page = c.client.get(url)
    assert page.status_code == 200 and 'id="slack-state"' in page.text
    assert "Not connected" in page.text and 'id="slack-disconnect"' not in page.text

    # Refused: the guard's own words beside the field, what was typed still in it, nothing kept.
    for bad, words in (
        ("https://10.1.2.3/services/T/B/typed-by-hand", "a private address"),
        ("http://hooks.slack.com/services/T/B/x", "must use https"),
        ("https://hooks.slack.com/services/" + "x" * 500, "longer than 500 characters"),
    ):
        r = post(c, action="slack", webhook_url=bad)
        assert r.status_code == 400, (bad, r.status_code)
        error = re.search(r'<p class="field-error" id="webhook_url-error"[^>]*>([^<]*)</p>', r.text)
        assert error and words in error.group(1), (bad, r.text)
        assert f'value="{bad}"' in r.text and 'aria-invalid="true"' in r.text
        assert 'id="settings-error"' not in r.text
    assert plan.owner.get(api).json()["configured"] is False

    # Connected: shown by host and a masked tail, never in full.
    r = post(c, action="slack", webhook_url=receiver.url)
    assert r.status_code == 303 and r.headers["location"] == f"{url}#slack"
    page = c.client.get(url)
    assert "Connected" in page.text and "http://127.0.0.1/…part" in page.text
    assert "XXXXsecretpart" not in page.text and 'id="slack-disconnect"' in page.text
    assert plan.owner.get(api).json()["webhook_url"] == "http://127.0.0.1/…part"

    # Replaced.
    other = f"http://127.0.0.1:{receiver.port}/services/T1/B1/anothertail"
    assert post(c, action="slack", webhook_url=other).status_code == 303
    assert plan.owner.get(api).json()["webhook_url"] == "http://127.0.0.1/…tail"

    # Without the form's CSRF field, or from an editor of the plan: refused, nothing changed.
    r = c.client.post(url, data={"action": "slack_disconnect"})
    assert r.status_code == 403
    invite_and_join(
        server, plan.owner, plan.id, "robin@customer.example", "Robin", "editor", "customer"
    )
    robin = sign_in(server, "robin@customer.example")
    Plan.clients.append(robin.client)
    assert robin.client.get(url).status_code == 403
    assert post(robin, action="slack", webhook_url=receiver.url).status_code == 403
    assert post(robin, action="slack_disconnect").status_code == 403
    assert plan.owner.get(api).json()["webhook_url"] == "http://127.0.0.1/…tail"

    # Archived: no new channel, but the old one can be taken away (as in the API).
    assert plan.owner.patch(f"/api/plans/{plan.id}", json={"archived": True}).status_code == 200
    r = post(c, action="slack", webhook_url=receiver.url)
    assert r.status_code == 409 and "archived" in r.text
    assert plan.owner.get(api).json()["webhook_url"] == "http://127.0.0.1/…tail"
    r = post(c, action="slack_disconnect")
    assert r.status_code == 303 and r.headers["location"] == f"{url}#slack"
    assert plan.owner.get(api).json()["configured"] is False


def test_block_kit_messages_and_a_signed_press_completes_in_place(
    server: Server, receiver: Receiver
) -> None:
    plan = Plan(server)
    r = plan.owner.put(f"/api/plans/{plan.id}/slack", json={"webhook_url": receiver.url})
    assert r.status_code == 200, r.text
    task = plan.tasks()[4]
    plan.assign_to_jordan(task["id"])
    (assigned,) = receiver.wait(1)
    check_block_kit(assigned)
    assert assigned["text"].startswith("[Rollout <b>] Assigned to Jordan Lee: ")
    assert "Olive Owner assigned a task to Jordan Lee" in headline(assigned)
    # People's text is escaped for Slack: shown as typed, never markup.
    assert "Rollout &lt;b&gt;" in json.dumps(assigned["blocks"])
    assert "Rollout <b>" not in json.dumps(assigned["blocks"])
    found = buttons(assigned)
    assert set(found) == {"Mark complete", "Move the due date", "I'm blocked", "Open plan"}
    complete = found["Mark complete"]
    assert complete["action_id"] == "tandem_complete" and "url" not in complete
    value = complete["value"]
    # The link buttons are the owner's signed action links, and they work.
    with httpx.Client(base_url=server.http) as c:
        page = c.get(path_of(found["Move the due date"]["url"]))
        assert page.status_code == 200 and wording(task) in page.text
    # Email rows wait for an SMTP server (none here); Slack's row was sent on its own (it says
    # so once the dispatcher records the outcome, which can come after the receiver has it).
    expected = {("email", "assigned", "queued"), ("slack", "assigned", "sent")}
    poll(lambda: {(n["channel"], n["kind"], n["state"]) for n in plan.notifications()} == expected)

    url = f"{server.http}/slack/interactivity"
    body = press(value)
    now = int(time.time())

    def refused(status: int, words: str, headers: dict[str, str], data: bytes = body) -> None:
        r = httpx.post(url, content=data, headers=headers)
        assert r.status_code == status and words in r.json()["error"], r.text

    refused(401, "missing", {"Content-Type": "application/x-www-form-urlencoded"})
    refused(401, "does not match", sign(body, now, secret="not-the-secret"))
    refused(401, "does not match", sign(body, now) | {"X-Slack-Signature": "v0=" + "0" * 64})
    # Signed for another body: the signature covers every byte.
    refused(401, "does not match", sign(press(value, "1.2"), now))
    # Replayed: genuinely signed, six minutes ago.
    refused(401, "replay", sign(body, now - 360))
    # A value this server did not sign (another plan's task, made up): refused.
    forged = value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")
    refused(403, "not one this server signed", sign(press(forged), now), press(forged))
    assert plan.task(task["id"])["status"] != "done"

    async def press_while_watching() -> None:
        async with connect(server.ws, plan.id, plan.token) as (doc, _):
            r = httpx.post(url, content=body, headers=sign(body, int(time.time())))
            assert r.status_code == 200 and "Marked complete by Sam Slack" in r.text, r.text

            def ticked() -> bool:
                return any(
                    el.attributes.get("id") == task["id"] and el.attributes.get("checked") is True
                    for el in _tasks(doc)
                )

            with anyio.fail_after(10):
                while not ticked():
                    await anyio.sleep(0.02)

    anyio.run(press_while_watching)
    assert plan.task(task["id"])["status"] == "done"
    # Slack resending the same press (no answer within three seconds) does nothing more.
    again = httpx.post(url, content=body, headers=sign(body, int(time.time())))
    assert again.status_code == 200 and "already" in again.text
    history = plan.owner.get(f"/api/plans/{plan.id}/history").json()["events"]
    done = [e for e in history if e["entity_id"] == task["id"] and e["kind"] == "completed"]
    assert [e["author"]["name"] for e in done] == ["Sam Slack, in Slack"]

    # The channel hears it is done, once, with no buttons left but the plan.
    completed = receiver.wait(2)[1]
    check_block_kit(completed)
    assert headline(completed).startswith(":white_check_mark: Done: ")
    assert set(buttons(completed)) == {"Open plan"}


def test_plan_level_news_is_posted_once(server: Server, receiver: Receiver) -> None:
    plan = Plan(server)
    for email, name in (("robin@customer.example", "Robin"), ("vera@vendor.example", "Vera")):
        invite_and_join(server, plan.owner, plan.id, email, name, "editor", "customer")
    plan.owner.put(f"/api/plans/{plan.id}/slack", json={"webhook_url": receiver.url})
    milestone = next(t for t in plan.tasks() if t["milestone"])
    plan.patch(milestone["id"], {"status": "done"})
    (message,) = receiver.wait(1)
    check_block_kit(message)
    assert headline(message).startswith(":checkered_flag: Milestone reached: ")
    assert "(by Olive Owner)" in headline(message)
    # Everyone else in the plan gets their own mail; the channel one message.
    rows = poll(lambda: [n for n in plan.notifications() if n["state"] == "sent"])
    by_channel = sorted((n["channel"], n["recipient"]["email"]) for n in plan.notifications())
    assert by_channel == [
        ("email", "robin@customer.example"),
        ("email", "vera@vendor.example"),
        ("slack", "slack"),
    ]
    assert [n["channel"] for n in rows] == ["slack"]


def test_receiver_down_then_up_delivers_once(database: Database, tmp_path: Path) -> None:
    # No signing secret here: Mark complete is a link button, and the endpoint is not there.
    srv = slack_server(tmp_path, database, TANDEM_NOTIFY_RETRY_SECONDS="0.2").start()
    receiver = Receiver()  # not listening yet
    try:
        plan = Plan(srv)
        r = plan.owner.put(f"/api/plans/{plan.id}/slack", json={"webhook_url": receiver.url})
        assert r.status_code == 200, r.text
        tasks = plan.tasks()[4:6]
        for t in tasks:
            plan.assign_to_jordan(t["id"])

        def slack_rows() -> list[dict[str, Any]]:
            return [n for n in plan.notifications() if n["channel"] == "slack"]

        poll(lambda: len(slack_rows()) == 2 and all(n["last_error"] for n in slack_rows()))
        assert all(n["state"] == "queued" for n in slack_rows())
        receiver.start()
        try:
            messages = receiver.wait(2)
            poll(lambda: all(n["state"] == "sent" for n in slack_rows()))
            assert len(receiver.messages) == 2
            assert {m["text"] for m in messages} == {
                f"[Rollout <b>] Assigned to Jordan Lee: {wording(t)}" for t in tasks
            }
            for m in messages:
                check_block_kit(m)
                complete = buttons(m)["Mark complete"]
                assert "/act/complete/" in complete["url"] and "value" not in complete
        finally:
            receiver.stop()
        r = httpx.post(f"{srv.http}/slack/interactivity", content=press("x"), headers={})
        assert r.status_code == 404 and "TANDEM_SLACK_SIGNING_SECRET" in r.text
        # Jordan's own mail is still waiting for an SMTP server, not lost.
        emails = [n for n in plan.notifications() if n["channel"] == "email"]
        assert [n["recipient"]["email"] for n in emails] == [JORDAN, JORDAN]
        assert all(n["state"] == "queued" and n["attempts"] == 0 for n in emails)

        # Down again, and then the owner disconnects the channel: what was waiting fails at
        # once (retrying cannot help), instead of after every retry.
        third = plan.tasks()[6]
        plan.assign_to_jordan(third["id"])
        poll(lambda: len(slack_rows()) == 3 and slack_rows()[0]["last_error"])
        assert plan.owner.delete(f"/api/plans/{plan.id}/slack").status_code == 200
        gone = poll(lambda: [n for n in slack_rows() if n["state"] == "failed"])
        assert len(gone) == 1 and "no Slack webhook" in gone[0]["last_error"]
        assert len(receiver.messages) == 2
    finally:
        srv.stop()


def test_reminders_go_to_the_channel_once(database: Database, tmp_path: Path) -> None:
    srv = slack_server(tmp_path, database).start()
    receiver = Receiver().start()
    try:
        plan = Plan(srv)
        plan.owner.put(f"/api/plans/{plan.id}/slack", json={"webhook_url": receiver.url})
        task = plan.tasks()[4]
        plan.assign_to_jordan(task["id"])
        receiver.wait(1)
        plan.patch(task["id"], {"due": "2030-03-10"})
        runs = [
            srv.cli("notifications", "run", "--at", "2030-03-12T09:00:00+00:00")
            for _ in range(2)  # a second pass at the same moment queues nothing new
        ]
        assert [r.returncode for r in runs] == [0, 0], runs
        queued = f"queued overdue to slack: [Rollout <b>] Overdue 2030-03-10: {wording(task)}"
        assert queued in runs[0].stdout
        assert runs[1].stdout == "0 notification(s) queued\n"
        poll(
            lambda: all(
                n["state"] == "sent" for n in plan.notifications() if n["channel"] == "slack"
            )
        )
        overdue = [
            m for m in receiver.messages if wording(task) in m["text"] and "Overdue" in m["text"]
        ]
        assert len(overdue) == 1
        check_block_kit(overdue[0])
        assert "Overdue since 2030-03-10" in headline(overdue[0])
        assert "in Jordan Lee's court" in headline(overdue[0])
    finally:
        receiver.stop()
        srv.stop()

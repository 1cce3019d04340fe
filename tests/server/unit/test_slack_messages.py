"""Slack messages for every kind the outbox has (a sensible default for kinds it does not
know yet), and Slack's request signature as the interactivity endpoint checks it."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

import persistence
from server.http.slack import masked, signature_problem
from server.identity import Signer
from server.notify import Links
from server.notify.dispatcher import Undeliverable
from server.notify.slack import SlackChannel, escape, message

PAYLOAD: dict[str, Any] = {
    "plan_id": "p1",
    "plan_title": "Rollout <b> & co",
    "customer": "Acme",
    "plan_url": "https://tandem.example/plans/p1",
    "task_id": "t1",
    "task_text": "Send the <!channel> SSO metadata",
    "due": "2030-03-10",
    "milestone": False,
    "owner": "Jordan Lee",
    "by": "Olive Owner",
    "actions": {
        "complete": "https://tandem.example/act/complete/t1/tok",
        "due": "https://tandem.example/act/due/t1/tok",
        "blocked": "https://tandem.example/act/blocked/t1/tok",
    },
}


def row(kind: str, payload: dict[str, Any] | None = None) -> persistence.NotificationRecord:
    at = datetime.now(UTC)
    return persistence.NotificationRecord(
        id=1,
        dedup_key="k",
        plan_id="p1",
        recipient_email="slack",
        recipient_name="Slack channel",
        kind=kind,
        channel="slack",
        subject=f"[Rollout <b> & co] {kind}",
        payload=PAYLOAD if payload is None else payload,
        state="queued",
        attempts=0,
        next_attempt_at=at,
        last_error=None,
        created_at=at,
        sent_at=None,
    )


def texts(m: dict[str, Any]) -> str:
    return str(m["blocks"])


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("assigned", "Olive Owner assigned a task to Jordan Lee"),
        ("completed", ":white_check_mark: Done: "),
        ("due_soon", "Due 2030-03-10: "),
        ("overdue", "Overdue since 2030-03-10: "),
        ("key_result_moved", "[Rollout &lt;b&gt; &amp; co] key_result_moved"),
    ],
)
def test_every_kind_renders_escaped(kind: str, words: str) -> None:
    m = message(row(kind))
    assert words in m["blocks"][0]["text"]["text"]
    assert "<!channel>" not in texts(m) and "<b>" not in texts(m)
    labels = [b["text"]["text"] for b in m["blocks"][-1]["elements"]]
    if kind == "completed":
        assert labels == ["Open plan"]
    else:
        assert labels == ["Mark complete", "Move the due date", "I'm blocked", "Open plan"]


def test_interactive_complete_button_and_a_kind_without_a_task() -> None:
    m = message(row("assigned"), lambda plan, task: f"signed:{plan}:{task}")
    first = m["blocks"][-1]["elements"][0]
    assert first["value"] == "signed:p1:t1" and "url" not in first
    bare = message(row("digest", {"plan_url": "https://tandem.example/plans/p1"}))
    assert [b["text"]["text"] for b in bare["blocks"][-1]["elements"]] == ["Open plan"]
    assert escape("a<b>&c") == "a&lt;b&gt;&amp;c"


def signed(body: bytes, ts: int, secret: str = "s3cret") -> str:
    return (
        "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    )


def test_signature_checks() -> None:
    now = int(time.time())
    body = b"payload=%7B%7D"
    assert signature_problem("s3cret", str(now), signed(body, now), body) is None
    assert "missing" in (signature_problem("s3cret", "", signed(body, now), body) or "")
    assert "not a number" in (signature_problem("s3cret", "soon", "v0=00", body) or "")
    assert "does not match" in (
        signature_problem("s3cret", str(now), signed(body, now, "x"), body) or ""
    )
    # Five minutes either way: an old request is a replay, a future one is not Slack's clock.
    for ts in (now - 301, now + 301):
        assert "replay" in (signature_problem("s3cret", str(ts), signed(body, ts), body) or "")


def test_masked_url_keeps_no_secret() -> None:
    shown = masked("https://hooks.slack.com/services/T0001/B0002/abcdefghijklmnop")
    assert shown == "https://hooks.slack.com/…mnop"


class _Slack(http.server.BaseHTTPRequestHandler):
    status = 200
    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802
        _Slack.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(_Slack.status)
        self.send_header("Content-Length", "10")
        self.end_headers()
        self.wfile.write(b"no_service")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slack_port() -> Iterator[int]:
    _Slack.bodies = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slack)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (200, None),
        (404, Undeliverable),
        (302, Undeliverable),
        (429, RuntimeError),
        (500, RuntimeError),
    ],
)
def test_send_and_what_is_retried(slack_port: int, status: int, error: type | None) -> None:
    _Slack.status = status
    links = Links(Signer("k"), "https://tandem.example")
    url = f"http://127.0.0.1:{slack_port}/services/x"
    channel = SlackChannel(lambda plan_id: url, links, allowed=("127.0.0.1",))
    if error is None:
        channel.send(row("assigned"))
    else:
        with pytest.raises(error, match=f"Slack answered {status}"):
            channel.send(row("assigned"))
    assert len(_Slack.bodies) == 1
    # Not listed (any more): refused before anything is sent, for good.
    with pytest.raises(Undeliverable, match="https"):
        SlackChannel(lambda plan_id: url, links).send(row("assigned"))
    with pytest.raises(Undeliverable, match="no Slack webhook"):
        SlackChannel(lambda plan_id: None, links).send(row("assigned"))
    assert len(_Slack.bodies) == 1

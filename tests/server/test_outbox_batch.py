"""The dispatcher sends a claimed batch over one SMTP connection (aiosmtpd on loopback), records
each row's outcome, and a row the server refuses fails alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import anyio
import pytest
from aiosmtpd.controller import Controller

import persistence
from server.identity import Signer
from server.mail import SmtpConfig, SmtpConnection
from server.notify import EmailChannel, Links, Person
from server.notify.dispatcher import Dispatcher, Router
from server.store import Store
from tests.support.servers import Database, free_port

REFUSED = "refused@customer.example"


class Sink:
    """Counts the SMTP sessions (connections) that delivered, and refuses one recipient."""

    def __init__(self) -> None:
        self.sessions: list[Any] = []  # kept, so that no two are the same object
        self.recipients: list[str] = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: ANN001, ANN201, N802
        if address == REFUSED:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        with self.lock:
            if not any(s is session for s in self.sessions):
                self.sessions.append(session)
            self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    box, port = Sink(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def queue(store: Store, emails: list[str]) -> None:
    links = Links(Signer("test-secret-key-not-for-production"), "http://127.0.0.1:1")
    with persistence.transaction(store.factory) as s:
        for i, email in enumerate(emails):
            person = Person(f"contact:{i}", email, f"Person {i}")
            payload = {
                "plan_id": None,
                "plan_title": "Batch",
                "customer": "Customer",
                "plan_url": "http://127.0.0.1:1/plans/p",
                "task_id": "t1",
                "task_text": "Sign the order form",
                "due": "2027-03-01",
                "milestone": False,
                "recipient": person.name,
                "by": "Owner",
                "unsubscribe": links.unsubscribe(email=email, plan_id="p", kind="assigned"),
                "actions": links.actions(plan_id="p", task_id="t1", person=person),
            }
            persistence.queue_notification(
                session=s,
                dedup_key=f"batch:{i}",
                plan_id=None,
                recipient_email=email,
                recipient_name=person.name,
                kind="assigned",
                subject="Assigned to you: Sign the order form",
                payload=payload,
            )


def test_a_batch_goes_over_one_connection_and_a_refused_row_fails_alone(
    database: Database, sink: tuple[Sink, int]
) -> None:
    box, port = sink
    persistence.upgrade(database.url)
    store = Store.from_url(database.url)
    try:
        emails = [f"person{i}@customer.example" for i in range(30)]
        emails.insert(12, REFUSED)
        queue(store, emails)
        email = EmailChannel(SmtpConfig("127.0.0.1", port), "tandem@vendor.example")
        router = Router({"email": email.send}, closes=[email.close])
        dispatcher = Dispatcher(store, router, channels=router.channels)

        claimed = anyio.run(dispatcher.pass_once)

        assert claimed == 31
        assert len(box.sessions) == 1
        assert email.connection.opened == 1
        assert sorted(box.recipients) == sorted(e for e in emails if e != REFUSED)
        with persistence.transaction(store.factory) as s:
            rows = {n.recipient_email: n for n in persistence.list_notifications(session=s)}
        refused = rows.pop(REFUSED)
        assert refused.state == "queued" and refused.attempts == 1
        assert refused.last_error is not None and "550" in refused.last_error
        assert {n.state for n in rows.values()} == {"sent"}
        # The batch is over: its connection closed, the refused row waits for its retry.
        assert anyio.run(dispatcher.pass_once) == 0
    finally:
        store.dispose()


def mail(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "tandem@vendor.example", to, "Hello"
    message.set_content("Hello")
    return message


def test_a_connection_the_server_dropped_is_opened_again_once() -> None:
    box, port = Sink(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    connection = SmtpConnection(SmtpConfig("127.0.0.1", port))
    try:
        connection.send(mail("a@customer.example"))
        # The server goes away with the kept connection and comes back.
        controller.stop()
        controller = Controller(box, hostname="127.0.0.1", port=port)
        controller.start()
        connection.send(mail("b@customer.example"))
        connection.send(mail("c@customer.example"))
    finally:
        connection.close()
        controller.stop()
    assert connection.opened == 2
    assert len(box.sessions) == 2
    assert box.recipients == ["a@customer.example", "b@customer.example", "c@customer.example"]


class FakeTime:
    """A clock that moves only when the dispatcher sleeps, and what it slept."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_outbox_sends_no_faster_than_its_pace(database: Database) -> None:
    persistence.upgrade(database.url)
    store = Store.from_url(database.url)
    try:
        queue(store, [f"person{i}@customer.example" for i in range(45)])
        fake = FakeTime()
        # When each message went, on the fake clock.
        sent_at: list[float] = []
        router = Router({"email": lambda n: sent_at.append(fake.now)})
        dispatcher = Dispatcher(
            store,
            router,
            channels=router.channels,
            per_second=10,
            clock=fake.clock,
            sleep=fake.sleep,
        )

        claimed = anyio.run(dispatcher.pass_once)

        assert claimed == 45
        # Groups of 10 at 10 a second: one group a second, the first at once.
        assert sent_at == [1000.0 + i // 10 for i in range(45)]
        assert fake.slept == [1.0, 1.0, 1.0, 1.0]
        # No more than ``per_second`` x elapsed + one group, however long the run.
        for i, t in enumerate(sent_at):
            assert i + 1 <= 10 * (t - 1000.0) + 10
    finally:
        store.dispose()


def test_a_slow_pace_claims_no_more_than_half_a_lease_sends() -> None:
    store = Store.from_url("sqlite://")
    try:
        send = Router({"email": lambda n: None})
        assert Dispatcher(store, send).batch == 50
        assert Dispatcher(store, send, per_second=50).batch == 50
        assert Dispatcher(store, send, per_second=0.1, lease=300).batch == 15
        assert Dispatcher(store, send, per_second=0.001, lease=300).batch == 1
    finally:
        store.dispose()

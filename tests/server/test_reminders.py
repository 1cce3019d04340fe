"""Due-soon and overdue reminders through `tandem notifications run --at`: each sent exactly
once, also with two processes running the pass at the same moment."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.server.test_notifications import (
    JORDAN,
    Inbox,
    Plan,
    close_clients,  # noqa: F401  (an autouse fixture)
    inbox,  # noqa: F401  (a fixture)
    mail_server,
    parts,
    poll,
    subject,
)
from tests.server.test_notify_more_rules import reminders, run_twice
from tests.support.redis import RedisServer
from tests.support.servers import Database, Server


@pytest.fixture
def server(database: Database, tmp_path: Path, inbox: tuple[Inbox, int]) -> Iterator[Server]:  # noqa: F811
    srv = mail_server(tmp_path, database, inbox[1]).start()
    yield srv
    srv.stop()


def run_at(srv: Server, at: str) -> list[str]:
    """The reminders `tandem notifications run --at` queued, without the weekly digests the
    same passes queue (the first pass after a digest moment sends that digest)."""
    done = srv.cli("notifications", "run", "--at", at)
    assert done.returncode == 0, done.stderr
    return reminders([line for line in done.stdout.splitlines() if line.startswith("queued")])


def sent(box: Inbox, count: int) -> list[EmailMessage]:
    """Jordan's mail but the digests, once there are ``count``."""
    poll(lambda: len([m for m in box.to(JORDAN) if "Your week" not in subject(m)]) >= count)
    return [m for m in box.to(JORDAN) if "Your week" not in subject(m)]


def test_due_soon_then_overdue_each_once(server: Server, inbox: tuple[Inbox, int]) -> None:  # noqa: F811
    box, _ = inbox
    plan = Plan(server)
    task = plan.tasks()[4]
    plan.assign_to_jordan(task["id"])
    plan.patch(task["id"], {"due": "2030-01-10"})
    box.wait(JORDAN)  # the assigned mail

    assert run_at(server, "2030-01-01T09:00:00Z") == []
    out = run_at(server, "2030-01-08T09:00:00Z")
    assert [line.split(":")[0] for line in out] == [f"queued due_soon to {JORDAN}"]
    assert run_at(server, "2030-01-09") == []
    (_, soon) = sent(box, 2)
    assert subject(soon).startswith("[Rollout <b>] Due 2030-01-10: ")
    text, html = parts(soon)
    assert "/act/complete/" in text and "/act/complete/" in html and "is due 2030-01-10" in text
    assert soon["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # The day after the due date: overdue, once, however many processes run the pass.
    queued = run_twice(server, "2030-01-11")
    assert queued == [
        f"queued overdue to {JORDAN}: [Rollout <b>] Overdue 2030-01-10: "
        + queued[0].split(": ", 2)[2]
    ]
    (_, _, late) = sent(box, 3)
    assert subject(late).startswith("[Rollout <b>] Overdue 2030-01-10: ")
    assert run_at(server, "2030-01-12") == []
    kinds = sorted(n["kind"] for n in plan.notifications())
    assert kinds == ["assigned", "due_soon", "overdue"]

    # Moving the due date arms the reminders again; a done task gets none.
    plan.patch(task["id"], {"due": "2030-02-10"})
    assert len(run_at(server, "2030-02-09")) == 1
    plan.patch(task["id"], {"status": "done"})
    assert run_at(server, "2030-02-11") == []
    assert len(sent(box, 4)) == 4


def test_the_servers_own_clock_reminds_without_cron(
    request: pytest.FixtureRequest,
    database: Database,
    tmp_path: Path,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    box, port = inbox
    if database.backend == "sqlite":
        pytest.skip("several server processes need PostgreSQL and Redis")
    redis = RedisServer(tmp_path / "redis").start()
    request.addfinalizer(redis.stop)
    # Two server processes on one database, both running the clock every 0.2 s.
    first = mail_server(
        tmp_path, database, port, TANDEM_NOTIFY_CLOCK_SECONDS="0.2", TANDEM_REDIS_URL=redis.url
    )
    second = Server(data_dir=tmp_path, database_url=database.url)
    second.extra_env.update(first.extra_env, TANDEM_BASE_URL=second.http)
    first.start()
    try:
        plan = Plan(first)
        # The roadmap's first task is due today.
        task = plan.tasks()[4]
        plan.assign_to_jordan(task["id"])
        second.start()
        try:
            soon = [m for m in box.wait(JORDAN, 2) if "] Due " in subject(m)]
            assert len(soon) == 1
            # Passes of both servers go on meanwhile; still one.
            plan.assign_to_jordan(plan.tasks()[6]["id"])
            box.wait(JORDAN, 3)
            reminders = [n for n in plan.notifications() if n["kind"] == "due_soon"]
            assert len(reminders) == 1
        finally:
            second.stop()
    finally:
        first.stop()

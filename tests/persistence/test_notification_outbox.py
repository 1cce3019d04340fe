"""The notification outbox: one row per key, leased to one sender at a time, retried later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

import persistence


def queue(factory: sessionmaker[Session], key: str, email: str = "a@x.example") -> int | None:
    with persistence.transaction(factory) as s:
        return persistence.queue_notification(
            session=s,
            dedup_key=key,
            plan_id=None,
            recipient_email=email,
            recipient_name="A",
            kind="assigned",
            subject="s",
            payload={"k": 1},
        )


def claim(factory: sessionmaker[Session]) -> list[int]:
    with persistence.transaction(factory) as s:
        got = persistence.claim_notifications(session=s, lease=timedelta(minutes=5))
        return [n.id for n in got]


def test_a_key_is_queued_once(factory: sessionmaker[Session]) -> None:
    first = queue(factory, "once")
    assert first is not None
    assert queue(factory, "once") is None
    with persistence.transaction(factory) as s:
        keys = [n.dedup_key for n in persistence.list_notifications(session=s)]
    assert keys.count("once") == 1


def test_a_claimed_row_is_leased_then_retried_or_sent(factory: sessionmaker[Session]) -> None:
    row = queue(factory, "lease")
    assert row in claim(factory)
    # A second sender finds nothing while the lease holds.
    assert row not in claim(factory)
    with persistence.transaction(factory) as s:
        persistence.mark_failed(
            session=s, notification_id=row, error="down", retry_at=datetime.now(UTC)
        )
    assert row in claim(factory)
    with persistence.transaction(factory) as s:
        persistence.mark_sent(session=s, notification_id=row)
    assert row not in claim(factory)
    with persistence.transaction(factory) as s:
        (n,) = [n for n in persistence.list_notifications(session=s) if n.id == row]
    assert (n.state, n.attempts, n.last_error) == ("sent", 2, None)


def test_rows_read_then_leased_by_another_sender_are_left_out(
    factory: sessionmaker[Session],
) -> None:
    rows = [queue(factory, f"race{i}") for i in range(3)]
    at = datetime.now(UTC)
    lease = timedelta(minutes=5)

    def due(when: datetime) -> list[persistence.NotificationRecord]:
        with persistence.transaction(factory) as s:
            found = persistence.due_notifications(session=s, at=when, limit=1000)
        return [n for n in found if n.id in rows]

    read = due(at)
    assert [n.id for n in read] == rows
    # Between the read and the lease, another sender leases the first and sends the second.
    with persistence.transaction(factory) as s:
        first = persistence.lease_notifications(session=s, candidates=read[:1], at=at, lease=lease)
        assert first == {rows[0]}
        persistence.mark_all_sent(session=s, notification_ids=[rows[1]])
    with persistence.transaction(factory) as s:
        leased = persistence.lease_notifications(session=s, candidates=read, at=at, lease=lease)
    assert leased == {rows[2]}
    # What is leased is no longer due until the lease runs out.
    assert due(at + timedelta(minutes=1)) == []
    assert [n.id for n in due(at + lease)] == [rows[0], rows[2]]


def test_only_a_row_never_tried_is_withdrawn(factory: sessionmaker[Session]) -> None:
    waiting, retrying, sent = (queue(factory, k) for k in ("waiting", "retrying", "sent"))
    with persistence.transaction(factory) as s:
        later = datetime.now(UTC) + timedelta(minutes=5)
        persistence.mark_failed(session=s, notification_id=retrying, error="down", retry_at=later)
        persistence.mark_sent(session=s, notification_id=sent)
        persistence.withdraw_notifications(session=s, notification_ids=[waiting, retrying, sent])
    with persistence.transaction(factory) as s:
        left = {n.dedup_key: n.state for n in persistence.list_notifications(session=s)}
    # Tried once is not taken back: it may have reached someone.
    assert "waiting" not in left and left["retrying"] == "queued" and left["sent"] == "sent"
    # Its key is free again: the change it told of may come true again.
    assert queue(factory, "waiting") is not None


def test_a_refresh_reaches_a_row_held_for_the_digest_and_no_row_tried(
    factory: sessionmaker[Session],
) -> None:
    """A value still being typed refreshes its message, whether it waits to be sent or is
    held for the person's digest; a message tried once keeps what it said."""

    def typed(key: str, email: str, value: str) -> None:
        with persistence.transaction(factory) as s:
            persistence.queue_notification(
                session=s,
                dedup_key=key,
                plan_id=None,
                recipient_email=email,
                recipient_name="A",
                kind="kr_moved",
                subject=f"moved: {value}",
                payload={"new": value},
                refresh=True,
            )

    with persistence.transaction(factory) as s:
        persistence.set_notification_mode(
            session=s, email="d@x.example", plan_id=None, kind="kr_moved", mode="digest"
        )
    for key, email in (("r-held", "d@x.example"), ("r-waiting", "a@x.example")):
        typed(key, email, "1")
        typed(key, email, "120")
    typed("r-tried", "a@x.example", "1")
    with persistence.transaction(factory) as s:
        tried = next(
            n for n in persistence.list_notifications(session=s) if n.dedup_key == "r-tried"
        )
        persistence.mark_sent(session=s, notification_id=tried.id)
    typed("r-tried", "a@x.example", "120")
    with persistence.transaction(factory) as s:
        rows = {
            n.dedup_key: n
            for n in persistence.list_notifications(session=s)
            if n.dedup_key.startswith("r-")
        }
    assert rows["r-held"].state == "held"
    said = {k: (n.subject, n.payload) for k, n in rows.items()}
    assert said == {
        "r-held": ("moved: 120", {"new": "120"}),
        "r-waiting": ("moved: 120", {"new": "120"}),
        "r-tried": ("moved: 1", {"new": "1"}),
    }


def test_given_up_after_the_last_attempt(factory: sessionmaker[Session]) -> None:
    row = queue(factory, "give-up")
    assert row in claim(factory)
    with persistence.transaction(factory) as s:
        persistence.mark_failed(session=s, notification_id=row, error="no", retry_at=None)
    assert row not in claim(factory)


def test_unsubscribed_people_get_nothing_new(factory: sessionmaker[Session]) -> None:
    with persistence.transaction(factory) as s:
        persistence.unsubscribe(session=s, email="Gone@X.example", plan_id=None)
    assert queue(factory, "gone", email="gone@x.example") is None
    with persistence.transaction(factory) as s:
        persistence.resubscribe(session=s, email="gone@x.example", plan_id=None)
    assert queue(factory, "gone", email="gone@x.example") is not None


def test_an_action_link_is_used_once(factory: sessionmaker[Session]) -> None:
    # Plans are real rows: make one for the foreign key.
    with persistence.transaction(factory) as s:
        plan = persistence.create_plan(session=s, title="P", customer="C", created_by=None)

    def use() -> bool:
        with persistence.transaction(factory) as s:
            return persistence.use_action(
                session=s, action_id="a1", plan_id=plan.id, task_id="t", action="due", actor="J"
            )

    assert use() is True
    assert use() is False


def test_one_kind_can_be_turned_off(factory: sessionmaker[Session]) -> None:
    def kind(key: str, kind: str) -> int | None:
        with persistence.transaction(factory) as s:
            return persistence.queue_notification(
                session=s,
                dedup_key=key,
                plan_id=None,
                recipient_email="k@x.example",
                recipient_name="K",
                kind=kind,
                subject="s",
                payload={},
            )

    with persistence.transaction(factory) as s:
        persistence.unsubscribe(session=s, email="k@x.example", plan_id=None, kind="overdue")
    assert kind("k1", "overdue") is None
    assert kind("k2", "due_soon") is not None


def test_a_clock_mark_only_moves_forward(factory: sessionmaker[Session]) -> None:
    def advance(to: datetime) -> datetime | None:
        with persistence.transaction(factory) as s:
            persistence.advance_clock_mark(session=s, name="test", to=to)
            return persistence.clock_mark(session=s, name="test")

    with persistence.transaction(factory) as s:
        assert persistence.clock_mark(session=s, name="test") is None
    at = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)
    assert advance(at) == at
    assert advance(at + timedelta(hours=1)) == at + timedelta(hours=1)
    # A pass run as if earlier (``tandem notifications run --at``) leaves it where it was.
    assert advance(at - timedelta(days=7)) == at + timedelta(hours=1)

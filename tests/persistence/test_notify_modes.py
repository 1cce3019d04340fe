"""Preferences at the one place notifications are queued: a plan's own mode wins over the
person's default; off writes nothing; digest holds the row (the dispatcher never claims it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

import persistence

A = "a@x.example"


def queue(factory: sessionmaker[Session], key: str, plan_id: str | None, kind: str) -> int | None:
    with persistence.transaction(factory) as s:
        return persistence.queue_notification(
            session=s,
            dedup_key=key,
            plan_id=plan_id,
            recipient_email=A.upper(),
            recipient_name="A",
            kind=kind,
            subject=key,
            payload={},
        )


def mode(factory: sessionmaker[Session], plan_id: str | None, kind: str, m: str | None) -> None:
    with persistence.transaction(factory) as s:
        persistence.set_notification_mode(session=s, email=A, plan_id=plan_id, kind=kind, mode=m)


def states(factory: sessionmaker[Session]) -> dict[str, str]:
    with persistence.transaction(factory) as s:
        return {n.dedup_key: n.state for n in persistence.list_notifications(session=s)}


def test_modes_default_then_plan_then_digest(factory: sessionmaker[Session]) -> None:
    with persistence.transaction(factory) as s:
        plan = persistence.create_plan(session=s, title="P", customer="C", created_by=None).id
    mode(factory, None, "completed", "off")
    assert queue(factory, "off-everywhere", plan, "completed") is None
    assert queue(factory, "other-kind", plan, "assigned") is not None
    mode(factory, plan, "completed", "immediate")  # this plan differs from the default
    assert queue(factory, "on-here", plan, "completed") is not None
    mode(factory, plan, "completed", None)  # back to the default: off
    assert queue(factory, "off-again", plan, "completed") is None
    mode(factory, None, "assigned", "digest")
    held = queue(factory, "held", plan, "assigned")
    assert states(factory) == {"other-kind": "queued", "on-here": "queued", "held": "held"}
    with persistence.transaction(factory) as s:
        got = persistence.claim_notifications(session=s, lease=timedelta(minutes=5))
        assert held not in [n.id for n in got]
        waiting = persistence.held_notifications(session=s, email=A, upto=datetime.now(UTC))
        assert [n.id for n in waiting] == [held]
        persistence.mark_in_digest(session=s, notification_ids=[held])  # type: ignore[list-item]
    assert states(factory)["held"] == "in_digest"
    # With the digest off, a kind set to it comes at once.
    mode(factory, None, "digest", "off")
    assert queue(factory, "digest-off", plan, "assigned") is not None
    assert states(factory)["digest-off"] == "queued"
    assert queue(factory, "digest:a:2030-W01", None, "digest") is None


def test_settings_default_and_change(factory: sessionmaker[Session]) -> None:
    with persistence.transaction(factory) as s:
        assert persistence.get_notify_settings(session=s, email=A) == (
            persistence.NotifySettingsRecord(A, "UTC", 0, 8)
        )
        persistence.set_notify_settings(session=s, email=A.upper(), time_zone="Asia/Kolkata")
        persistence.set_notify_settings(session=s, email=A, digest_hour=6)
    with persistence.transaction(factory) as s:
        got = persistence.all_notify_settings(session=s)
    assert got == {A: persistence.NotifySettingsRecord(A, "Asia/Kolkata", 0, 6)}

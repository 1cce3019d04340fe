"""Notification rules on their own: events that can never notify cost no database work."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from server.identity import Signer
from server.notify import Links
from server.notify.rules import queue_for, wanted
from server.plan import TaskCompleted, TaskCreated, TaskDueMoved, TaskReassigned


def event(cls: type, *, new: Any, hours_ago: float = 0) -> Any:
    return cls(
        plan_id="p",
        entity="task",
        entity_id="t",
        kind="x",
        old=None,
        new=new,
        author_id=None,
        at=datetime.now(UTC) - timedelta(hours=hours_ago),
        update_id=1,
    )


def test_which_events_may_notify() -> None:
    owner = {"id": "contact:r1", "label": "Jordan Lee", "side": "customer"}
    assert wanted(event(TaskReassigned, new=owner))
    assert wanted(event(TaskCompleted, new=True))
    assert wanted(event(TaskCreated, new={"text": "x", "owner": owner}))
    assert not wanted(event(TaskCreated, new={"text": "x", "owner": None}))
    assert not wanted(event(TaskDueMoved, new="2030-01-01"))


def test_a_replay_of_old_history_notifies_nobody() -> None:
    links = Links(Signer("k"), "http://x")
    old = event(TaskReassigned, new={"id": "user:1"}, hours_ago=48)
    # No session is needed: a stale event stops before any lookup.
    assert queue_for(None, old, links) == 0  # type: ignore[arg-type]


def test_which_row_and_mention_events_may_notify() -> None:
    from server.plan import KeyResultValueChanged, Mentioned, RiskSeverityChanged

    assert wanted(event(KeyResultValueChanged, new="120"))
    # Raised to high, however it is written; whether it was raised is the history's to say.
    assert wanted(event(RiskSeverityChanged, new=" High "))
    # Lowered from high: a message about it raised may still be waiting, to be withdrawn.
    assert wanted(replace(event(RiskSeverityChanged, new="medium"), old="High"))
    # Typed on below high, key by key: a correction waiting says where it ended.
    assert wanted(replace(event(RiskSeverityChanged, new="me"), old="m"))
    mention = {"ref": "contact:r1", "anchor": "", "count": 1}
    assert wanted(replace(event(Mentioned, new=mention), entity_id="contact:r1"))
    assert wanted(replace(event(Mentioned, new=mention), entity_id="user:3"))
    # A name typed as a chip (someone not in the plan) can never be reached.
    assert not wanted(replace(event(Mentioned, new=mention), entity_id="name:Bo"))


def test_a_stale_mention_notifies_nobody() -> None:
    from server.plan import Mentioned

    links = Links(Signer("k"), "http://x")
    old = event(Mentioned, new={"ref": "user:1", "anchor": "", "count": 1}, hours_ago=25)
    assert queue_for(None, old, links) == 0  # type: ignore[arg-type]

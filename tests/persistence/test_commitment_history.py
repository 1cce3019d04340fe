"""The history of commitments as the history page reads it: folded, in time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import persistence
from server.plan.projection import merge_events
from tests.persistence.test_log import Factory, new_plan, new_user

T0 = datetime(2026, 12, 4, 15, 37, tzinfo=UTC)


def write(factory: Factory, plan_id: str, *events: dict[str, Any]) -> None:
    with persistence.transaction(factory) as s:
        upto = persistence.projection_watermark(session=s, plan_id=plan_id)
        ids = persistence.append_updates(
            session=s, plan_id=plan_id, entries=[(None, b"u") for _ in events]
        )
        for e, log_id in zip(events, ids, strict=True):
            e["update_id"] = log_id
        assert persistence.write_projection(
            session=s,
            plan_id=plan_id,
            expect_upto=upto,
            upto_id=ids[-1],
            upserts={},
            deletes={},
            events=list(events),
            merge=merge_events,
        )


def reworded(task: str, old: str, new: str, author: int, at: datetime) -> dict[str, Any]:
    return {
        "entity": "task",
        "entity_id": task,
        "kind": "text_changed",
        "old": old,
        "new": new,
        "author_id": author,
        "at": at,
    }


def history(factory: Factory, plan_id: str, **kw: Any) -> list[tuple[str, Any, datetime]]:
    with persistence.transaction(factory) as s:
        found = persistence.list_history(session=s, plan_id=plan_id, **kw)
    return [(e.entity_id, e.new, e.at) for e in found]


def test_a_folded_entry_is_listed_at_the_time_of_its_last_change(factory: Factory) -> None:
    plan, ann, bo = new_plan(factory), new_user(factory), new_user(factory)
    write(factory, plan.id, reworded("t_a", "x", "y", ann.id, T0))
    write(factory, plan.id, reworded("t_b", "p", "q", bo.id, T0 + timedelta(seconds=30)))
    # Ann goes on typing in her task a minute later: folded into her first entry.
    write(factory, plan.id, reworded("t_a", "y", "yz", ann.id, T0 + timedelta(seconds=60)))
    rows = history(factory, plan.id)
    assert [(r[0], r[1]) for r in rows] == [("t_a", "yz"), ("t_b", "q")]
    assert rows[0][2] == T0 + timedelta(seconds=60)
    # Pages continue after the (time, id) of the last entry shown.
    with persistence.transaction(factory) as s:
        first = persistence.list_history(session=s, plan_id=plan.id, limit=1)
    assert [r[0] for r in history(factory, plan.id, before_id=first[0].id)] == ["t_b"]


def test_text_typed_and_typed_back_leaves_no_entry(factory: Factory) -> None:
    plan, ann = new_plan(factory), new_user(factory)
    write(factory, plan.id, reworded("t_a", "Send SOW", "Send the SOW", ann.id, T0))
    write(factory, plan.id, reworded("t_a", "Send the SOW", "Send SOW", ann.id, T0))
    assert history(factory, plan.id) == []
    # In one write too.
    write(
        factory,
        plan.id,
        reworded("t_b", "a", "ab", ann.id, T0),
        reworded("t_b", "ab", "a", ann.id, T0),
    )
    assert history(factory, plan.id) == []

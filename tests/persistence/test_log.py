"""The append-only update log and its checkpoints, on SQLite and PostgreSQL after migrations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

import persistence

Factory = sessionmaker[Session]


def new_plan(factory: Factory, created_by: int | None = None) -> persistence.PlanRecord:
    with persistence.transaction(factory) as s:
        return persistence.create_plan(
            session=s, title="Plan", customer="Acme", created_by=created_by
        )


def new_user(factory: Factory) -> persistence.UserRecord:
    with persistence.transaction(factory) as s:
        return persistence.create_user(
            session=s, email=f"{uuid.uuid4().hex}@example.com", name="Author", password_hash=None
        )


def append(factory: Factory, plan_id: str, *data: bytes, author: int | None = None) -> list[int]:
    with persistence.transaction(factory) as s:
        return persistence.append_updates(
            session=s, plan_id=plan_id, entries=[(author, d) for d in data]
        )


def checkpoint(factory: Factory, plan_id: str, upto_id: int, state: bytes) -> None:
    with persistence.transaction(factory) as s:
        persistence.save_checkpoint(session=s, plan_id=plan_id, upto_id=upto_id, state=state)


def history(factory: Factory, plan_id: str) -> persistence.PlanHistory:
    with persistence.transaction(factory) as s:
        return persistence.load_history(session=s, plan_id=plan_id)


def entries(factory: Factory, plan_id: str, **kw: int | None) -> list[tuple]:
    with persistence.transaction(factory) as s:
        return persistence.log_entries(session=s, plan_id=plan_id, **kw)  # type: ignore[arg-type]


def get_plan(factory: Factory, plan_id: str) -> persistence.PlanRecord:
    with persistence.transaction(factory) as s:
        plan = persistence.get_plan(session=s, plan_id=plan_id)
    assert plan is not None
    return plan


# append_updates


def test_append_returns_increasing_ids_in_the_order_given(factory: Factory) -> None:
    plan = new_plan(factory)
    ids = append(factory, plan.id, b"u1", b"u2", b"u3", b"u4")
    assert len(ids) == 4
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert [(i, data) for i, _, _, data in entries(factory, plan.id)] == list(
        zip(ids, [b"u1", b"u2", b"u3", b"u4"], strict=True)
    )


def test_ids_keep_increasing_across_calls_and_interleaved_plans(factory: Factory) -> None:
    a, b = new_plan(factory), new_plan(factory)
    seen: list[int] = []
    per_plan: dict[str, list[int]] = {a.id: [], b.id: []}
    for round_ in range(3):
        for plan in (a, b, a):
            ids = append(factory, plan.id, f"{round_}".encode(), b"second")
            seen += ids
            per_plan[plan.id] += ids
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    # Each plan's log holds exactly its own updates, in append order.
    assert [e[0] for e in entries(factory, a.id)] == per_plan[a.id]
    assert [e[0] for e in entries(factory, b.id)] == per_plan[b.id]


def test_append_sets_the_plans_updated_at(factory: Factory) -> None:
    plan = new_plan(factory)
    assert plan.updated_at == plan.created_at
    before = datetime.now(UTC)
    append(factory, plan.id, b"edit")
    after = datetime.now(UTC)
    updated = get_plan(factory, plan.id)
    assert updated.created_at == plan.created_at
    assert before <= updated.updated_at <= after
    # updated_at is when the update was logged.
    [(_, logged_at, _, _)] = entries(factory, plan.id)
    assert updated.updated_at == logged_at
    # A busy room's commits leave it alone between its occasional touches.
    with persistence.transaction(factory) as s:
        persistence.append_updates(session=s, plan_id=plan.id, entries=[(None, b"e")], touch=False)
    assert get_plan(factory, plan.id).updated_at == logged_at


def test_append_to_an_unknown_plan_rolls_back_the_whole_transaction(factory: Factory) -> None:
    plan = new_plan(factory)
    with pytest.raises(IntegrityError), persistence.transaction(factory) as s:
        persistence.append_updates(session=s, plan_id=plan.id, entries=[(None, b"kept?")])
        persistence.append_updates(session=s, plan_id="no-such-plan", entries=[(None, b"x")])
    with persistence.transaction(factory) as s:
        assert persistence.count_updates(session=s, plan_id=plan.id) == 0
        assert persistence.count_updates(session=s, plan_id="no-such-plan") == 0
    assert get_plan(factory, plan.id).updated_at == plan.updated_at


def test_update_bytes_round_trip_exactly(factory: Factory) -> None:
    plan = new_plan(factory)
    payloads = [bytes(range(256)), b"\x00" * 17, b"", bytes(range(256)) * 4096]  # last: 1 MiB
    ids = append(factory, plan.id, *payloads)
    assert [e[3] for e in entries(factory, plan.id)] == payloads
    assert history(factory, plan.id).updates == payloads
    assert history(factory, plan.id).last_id == ids[-1]


# load_history


def test_history_of_a_plan_with_nothing_logged(factory: Factory) -> None:
    plan = new_plan(factory)
    assert history(factory, plan.id) == persistence.PlanHistory(
        checkpoint=None, checkpoint_upto=0, updates=[], last_id=0
    )


def test_history_without_a_checkpoint_is_the_whole_log(factory: Factory) -> None:
    plan = new_plan(factory)
    ids = append(factory, plan.id, b"a", b"b")
    ids += append(factory, plan.id, b"c")
    assert history(factory, plan.id) == persistence.PlanHistory(
        checkpoint=None, checkpoint_upto=0, updates=[b"a", b"b", b"c"], last_id=ids[-1]
    )


def test_history_is_the_newest_checkpoint_and_only_the_updates_after_it(factory: Factory) -> None:
    plan = new_plan(factory)
    ids = append(factory, plan.id, b"u1", b"u2", b"u3", b"u4", b"u5")
    checkpoint(factory, plan.id, ids[1], b"state-upto-2")
    checkpoint(factory, plan.id, ids[3], b"state-upto-4")
    # Written last but older: "newest" means furthest along the log, not last written.
    checkpoint(factory, plan.id, ids[0], b"state-upto-1")
    assert history(factory, plan.id) == persistence.PlanHistory(
        checkpoint=b"state-upto-4", checkpoint_upto=ids[3], updates=[b"u5"], last_id=ids[4]
    )


def test_history_with_a_checkpoint_at_the_end_of_the_log(factory: Factory) -> None:
    plan = new_plan(factory)
    ids = append(factory, plan.id, b"u1", b"u2")
    checkpoint(factory, plan.id, ids[-1], b"everything")
    assert history(factory, plan.id) == persistence.PlanHistory(
        checkpoint=b"everything", checkpoint_upto=ids[-1], updates=[], last_id=ids[-1]
    )
    later = append(factory, plan.id, b"u3")
    assert history(factory, plan.id).updates == [b"u3"]
    assert history(factory, plan.id).last_id == later[0]


def test_history_ignores_other_plans(factory: Factory) -> None:
    mine, other = new_plan(factory), new_plan(factory)
    mine_ids = append(factory, mine.id, b"m1")
    other_ids = append(factory, other.id, b"o1", b"o2")
    checkpoint(factory, other.id, other_ids[-1], b"other-state")
    append(factory, other.id, b"o3")
    mine_ids += append(factory, mine.id, b"m2")
    assert history(factory, mine.id) == persistence.PlanHistory(
        checkpoint=None, checkpoint_upto=0, updates=[b"m1", b"m2"], last_id=mine_ids[-1]
    )


# save_checkpoint


def test_save_checkpoint_never_deletes_log_rows(factory: Factory) -> None:
    plan = new_plan(factory)
    ids = append(factory, plan.id, b"u1", b"u2", b"u3")
    before = entries(factory, plan.id)
    checkpoint(factory, plan.id, ids[1], b"s2")
    checkpoint(factory, plan.id, ids[2], b"s3")
    assert entries(factory, plan.id) == before
    with persistence.transaction(factory) as s:
        assert persistence.count_updates(session=s, plan_id=plan.id) == 3
    # The full log still replays from the start, checkpoint or not.
    assert [e[3] for e in entries(factory, plan.id, after_id=0)] == [b"u1", b"u2", b"u3"]


def kept(factory: Factory, plan_id: str) -> list[int]:
    """The ``upto_id`` of each checkpoint a plan still has, oldest first."""
    with persistence.transaction(factory) as s:
        q = text("SELECT upto_id FROM checkpoints WHERE plan_id = :p ORDER BY upto_id")
        return list(s.execute(q, {"p": plan_id}).scalars())


def project_upto(factory: Factory, plan_id: str, expect: int, upto: int) -> None:
    with persistence.transaction(factory) as s:
        assert persistence.write_projection(
            session=s,
            plan_id=plan_id,
            expect_upto=expect,
            upto_id=upto,
            upserts={},
            deletes={},
            events=[],
        )


def test_save_checkpoint_keeps_the_two_newest_and_the_one_the_tables_reached(
    factory: Factory,
) -> None:
    """The two newest copies, plus the newest one at or before the projection's watermark:
    what the materialiser rebuilds from after a restart when its tables lag further behind."""
    plan, other = new_plan(factory), new_plan(factory)
    ids = append(factory, plan.id, *(f"u{n}".encode() for n in range(9)))
    checkpoint(factory, other.id, 0, b"elsewhere")
    # No projection yet: only the two newest are kept.
    for n in (1, 2, 3):
        checkpoint(factory, plan.id, ids[n], f"s{n}".encode())
    assert kept(factory, plan.id) == [ids[2], ids[3]]
    # The tables have taken in up to u3: the checkpoint at u3 outlives two newer ones.
    project_upto(factory, plan.id, 0, ids[3])
    for n in (4, 5, 6):
        checkpoint(factory, plan.id, ids[n], f"s{n}".encode())
    assert kept(factory, plan.id) == [ids[3], ids[5], ids[6]]
    # The watermark between two checkpoints: the newest one at or before it stays.
    project_upto(factory, plan.id, ids[3], ids[4])
    checkpoint(factory, plan.id, ids[7], b"s7")
    assert kept(factory, plan.id) == [ids[3], ids[6], ids[7]]
    # Caught up: that one is among the two newest, and nothing older is kept.
    project_upto(factory, plan.id, ids[4], ids[7])
    checkpoint(factory, plan.id, ids[8], b"s8")
    assert kept(factory, plan.id) == [ids[7], ids[8]]
    assert kept(factory, other.id) == [0]


# log_entries


def test_log_entries_filter_by_range_and_plan(factory: Factory) -> None:
    author = new_user(factory)
    plan, other = new_plan(factory, author.id), new_plan(factory)
    ids = append(factory, plan.id, b"a1", b"a2", author=author.id)
    append(factory, other.id, b"elsewhere")
    ids += append(factory, plan.id, b"anon", author=None)
    ids += append(factory, plan.id, b"a3", author=author.id)

    def rows(**kw: int | None) -> list[tuple[int, int | None, bytes]]:
        return [(i, who, data) for i, _, who, data in entries(factory, plan.id, **kw)]

    everything = list(
        zip(
            ids,
            [author.id, author.id, None, author.id],
            [b"a1", b"a2", b"anon", b"a3"],
            strict=True,
        )
    )
    assert rows() == everything
    assert rows(after_id=ids[0]) == everything[1:]
    assert rows(upto_id=ids[1]) == everything[:2]
    assert rows(after_id=ids[0], upto_id=ids[2]) == everything[1:3]
    assert rows(after_id=ids[3]) == []
    assert rows(after_id=ids[2], upto_id=ids[2]) == []
    assert rows(upto_id=ids[0] - 1) == []


def test_log_entries_times_are_utc_and_in_order(factory: Factory) -> None:
    plan = new_plan(factory)
    before = datetime.now(UTC)
    append(factory, plan.id, b"1")
    append(factory, plan.id, b"2")
    after = datetime.now(UTC)
    times = [at for _, at, _, _ in entries(factory, plan.id)]
    # Aware datetimes on both backends (SQLite hands back naive ones unless converted).
    assert all(at.utcoffset() == timedelta(0) for at in times)
    assert before <= times[0] <= times[1] <= after

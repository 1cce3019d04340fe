"""Version history's tables: segments of the log, versions and visits."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

import persistence


def test_segments_follow_one_another_and_replays_start_at_checkpoints(
    factory: sessionmaker[Session],
) -> None:
    with factory() as s, s.begin():
        plan = persistence.create_plan(session=s, title="T", customer="C", created_by=None)
        ids = persistence.append_updates(
            session=s, plan_id=plan.id, entries=[(None, b"x" * 100) for _ in range(10)]
        )
        assert persistence.segments_end(session=s, plan_id=plan.id) == 0
        kept = persistence.save_segments(
            session=s,
            plan_id=plan.id,
            segments=[(0, ids[3], b"a" * 40), (ids[3], ids[6], b"b" * 30)],
        )
        # One already there is left as it is.
        again = persistence.save_segments(
            session=s, plan_id=plan.id, segments=[(ids[3], ids[6], b"c" * 30)]
        )
        assert (kept, again) == (2, 0)
        assert persistence.segments_end(session=s, plan_id=plan.id) == ids[6]
        assert persistence.segments_end(session=s, plan_id=plan.id, doc="internal") == 0
        assert persistence.history_bytes(session=s, plan_id=plan.id) == 70
        assert persistence.log_bytes(session=s, plan_id=plan.id) == 1000
        assert persistence.segments_between(
            session=s, plan_id=plan.id, after_id=ids[2], upto_id=ids[8]
        ) == [(0, ids[3], b"a" * 40), (ids[3], ids[6], b"b" * 30)]
        assert (
            persistence.segments_between(
                session=s, plan_id=plan.id, after_id=ids[3], upto_id=ids[5]
            )
            == []
        )
        # Replays start from the newest room checkpoint at or before the point.
        assert persistence.replay_base(session=s, plan_id=plan.id, upto_id=ids[7]) == (0, None)
        persistence.save_checkpoint(session=s, plan_id=plan.id, upto_id=ids[5], state=b"state")
        assert persistence.replay_base(session=s, plan_id=plan.id, upto_id=ids[7]) == (
            ids[5],
            b"state",
        )
        assert persistence.replay_base(session=s, plan_id=plan.id, upto_id=ids[4]) == (0, None)
        assert persistence.log_position(session=s, plan_id=plan.id, upto_id=ids[4]) == 5
        marks = persistence.log_marks_before(session=s, plan_id=plan.id, before_id=ids[4], limit=3)
        assert [m[0] for m in marks] == [ids[3], ids[2], ids[1]]


def test_whether_a_log_holds_a_count_of_entries_is_asked_of_the_index(
    factory: sessionmaker[Session],
) -> None:
    with factory() as s, s.begin():
        plan = persistence.create_plan(session=s, title="T", customer="C", created_by=None)
        other = persistence.create_plan(session=s, title="O", customer="C", created_by=None)
        ids = persistence.append_updates(
            session=s, plan_id=plan.id, entries=[(None, b"x") for _ in range(5)]
        )
        persistence.append_updates(
            session=s, plan_id=other.id, entries=[(None, b"y") for _ in range(5)]
        )
        persistence.append_updates(
            session=s, plan_id=plan.id, entries=[(None, b"z")], doc="internal"
        )

        def holds(after_id: int, count: int, doc: str = "plan") -> bool:
            return persistence.holds_updates_after(
                session=s, plan_id=plan.id, after_id=after_id, count=count, doc=doc
            )

        assert holds(0, 5) and not holds(0, 6)
        assert holds(ids[1], 3) and not holds(ids[1], 4)
        assert holds(0, 1, "internal") and not holds(0, 2, "internal")
        assert not holds(ids[-1], 1)


def test_versions_and_visits(factory: sessionmaker[Session]) -> None:
    with factory() as s, s.begin():
        plan = persistence.create_plan(session=s, title="T", customer="C", created_by=None)
        (first,) = persistence.append_updates(session=s, plan_id=plan.id, entries=[(None, b"a")])
        v1 = persistence.create_version(
            session=s, plan_id=plan.id, name="Kick-off", upto_id=first, created_by=None
        )
        (second,) = persistence.append_updates(session=s, plan_id=plan.id, entries=[(None, b"b")])
        v2 = persistence.create_version(
            session=s, plan_id=plan.id, name="Q1", upto_id=second, created_by=None
        )
        assert [v.name for v in persistence.list_versions(session=s, plan_id=plan.id)] == [
            "Q1",
            "Kick-off",
        ]
        assert persistence.get_version(session=s, plan_id=plan.id, version_id=v1.id) == v1
        assert persistence.get_version(session=s, plan_id="other", version_id=v2.id) is None
        user = persistence.create_user(session=s, email="a@b.example", name="A", password_hash=None)
        assert persistence.last_seen(session=s, plan_id=plan.id, user_id=user.id) is None
        persistence.mark_seen(session=s, plan_id=plan.id, user_id=user.id, seen_id=second)
        persistence.mark_seen(session=s, plan_id=plan.id, user_id=user.id, seen_id=first)
        assert persistence.last_seen(session=s, plan_id=plan.id, user_id=user.id) == second

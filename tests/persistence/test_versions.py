"""Version history's tables: snapshots never outweigh the log, versions and visits."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

import persistence


def test_snapshots_stay_within_the_size_of_the_log(factory: sessionmaker[Session]) -> None:
    with factory() as s, s.begin():
        plan = persistence.create_plan(session=s, title="T", customer="C", created_by=None)
        ids = persistence.append_updates(
            session=s, plan_id=plan.id, entries=[(None, b"x" * 100) for _ in range(10)]
        )
        # 1000 bytes of log: the first two fit (400 + 500), the third would not.
        kept = persistence.save_snapshots(
            session=s,
            plan_id=plan.id,
            snapshots=[(ids[3], b"s" * 400), (ids[6], b"s" * 500), (ids[8], b"s" * 200)],
        )
        assert kept == 2
        assert persistence.history_bytes(session=s, plan_id=plan.id) == 900
        assert persistence.log_bytes(session=s, plan_id=plan.id) == 1000
        # Replays start from the newest stored state at or before the point.
        assert persistence.replay_base(session=s, plan_id=plan.id, upto_id=ids[7]) == (
            ids[6],
            b"s" * 500,
        )
        assert persistence.replay_base(session=s, plan_id=plan.id, upto_id=ids[2]) == (0, None)


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

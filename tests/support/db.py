"""Read a test server's database directly through SQLAlchemy: the update log and checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

import persistence
from persistence.models import Checkpoint, PlanUpdate, User


@dataclass(frozen=True)
class LogRow:
    id: int
    author_id: int | None
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class CheckpointRow:
    upto_id: int
    state: bytes = field(repr=False)


class Inspector:
    """A short-lived engine per query, so nothing stays open while the server runs or the
    test database is dropped."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _all(self, query):  # type: ignore[no-untyped-def]
        engine = persistence.make_engine(self.url)
        try:
            with engine.connect() as conn:
                return conn.execute(query).all()
        finally:
            engine.dispose()

    def log(self, plan_id: str) -> list[LogRow]:
        rows = self._all(
            select(PlanUpdate.id, PlanUpdate.author_id, PlanUpdate.data)
            .where(PlanUpdate.plan_id == plan_id)
            .order_by(PlanUpdate.id)
        )
        return [LogRow(r.id, r.author_id, bytes(r.data)) for r in rows]

    def checkpoints(self, plan_id: str) -> list[CheckpointRow]:
        rows = self._all(
            select(Checkpoint.upto_id, Checkpoint.state)
            .where(Checkpoint.plan_id == plan_id)
            .order_by(Checkpoint.upto_id, Checkpoint.id)
        )
        return [CheckpointRow(r.upto_id, bytes(r.state)) for r in rows]

    def user_id(self, email: str) -> int:
        (row,) = self._all(select(User.id).where(User.email == email))
        return row.id

"""A plan's red/amber/green status: computed by the summary, or set by hand by an owner with a
reason. The override's rule is written once, for the dashboard's form and the API alike."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

import persistence
from server.store import Store

from .errors import ApiError
from .fields import text_field
from .summary import summarise

RAGS = ("red", "amber", "green")
MAX_REASON = 1000


async def plan_summary(store: Store, plan_id: str, today: date | None = None) -> dict[str, Any]:
    def read(
        s: Session,
    ) -> tuple[
        list[dict[str, Any]],
        list[dict[str, Any]],
        list[dict[str, Any]],
        persistence.StatusOverride | None,
    ]:
        return (
            persistence.list_tasks(session=s, plan_id=plan_id),
            persistence.list_rows(session=s, plan_id=plan_id, table="key_results"),
            persistence.list_rows(session=s, plan_id=plan_id, table="risks"),
            persistence.get_status_override(session=s, plan_id=plan_id),
        )

    tasks, krs, risks, override = await store.run(read)
    return summarise(tasks, krs, risks, override, today or datetime.now(UTC).date())


async def override_status(
    store: Store, plan_id: str, rag: object, reason: object, set_by: int | None
) -> None:
    """Set the status by hand; the reason is shown to everyone, so it is required."""
    if rag not in RAGS:
        raise ApiError(400, "rag must be red, amber or green", field="rag")
    text = text_field({"reason": reason}, "reason", max_len=MAX_REASON)
    await store.run(
        lambda s: persistence.set_status_override(
            session=s, plan_id=plan_id, rag=str(rag), reason=text, set_by=set_by
        )
    )


async def clear_status(store: Store, plan_id: str) -> None:
    await store.run(lambda s: persistence.clear_status_override(session=s, plan_id=plan_id))

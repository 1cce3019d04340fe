"""The plan list a CSM works from: each plan's status, progress, overdue tasks by side, next
milestone and last edit, with search, filters and sorting; for the page and ``GET /api/plans``.

The figures are the dashboard's (``summary.summarise``), computed from the materialised tables
read for all listed plans at once: one query per table, never a room load per plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

import persistence
from server.identity import OWNER, Identity
from server.store import Store

from .errors import ApiError
from .summary import summarise

PARAMS = ("q", "status", "customer", "mine", "archived", "sort")
STATUSES = ("red", "amber", "green")
ARCHIVED = ("false", "true", "all")
BOOLEANS = ("true", "false")
_RAG_ORDER = {"red": 0, "amber": 1, "green": 2}


def _sort_keys() -> dict[str, Any]:
    def next_due(row: dict[str, Any]) -> tuple[bool, str]:
        ms = row["next_milestone"]
        due = ms["due"] if ms else None
        return (due is None, due or "")

    return {
        "updated": lambda r: -r["plan"].updated_at.timestamp(),
        "title": lambda r: r["plan"].title.lower(),
        "customer": lambda r: (r["plan"].customer.lower(), r["plan"].title.lower()),
        "status": lambda r: (_RAG_ORDER[r["status"]["rag"]], -r["overdue"]["total"]),
        "progress": lambda r: (r["progress"]["percent"] is None, r["progress"]["percent"] or 0),
        "next_milestone": next_due,
        "overdue": lambda r: -r["overdue"]["total"],
    }


SORTS = tuple(_sort_keys())


@dataclass(frozen=True)
class ListQuery:
    q: str = ""
    status: str | None = None
    customer: str = ""
    mine: bool = False
    archived: str = "false"
    sort: str = "updated"

    def as_form(self) -> dict[str, str]:
        """What the page's GET form shows."""
        return {
            "q": self.q,
            "status": self.status or "",
            "customer": self.customer,
            "mine": "true" if self.mine else "",
            "archived": self.archived,
            "sort": self.sort,
        }


def parse_query(params: Mapping[str, str]) -> ListQuery:
    """The list's query parameters, each checked; empty values (a GET form's) count as absent."""
    for name in params:
        if name not in PARAMS:
            raise ApiError(400, f"unknown parameter {name!r}; use {', '.join(PARAMS)}", field=name)
    values = {k: v.strip() for k, v in params.items() if v.strip()}
    for name, allowed in (
        ("status", STATUSES),
        ("archived", ARCHIVED),
        ("sort", SORTS),
        ("mine", BOOLEANS),
    ):
        if name in values and values[name] not in allowed:
            raise ApiError(400, f"{name} must be one of {', '.join(allowed)}", field=name)
    for name in ("q", "customer"):
        if len(values.get(name, "")) > 200:
            raise ApiError(400, f"{name} must be at most 200 characters", field=name)
    return ListQuery(
        q=values.get("q", ""),
        status=values.get("status"),
        customer=values.get("customer", ""),
        mine=values.get("mine") == "true",
        archived=values.get("archived", "false"),
        sort=values.get("sort", "updated"),
    )


def _row(plan: persistence.PlanRecord, s: dict[str, Any]) -> dict[str, Any]:
    tasks = s["progress"]["tasks"]
    overdue = {side: len(items) for side, items in s["overdue"].items()}
    ms = s["next_milestone"]
    return {
        "plan": plan,
        "status": {
            "rag": s["status"]["rag"],
            "computed": s["status"]["computed"],
            "overridden": s["status"]["override"] is not None,
            "reasons": s["status"]["reasons"],
        },
        "progress": {
            "done": tasks["done"],
            "total": tasks["total"],
            "percent": round(100 * tasks["done"] / tasks["total"]) if tasks["total"] else None,
            "milestones": s["progress"]["milestones"],
        },
        "overdue": {**overdue, "total": sum(overdue.values())},
        "next_milestone": None
        if ms is None
        else {"id": ms["id"], "text": ms["text"], "due": ms["due"], "verdict": ms["verdict"]},
    }


async def plan_rows(
    store: Store, identity: Identity, query: ListQuery, today: date | None = None
) -> list[dict[str, Any]]:
    """The plans the caller may see that match ``query``, each with its figures, sorted."""
    day = today or datetime.now(UTC).date()

    def read(
        s: Session,
    ) -> tuple[
        list[persistence.PlanRecord],
        dict[str, list[dict[str, Any]]],
        dict[str, list[dict[str, Any]]],
        dict[str, list[dict[str, Any]]],
        dict[str, persistence.StatusOverride],
        dict[str, str],
    ]:
        plans = persistence.find_plans(
            session=s,
            # The workspace owner sees every plan; everyone else the plans they are in.
            member_of=None if identity.workspace_owner else identity.user_id,
            owned_by=identity.user_id if query.mine else None,
            archived={"false": False, "true": True, "all": None}[query.archived],
            text=query.q,
            customer=query.customer,
        )
        ids = [p.id for p in plans]
        return (
            plans,
            persistence.rows_of_plans(session=s, plan_ids=ids, table="tasks"),
            persistence.rows_of_plans(session=s, plan_ids=ids, table="key_results"),
            persistence.rows_of_plans(session=s, plan_ids=ids, table="risks"),
            persistence.status_overrides(session=s, plan_ids=ids),
            persistence.member_roles(session=s, user_id=identity.account_id),
        )

    plans, tasks, krs, risks, overrides, roles = await store.read(read)
    rows = []
    for p in plans:
        row = _row(p, summarise(tasks[p.id], krs[p.id], risks[p.id], overrides.get(p.id), day))
        # The workspace owner is an owner of every plan, member or not.
        row["role"] = roles.get(p.id, OWNER if identity.workspace_owner else None)
        rows.append(row)
    if query.status:
        rows = [r for r in rows if r["status"]["rag"] == query.status]
    key = _sort_keys()[query.sort]
    # Stable sorts: ties stay newest-edited first, as the database returned them.
    rows.sort(key=key)
    return rows


def customers(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({r["plan"].customer for r in rows}, key=str.lower)

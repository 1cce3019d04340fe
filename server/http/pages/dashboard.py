"""Server-rendered views of the plan as data: the dashboard (with SVG charts drawn here) and
the history of every commitment change."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

import persistence
from server import plan as domain
from server.identity import Rule, allowed, plan_nav
from server.plan import ApiError

from ..guard import identity_of, plan_of, rule
from ..responses import render, services

KIND_LABELS = {
    "created": "added",
    "removed": "removed",
    "text_changed": "reworded",
    "reassigned": "reassigned",
    "due_moved": "moved the date of",
    "completed": "completed",
    "reopened": "reopened",
    "status_changed": "changed the status of",
    "milestone_changed": "changed the milestone flag of",
    "kr_value_changed": "updated the current value of",
    "risk_severity_changed": "changed the severity of",
    "field_changed": "edited",
}
ENTITY_LABELS = {"task": "task", "key_result": "key result", "risk": "risk", "contact": "contact"}
VERDICTS = {
    "on_track": "On track",
    "at_risk": "At risk",
    "overdue": "Overdue",
    "unknown": "No date yet",
}
SIDE_LABELS = {
    "vendor": "Vendor",
    "customer": "Customer",
    "unknown": "Side not set",
    "unassigned": "Unassigned",
}


def donut(done: int, total: int, radius: float = 42) -> dict[str, Any]:
    circumference = 2 * math.pi * radius
    share = done / total if total else 0.0
    return {
        "r": radius,
        "c": round(circumference, 2),
        "filled": round(circumference * share, 2),
        "percent": round(share * 100),
        "done": done,
        "total": total,
    }


def court_chart(summary: dict[str, Any]) -> list[dict[str, Any]]:
    counts = [
        (side, len(summary["overdue"][side]), len(summary["due_soon"][side]))
        for side in SIDE_LABELS
    ]
    top = max([1, *(o + s for _, o, s in counts)])
    return [
        {
            "side": side,
            "label": SIDE_LABELS[side],
            "overdue": o,
            "soon": s,
            "overdue_w": round(100 * o / top, 1),
            "soon_w": round(100 * s / top, 1),
        }
        for side, o, s in counts
    ]


def risk_chart(by_severity: dict[str, int]) -> list[dict[str, Any]]:
    top = max([1, *by_severity.values()])
    return [
        {"level": level, "count": n, "h": round(90 * n / top, 1)}
        for level, n in by_severity.items()
        if level != "unrated" or n
    ]


@rule(Rule.PLAN_VIEW)
async def dashboard(request: Request) -> Response:
    return await _dashboard(request)


@rule(Rule.PLAN_OWNER)
async def override_status(request: Request) -> Response:
    """An owner sets the red/amber/green status by hand, with a reason, or clears it."""
    plan = plan_of(request)
    identity = identity_of(request)
    svc = services(request)
    form = await request.form()
    if form.get("action") == "clear":
        await domain.clear_status(svc.store, plan.id)
        return RedirectResponse(f"/plans/{plan.id}/dashboard", status_code=303)
    try:
        await domain.override_status(
            svc.store, plan.id, form.get("rag", ""), form.get("reason", ""), identity.user_id
        )
    except ApiError as exc:
        # The same rule as the API's, said for a person filling in the form.
        if exc.field == "rag":
            return await _dashboard(request, error="Choose red, amber or green.")
        return await _dashboard(
            request,
            error=f"Say why, in up to {domain.MAX_REASON} characters: the reason is shown to "
            "everyone.",
        )
    return RedirectResponse(f"/plans/{plan.id}/dashboard", status_code=303)


async def _dashboard(request: Request, error: str | None = None) -> Response:
    plan = plan_of(request)
    identity = identity_of(request)
    summary = await domain.plan_summary(services(request).store, plan.id)
    context = {
        "user": identity,
        "plan": plan,
        "s": summary,
        "tasks_donut": donut(**summary["progress"]["tasks"]),
        "milestones_donut": donut(**summary["progress"]["milestones"]),
        "court": court_chart(summary),
        "risks": risk_chart(summary["risks"]["by_severity"]),
        "verdicts": VERDICTS,
        "sides": SIDE_LABELS,
        "error": error,
        "active": "dashboard",
        "can_override": allowed(Rule.PLAN_OWNER, identity),
        **plan_nav(identity),
    }
    return render(request, "dashboard.html", context, 400 if error else 200)


def describe(value: Any) -> str:
    """A commitment-history value as a person reads it."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        if "label" in value and "id" in value:
            side = f" ({value['side']})" if value.get("side") else ""
            return f"@{value['label']}{side}"
        if "text" in value:
            return str(value["text"])
        return ", ".join(f"{k}: {describe(v)}" for k, v in value.items() if k != "id" and v)
    return str(value).replace("_", " ")


@rule(Rule.PLAN_VIEW)
async def history(request: Request) -> Response:
    identity = identity_of(request)
    plan = plan_of(request)

    def read(s: Session) -> tuple[dict[str, str], list[persistence.HistoryRecord]]:
        names: dict[str, str] = {}
        for t in persistence.list_tasks(session=s, plan_id=plan.id):
            names[t["id"]] = t["text"]
        for table, field in (("key_results", "metric"), ("risks", "risk"), ("contacts", "name")):
            for r in persistence.list_rows(session=s, plan_id=plan.id, table=table):
                names[r["id"]] = r[field] or r.get("role") or ""
        return names, persistence.list_history(session=s, plan_id=plan.id, limit=500)

    names, events = await services(request).store.run(read)
    rows = []
    for e in events:
        snapshot = e.new if isinstance(e.new, dict) else e.old if isinstance(e.old, dict) else {}
        name = names.get(e.entity_id) or describe(
            {k: v for k, v in snapshot.items() if k in ("text", "metric", "risk", "name")}
        )
        rows.append(
            {
                "at": e.at,
                "who": e.author_name or "Tandem",
                "verb": KIND_LABELS.get(e.kind, e.kind),
                "entity": ENTITY_LABELS.get(e.entity, e.entity),
                "name": name,
                "kind": e.kind,
                "old": None if e.kind == "created" else describe(e.old),
                "new": None if e.kind == "removed" else describe(e.new),
            }
        )
    context = {
        "user": identity,
        "plan": plan,
        "rows": rows,
        "now": datetime.now(UTC),
        "active": "history",
        **plan_nav(identity),
    }
    return render(request, "history.html", context)

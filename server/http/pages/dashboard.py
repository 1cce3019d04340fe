"""Server-rendered views of the plan as data: the dashboard (with SVG charts drawn here)."""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server import plan as domain
from server.identity import Rule, allowed, plan_nav
from server.plan import ApiError

from ..guard import identity_of, plan_of, rule
from ..responses import render, services

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

"""The plan dashboard's figures, from the materialised tables: progress, the next milestone,
whose court the ball is in, key results, risks and the red/amber/green status.

The status rules (also in the README and on the dashboard page):

- **Red** when a milestone is past its due date and not done, or when more than a quarter of
  the open tasks that have a due date are overdue.
- **Amber** when any task is overdue, or the next milestone is at risk (a task due on or
  before it is overdue), or a risk of high severity is recorded, or a key result's date has
  passed short of its target.
- **Green** otherwise.

An owner can override the status with a reason; the computed status stays visible beside it.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import persistence
from server.identity import CUSTOMER, VENDOR
from server.identity import SIDES as PLAN_SIDES

SOON_DAYS = 7
_SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# "unknown": an owner typed as a bare name, whose side nobody said; "unassigned": no owner.
# A task owner's side: a plan side, or not known (a name typed in), or nobody yet.
TASK_SIDES = (VENDOR, CUSTOMER, "unknown", "unassigned")

RULES = [
    (
        "red",
        "A milestone is past its due date and not done, or more than a quarter of the open "
        "tasks with a due date are overdue.",
    ),
    (
        "amber",
        "Any task is overdue, the next milestone is at risk, a high-severity risk is recorded, "
        "or a key result's date has passed short of its target.",
    ),
    ("green", "Otherwise."),
]


def task_json(row: dict[str, Any]) -> dict[str, Any]:
    owner = None
    if row["owner_ref"] is not None or row["owner_label"] is not None:
        owner = {"id": row["owner_ref"], "label": row["owner_label"], "side": row["owner_side"]}
    due = row["due"]
    return {
        "id": row["id"],
        "text": row["text"],
        "owner": owner,
        "due": due.isoformat() if due else None,
        "status": row["status"],
        "checked": row["checked"],
        "milestone": row["milestone"],
        "section": row["section"],
    }


def kr_progress(row: dict[str, Any]) -> float | None:
    """How far current is from baseline towards target, clamped to 0..1; None when unknown."""
    b, t, c = row["baseline_value"], row["target_value"], row["current_value"]
    if b is None or t is None or c is None or t == b:
        return None
    progress: float = (c - b) / (t - b)
    return max(0.0, min(1.0, progress))


def _parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def _side_of(t: dict[str, Any]) -> str:
    if t["owner_side"] in PLAN_SIDES:
        return str(t["owner_side"])
    return "unassigned" if t["owner_ref"] is None and t["owner_label"] is None else "unknown"


def _open(t: dict[str, Any]) -> bool:
    status: str = t["status"]
    return status != "done"


def summarise(
    tasks: list[dict[str, Any]],
    key_results: list[dict[str, Any]],
    risks: list[dict[str, Any]],
    override: persistence.StatusOverride | None,
    today: date,
) -> dict[str, Any]:
    plain = [t for t in tasks if not t["milestone"]]
    milestones = [t for t in tasks if t["milestone"]]
    overdue = [t for t in tasks if _open(t) and t["due"] is not None and t["due"] < today]
    soon_end = today + timedelta(days=SOON_DAYS)
    due_soon = [
        t for t in tasks if _open(t) and t["due"] is not None and today <= t["due"] <= soon_end
    ]

    def by_side(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {s: [] for s in TASK_SIDES}
        for t in items:
            out[_side_of(t)].append(task_json(t))
        return out

    upcoming = sorted(
        (m for m in milestones if _open(m)),
        key=lambda m: (m["due"] is None, m["due"] or date.max, m["position"]),
    )
    next_ms = upcoming[0] if upcoming else None
    next_json = None
    if next_ms is not None:
        before = [
            t
            for t in tasks
            if _open(t)
            and t is not next_ms
            and t["due"] is not None
            and next_ms["due"] is not None
            and t["due"] <= next_ms["due"]
        ]
        if next_ms["due"] is None:
            verdict, why = "unknown", "It has no due date yet."
        elif next_ms["due"] < today:
            verdict, why = "overdue", f"It was due on {next_ms['due'].isoformat()}."
        elif any(t["due"] < today for t in before):
            n = sum(1 for t in before if t["due"] < today)
            verdict, why = (
                "at_risk",
                f"{_n(n, 'task')} due before it {'is' if n == 1 else 'are'} overdue.",
            )
        else:
            verdict, why = "on_track", "No task due before it is overdue."
        next_json = {**task_json(next_ms), "verdict": verdict, "why": why}

    krs = []
    for k in key_results:
        progress = kr_progress(k)
        krs.append(
            {
                "id": k["id"],
                "metric": k["metric"],
                "baseline": k["baseline"],
                "target": k["target"],
                "current": k["current"],
                "unit": k["unit"],
                "date": k["date"],
                "baseline_value": k["baseline_value"],
                "target_value": k["target_value"],
                "current_value": k["current_value"],
                "progress": progress,
            }
        )
    severity = {"high": 0, "medium": 0, "low": 0, "unrated": 0}
    for r in risks:
        level = r["severity"].strip().lower()
        severity[level if level in severity else "unrated"] += 1

    reasons: list[str] = []
    dated_open = [t for t in tasks if _open(t) and t["due"] is not None]
    late_ms = [m for m in milestones if _open(m) and m["due"] is not None and m["due"] < today]
    if late_ms:
        reasons.append(f"Milestone “{late_ms[0]['text']}” is overdue.")
    if dated_open and len(overdue) / len(dated_open) > 0.25:
        reasons.append(f"{len(overdue)} of {len(dated_open)} open dated tasks are overdue.")
    computed = "red" if reasons else None
    if computed is None:
        if overdue:
            reasons.append(f"{_n(len(overdue), 'task')} overdue.")
        if next_json is not None and next_json["verdict"] == "at_risk":
            reasons.append(f"Next milestone at risk: {next_json['why']}")
        if severity["high"]:
            reasons.append(f"{_n(severity['high'], 'high-severity risk')} recorded.")
        for k in krs:
            day = _parse_day(k["date"])
            if day is not None and day < today and k["progress"] is not None and k["progress"] < 1:
                reasons.append(f"Key result “{k['metric']}” passed its date short of target.")
        computed = "amber" if reasons else "green"
    if not reasons:
        reasons.append("Nothing overdue, no milestone at risk, no high-severity risk.")

    return {
        "progress": {
            "tasks": {"done": sum(1 for t in plain if not _open(t)), "total": len(plain)},
            "milestones": {
                "done": sum(1 for m in milestones if not _open(m)),
                "total": len(milestones),
            },
        },
        "next_milestone": next_json,
        "overdue": by_side(overdue),
        "due_soon": by_side(due_soon),
        "key_results": krs,
        "risks": {
            "by_severity": severity,
            "total": len(risks),
            "items": [
                {k: r[k] for k in ("id", "risk", "severity", "owner", "mitigation")}
                for r in sorted(risks, key=lambda r: _SEVERITY_ORDER.get(r["severity"].lower(), 3))
            ],
        },
        "status": {
            "rag": override.rag if override else computed,
            "computed": computed,
            "reasons": reasons,
            "override": None
            if override is None
            else {
                "rag": override.rag,
                "reason": override.reason,
                "by": override.set_by_name,
                "at": override.set_at.isoformat(),
            },
            "rules": [{"rag": rag, "when": text} for rag, text in RULES],
        },
        "today": today.isoformat(),
    }

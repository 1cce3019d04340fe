"""The handover brief: what a successor must learn about an account in an hour, computed from
the materialised tables and the commitment history (no Starlette, no rendering).

What was promised (objectives, key results, milestones, commitments by side), what moved (how
often each milestone slipped, each key result's values over time), what was delivered (met and
missed milestones, how reliably each side kept its dates) and what is at risk (risks and how
they developed), with the key events of the account's life.

Definitions (the README says the same):

- A task's **first date** is the first due date it was given (its "created" snapshot, else its
  first due-date move); its **date** is the one in force now.
- A dated task is **kept** when it was done on or before its date; **late** when it was done
  after it, or is still open with its date past.
- **On time %** = kept / (kept + late), per side of the task's owner.
- **Slip** of a late task = days from its first date to the day it was done (or today, while it
  is open); the **average slip** is over the late tasks. A date moved later is a **slip** of a
  milestone; **big** when it moves by at least ``BIG_SLIP_DAYS``.
- A key result's **trend** compares its first recorded current value with its latest one:
  *improving* when it moved towards the target, *worsening* away from it, *flat* otherwise.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import anyio
from sqlalchemy.orm import Session

import persistence
from crdt import parse_number
from server.store import Store

from .summary import TASK_SIDES, kr_progress, summarise

BIG_SLIP_DAYS = 7
ALL_EVENTS = 10_000_000  # the whole commitment history: the brief reads every event
# Sections of the document read as the account's objectives, by heading text.
OBJECTIVE_HEADING = re.compile(
    r"objective|outcome|goal|success criteria|definition of success|key benefits", re.I
)
SIDE_LABELS = {
    "vendor": "Vendor",
    "customer": "Customer",
    "unknown": "Side not set",
    "unassigned": "Unassigned",
}
_SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3}

Node = Mapping[str, Any]


@dataclass(frozen=True)
class BriefInput:
    """Everything the brief is computed from, read in one go by the caller."""

    plan: persistence.PlanRecord
    tasks: list[dict[str, Any]]
    key_results: list[dict[str, Any]]
    risks: list[dict[str, Any]]
    contacts: list[dict[str, Any]]
    members: list[persistence.MemberRecord]
    events: list[persistence.HistoryRecord]  # any order; sorted here
    override: persistence.StatusOverride | None
    document: Node  # the shared plan as ProseMirror JSON
    today: date
    internal: Node | None = None  # the internal account plan: vendor-side readers only
    internal_markdown: str | None = None


# --- small pure pieces (unit-tested) ---------------------------------------------------------


def _day(value: Any) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def side_of(task: Mapping[str, Any]) -> str:
    """vendor, customer, unknown (a typed name with no side) or unassigned (no owner)."""
    side = task.get("owner_side")
    if side in ("vendor", "customer"):
        return str(side)
    if task.get("owner_ref") is None and task.get("owner_label") is None:
        return "unassigned"
    return "unknown"


@dataclass(frozen=True)
class DueMove:
    at: datetime
    who: str
    old: date | None
    new: date | None

    @property
    def days(self) -> int | None:
        """Days the date moved (positive: later), None when it was set or cleared."""
        if self.old is None or self.new is None:
            return None
        return (self.new - self.old).days


def due_moves(events: Iterable[persistence.HistoryRecord]) -> list[DueMove]:
    """A task's due-date moves, oldest first (``events``: that task's, in time order)."""
    return [
        DueMove(e.at, e.author_name or "Tandem", _day(e.old), _day(e.new))
        for e in events
        if e.kind == "due_moved"
    ]


def first_due(events: Sequence[persistence.HistoryRecord], current: date | None) -> date | None:
    """The first due date a task was given: its created snapshot's, else the first date set."""
    for e in events:
        if e.kind == "created" and isinstance(e.new, dict):
            if e.new.get("due"):
                return _day(e.new["due"])
        elif e.kind == "due_moved":
            if e.old:
                return _day(e.old)
            if e.new:
                return _day(e.new)
    return current


def completed_on(
    task: Mapping[str, Any], events: Sequence[persistence.HistoryRecord]
) -> date | None:
    """The day a task that is done now was (last) done: its last completion, or its creation
    when it was written already ticked; None when it is not done."""
    if task["status"] != "done":
        return None
    for e in reversed(events):
        if e.kind == "completed":
            return e.at.date()
    for e in events:
        if e.kind == "created":
            return e.at.date()
    return None


def times_slipped(moves: Sequence[DueMove]) -> int:
    return sum(1 for m in moves if (m.days or 0) > 0)


@dataclass
class SideRecord:
    kept: int = 0
    late: int = 0
    open_late: int = 0
    slip_days: list[int] = field(default_factory=list)
    moved_later: int = 0

    def json(self, side: str) -> dict[str, Any]:
        judged = self.kept + self.late
        return {
            "side": side,
            "label": SIDE_LABELS[side],
            "kept": self.kept,
            "late": self.late,
            "open_late": self.open_late,
            "judged": judged,
            "on_time_pct": None if not judged else round(100 * self.kept / judged),
            "avg_slip_days": None
            if not self.slip_days
            else round(sum(self.slip_days) / len(self.slip_days), 1),
            "moved_later": self.moved_later,
        }


def reliability(
    tasks: Sequence[Mapping[str, Any]],
    history: Mapping[str, Sequence[persistence.HistoryRecord]],
    today: date,
) -> list[dict[str, Any]]:
    """How reliably each side kept its dates: on-time %, average slip in days, dates moved.

    ``history``: each task's events in time order, by task id. See the module's definitions.
    """
    sides = {s: SideRecord() for s in TASK_SIDES}
    for t in tasks:
        due = _day(t["due"])
        if due is None:
            continue
        rec = sides[side_of(t)]
        events = history.get(t["id"], ())
        rec.moved_later += times_slipped(due_moves(events))
        done = completed_on(t, events)
        first = first_due(events, due) or due
        if done is not None:
            if done <= due:
                rec.kept += 1
                continue
            rec.late += 1
            rec.slip_days.append(max(0, (done - first).days))
        elif due < today:
            rec.late += 1
            rec.open_late += 1
            rec.slip_days.append(max(0, (today - first).days))
    return [sides[s].json(s) for s in TASK_SIDES]


def trend(values: Sequence[float | None], baseline: float | None, target: float | None) -> str:
    """improving, worsening, flat or unknown: the first recorded value against the latest."""
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return "unknown" if not known else "flat"
    first, last = known[0], known[-1]
    if last == first:
        return "flat"
    towards = 1.0
    if baseline is not None and target is not None and target != baseline:
        towards = 1.0 if target > baseline else -1.0
    return "improving" if (last - first) * towards > 0 else "worsening"


def sparkline(values: Sequence[float | None], width: int = 120, height: int = 28) -> str:
    """SVG polyline points for the known values (empty with fewer than two)."""
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return ""
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    step = width / (len(known) - 1)
    pad = 3
    return " ".join(
        f"{round(i * step, 1)},{round(pad + (height - 2 * pad) * (1 - (v - low) / span), 1)}"
        for i, v in enumerate(known)
    )


# --- the document's text ---------------------------------------------------------------------


def node_text(node: Node) -> str:
    if node.get("type") == "text":
        return str(node.get("text") or "")
    if node.get("type") == "mention":
        label = (node.get("attrs") or {}).get("label")
        return f"@{label}" if label else ""
    return "".join(node_text(c) for c in node.get("content") or [])


def objective_sections(document: Node) -> list[dict[str, Any]]:
    """The document's objectives: each section whose heading names objectives, outcomes,
    goals or success criteria, with its blocks (up to the next heading of its level or
    higher) as ProseMirror JSON."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for block in document.get("content") or []:
        if block.get("type") == "heading":
            level = int((block.get("attrs") or {}).get("level") or 1)
            if current is not None and level <= current["level"]:
                current = None
            if current is None:
                title = " ".join(node_text(block).split())
                if OBJECTIVE_HEADING.search(title):
                    current = {"heading": title, "level": level, "blocks": []}
                    out.append(current)
                continue
        if current is not None:
            current["blocks"].append(block)
    return [s for s in out if any(node_text(b).strip() for b in s["blocks"])]


# --- the brief -------------------------------------------------------------------------------


def wording(task: Mapping[str, Any]) -> str:
    """A task's text without its owner chip (the owner has a column of its own)."""
    text, label = str(task.get("text") or ""), task.get("owner_label")
    if not label:
        return text
    return " ".join(text.replace(f"@{label}", " ", 1).split())


def _task_view(t: Mapping[str, Any], today: date) -> dict[str, Any]:
    due = _day(t["due"])
    return {
        "id": t["id"],
        "text": wording(t),
        "owner": t["owner_label"],
        "side": side_of(t),
        "due": due,
        "status": t["status"],
        "overdue_days": (today - due).days if due and due < today and t["status"] != "done" else 0,
    }


def _milestones(
    tasks: Sequence[Mapping[str, Any]],
    history: Mapping[str, Sequence[persistence.HistoryRecord]],
    today: date,
) -> list[dict[str, Any]]:
    out = []
    for t in tasks:
        if not t["milestone"]:
            continue
        events = history.get(t["id"], ())
        due = _day(t["due"])
        moves = due_moves(events)
        done = completed_on(t, events)
        first = first_due(events, due)
        if done is not None:
            outcome = "met" if due is None or done <= due else "met late"
        elif due is not None and due < today:
            outcome = "missed"
        else:
            outcome = "upcoming" if due is not None else "no date"
        out.append(
            {
                **_task_view(t, today),
                "first_due": first,
                "done_on": done,
                "outcome": outcome,
                "slipped": times_slipped(moves),
                "moves": len([m for m in moves if m.days is not None]),
                "slip_days": (due - first).days if due and first else 0,
            }
        )
    return out


def _key_results(
    krs: Sequence[Mapping[str, Any]],
    history: Mapping[str, Sequence[persistence.HistoryRecord]],
) -> list[dict[str, Any]]:
    out = []
    for k in krs:
        points: list[dict[str, Any]] = []
        for e in history.get(k["id"], ()):
            value: Any = None
            if e.kind == "created" and isinstance(e.new, dict):
                value = e.new.get("current")
            elif e.kind == "kr_value_changed":
                value = e.new
            if isinstance(value, str) and value.strip():
                if points and points[-1]["value"] == value:
                    continue
                points.append({"at": e.at, "value": value, "number": parse_number(value)})
        if not points and k["current"]:
            points.append({"at": None, "value": k["current"], "number": k["current_value"]})
        numbers = [p["number"] for p in points]
        out.append(
            {
                "id": k["id"],
                "metric": k["metric"],
                "baseline": k["baseline"],
                "target": k["target"],
                "current": k["current"],
                "unit": k["unit"],
                "date": k["date"],
                "progress": kr_progress(dict(k)),
                "points": points,
                "trend": trend(numbers, k["baseline_value"], k["target_value"]),
                "sparkline": sparkline(numbers),
            }
        )
    return out


def _risks(
    risks: Sequence[Mapping[str, Any]],
    history: Mapping[str, Sequence[persistence.HistoryRecord]],
    removed: Mapping[str, persistence.HistoryRecord],
) -> list[dict[str, Any]]:
    def story(risk_id: str) -> tuple[list[dict[str, Any]], datetime | None, str | None]:
        steps: list[dict[str, Any]] = []
        opened, first_severity = None, None
        for e in history.get(risk_id, ()):
            who = e.author_name or "Tandem"
            if e.kind == "created":
                opened = e.at
                first_severity = (e.new or {}).get("severity") if isinstance(e.new, dict) else None
                steps.append({"at": e.at, "who": who, "what": "raised"})
            elif e.kind == "risk_severity_changed":
                up = _SEVERITY_RANK.get(str(e.new).strip().lower(), 0) > _SEVERITY_RANK.get(
                    str(e.old).strip().lower(), 0
                )
                verb = "escalated" if up else "de-escalated"
                steps.append(
                    {"at": e.at, "who": who, "what": f"{verb}: {e.old or '—'} → {e.new or '—'}"}
                )
            elif e.kind == "reassigned":
                steps.append(
                    {"at": e.at, "who": who, "what": f"owner: {e.old or '—'} → {e.new or '—'}"}
                )
            elif e.kind == "field_changed" and isinstance(e.new, dict) and "mitigation" in e.new:
                steps.append({"at": e.at, "who": who, "what": "mitigation updated"})
            elif e.kind == "removed":
                steps.append({"at": e.at, "who": who, "what": "closed (removed from the plan)"})
        return steps, opened, first_severity

    out = []
    for r in risks:
        steps, opened, first = story(r["id"])
        out.append(
            {
                "id": r["id"],
                "risk": r["risk"],
                "severity": r["severity"],
                "first_severity": first,
                "owner": r["owner"],
                "mitigation": r["mitigation"],
                "open": True,
                "opened": opened,
                "steps": steps,
            }
        )
    for risk_id, gone in removed.items():
        steps, opened, first = story(risk_id)
        old = gone.old if isinstance(gone.old, dict) else {}
        out.append(
            {
                "id": risk_id,
                "risk": str(old.get("risk") or ""),
                "severity": str(old.get("severity") or ""),
                "first_severity": first,
                "owner": str(old.get("owner") or ""),
                "mitigation": str(old.get("mitigation") or ""),
                "open": False,
                "opened": opened,
                "steps": steps,
            }
        )
    return out


def _key_events(
    data: BriefInput,
    events: Sequence[persistence.HistoryRecord],
    tasks: Mapping[str, Mapping[str, Any]],
    milestones: Sequence[Mapping[str, Any]],
    names: Mapping[str, str],
) -> list[dict[str, Any]]:
    creator = next((m.name for m in data.members if m.user_id == data.plan.created_by), None)
    out: list[dict[str, Any]] = [
        {
            "at": data.plan.created_at,
            "who": creator or "",
            "kind": "created",
            "what": f"Plan created for {data.plan.customer}",
        }
    ]

    def is_milestone(e: persistence.HistoryRecord) -> bool:
        if e.entity_id in tasks:
            return bool(tasks[e.entity_id]["milestone"])
        snap = e.new if isinstance(e.new, dict) else e.old if isinstance(e.old, dict) else {}
        return bool(snap.get("milestone"))

    krs = {k["id"]: k for k in data.key_results}
    for e in events:
        who = e.author_name or "Tandem"
        name = names.get(e.entity_id, "")
        if e.entity == "task":
            if e.kind == "completed" and is_milestone(e):
                out.append(
                    {
                        "at": e.at,
                        "who": who,
                        "kind": "milestone",
                        "what": f"Milestone reached: {name}",
                    }
                )
            elif e.kind == "due_moved":
                old, new = _day(e.old), _day(e.new)
                if old is None or new is None:
                    continue
                days = (new - old).days
                if days > 0 and (days >= BIG_SLIP_DAYS or is_milestone(e)):
                    label = "Milestone" if is_milestone(e) else "Task"
                    what = f"{label} moved {days} days later: {name} ({old} → {new})"
                    out.append({"at": e.at, "who": who, "kind": "slip", "what": what})
            elif e.kind == "status_changed" and e.new == "blocked":
                out.append({"at": e.at, "who": who, "kind": "blocked", "what": f"Blocked: {name}"})
            elif e.kind == "created" and is_milestone(e):
                out.append(
                    {"at": e.at, "who": who, "kind": "added", "what": f"Milestone added: {name}"}
                )
        elif e.entity == "risk":
            sev = ""
            if e.kind == "created" and isinstance(e.new, dict):
                sev = str(e.new.get("severity") or "").strip().lower()
                if sev == "high":
                    out.append(
                        {
                            "at": e.at,
                            "who": who,
                            "kind": "risk",
                            "what": f"High risk raised: {name}",
                        }
                    )
            elif e.kind == "risk_severity_changed" and str(e.new).strip().lower() == "high":
                out.append(
                    {
                        "at": e.at,
                        "who": who,
                        "kind": "risk",
                        "what": f"Risk escalated to high: {name}",
                    }
                )
            elif e.kind == "removed":
                out.append({"at": e.at, "who": who, "kind": "risk", "what": f"Risk closed: {name}"})
        elif e.entity == "key_result" and e.kind == "kr_value_changed" and e.entity_id in krs:
            k = krs[e.entity_id]
            reached = kr_progress({**k, "current_value": parse_number(str(e.new or ""))})
            before = kr_progress({**k, "current_value": parse_number(str(e.old or ""))})
            if reached is not None and reached >= 1 and (before is None or before < 1):
                out.append(
                    {
                        "at": e.at,
                        "who": who,
                        "kind": "kr",
                        "what": f"Key result reached its target: {name} ({e.new})",
                    }
                )
    for m in milestones:
        if m["outcome"] in ("missed", "met late") and m["due"] is not None:
            at = datetime.combine(m["due"], datetime.min.time(), tzinfo=data.plan.created_at.tzinfo)
            out.append(
                {
                    "at": at,
                    "who": "",
                    "kind": "missed",
                    "what": f"Milestone date missed: {m['text']}",
                }
            )
    if data.override is not None:
        out.append(
            {
                "at": data.override.set_at,
                "who": data.override.set_by_name or "",
                "kind": "status",
                "what": f"Status set to {data.override.rag}: {data.override.reason}",
            }
        )
    out.sort(key=lambda x: x["at"])
    return out


def compute_brief(data: BriefInput) -> dict[str, Any]:
    """The brief's figures and texts, ready for a template or the Markdown writer."""
    today = data.today
    events = sorted(data.events, key=lambda e: (e.at, e.id))
    history: dict[str, list[persistence.HistoryRecord]] = defaultdict(list)
    for e in events:
        history[e.entity_id].append(e)
    tasks = {t["id"]: t for t in data.tasks}
    names: dict[str, str] = {t["id"]: wording(t) for t in data.tasks}
    for table, key in (("key_results", "metric"), ("risks", "risk"), ("contacts", "name")):
        for r in getattr(data, table):
            names[r["id"]] = r[key]
    current_risks = {r["id"] for r in data.risks}
    removed_risks: dict[str, persistence.HistoryRecord] = {}
    for e in events:
        if e.entity_id not in names:
            snap = e.old if isinstance(e.old, dict) else e.new if isinstance(e.new, dict) else {}
            text = snap.get("text") or snap.get("metric") or snap.get("risk") or snap.get("name")
            if text:
                names[e.entity_id] = str(text)
        if e.entity == "risk" and e.kind == "removed" and e.entity_id not in current_risks:
            removed_risks[e.entity_id] = e
    summary = summarise(data.tasks, data.key_results, data.risks, data.override, today)
    milestones = _milestones(data.tasks, history, today)
    open_tasks = [_task_view(t, today) for t in data.tasks if t["status"] != "done"]
    by_side = []
    for side in TASK_SIDES:
        mine = [t for t in open_tasks if t["side"] == side]
        mine.sort(key=lambda t: (-t["overdue_days"], t["due"] is None, t["due"] or date.max))
        by_side.append(
            {
                "side": side,
                "label": SIDE_LABELS[side],
                "open": mine,
                "overdue": [t for t in mine if t["overdue_days"] > 0],
            }
        )
    return {
        "plan": {
            "id": data.plan.id,
            "title": data.plan.title,
            "customer": data.plan.customer,
            "created_at": data.plan.created_at,
        },
        "today": today,
        "status": summary["status"],
        "progress": summary["progress"],
        "next_milestone": summary["next_milestone"],
        "contacts": [{k: c[k] for k in ("name", "role", "email", "side")} for c in data.contacts],
        "members": sorted(
            ({"name": m.name, "role": m.role, "side": m.side} for m in data.members),
            key=lambda m: (m["side"] != "customer", m["name"].lower()),
        ),
        "objectives": objective_sections(data.document),
        "key_results": _key_results(data.key_results, history),
        "milestones": milestones,
        "milestone_counts": {
            o: sum(1 for m in milestones if m["outcome"] == o)
            for o in ("met", "met late", "missed", "upcoming", "no date")
        },
        "commitments": by_side,
        "reliability": reliability(data.tasks, history, today),
        "risks": _risks(data.risks, history, removed_risks),
        "events": _key_events(data, events, tasks, milestones, names),
        "internal": data.internal,
        "internal_markdown": data.internal_markdown,
    }


async def read_brief(
    store: Store,
    plan: persistence.PlanRecord,
    *,
    document: Node,
    today: date,
    internal: Node | None = None,
    internal_markdown: str | None = None,
) -> dict[str, Any]:
    """The brief of one plan: the tables and the whole commitment history, read in one
    transaction beside the writer, then computed in a worker thread (``internal`` only for
    vendor-side readers)."""

    def read(s: Session) -> BriefInput:
        return BriefInput(
            plan=plan,
            tasks=persistence.list_tasks(session=s, plan_id=plan.id),
            key_results=persistence.list_rows(session=s, plan_id=plan.id, table="key_results"),
            risks=persistence.list_rows(session=s, plan_id=plan.id, table="risks"),
            contacts=persistence.list_rows(session=s, plan_id=plan.id, table="contacts"),
            members=persistence.list_members(session=s, plan_id=plan.id),
            events=persistence.list_history(session=s, plan_id=plan.id, limit=ALL_EVENTS),
            override=persistence.get_status_override(session=s, plan_id=plan.id),
            document=document,
            today=today,
            internal=internal,
            internal_markdown=internal_markdown,
        )

    data = await store.read(read)
    # A long-lived plan has tens of thousands of events: computed off the event loop.
    return await anyio.to_thread.run_sync(compute_brief, data)

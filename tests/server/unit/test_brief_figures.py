"""The handover brief's figures, from hand-made tables and commitment histories: slips, trends,
on-time rates, milestone outcomes, key events, the objectives read from the document, and the
Markdown's escaping."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

import persistence
from server.plan.brief import (
    BriefInput,
    completed_on,
    compute_brief,
    due_moves,
    first_due,
    objective_sections,
    reliability,
    sparkline,
    times_slipped,
    trend,
)
from server.plan.brief_markdown import brief_markdown, md

TODAY = date(2026, 12, 6)
START = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
_ids = itertools.count(1)


def ev(
    entity_id: str,
    kind: str,
    old: Any = None,
    new: Any = None,
    *,
    day: int = 0,
    who: str = "Casey",
    entity: str = "task",
) -> persistence.HistoryRecord:
    """An event ``day`` days after START."""
    n = next(_ids)
    return persistence.HistoryRecord(
        id=n,
        entity=entity,
        entity_id=entity_id,
        kind=kind,
        old=old,
        new=new,
        author_id=1,
        author_name=who,
        at=START + timedelta(days=day, seconds=n),
        update_id=n,
    )


def task(
    task_id: str,
    due: str | None,
    *,
    side: str | None = "vendor",
    status: str = "todo",
    milestone: bool = False,
    text: str | None = None,
) -> dict[str, Any]:
    return {
        "id": task_id,
        "position": 0,
        "text": text or task_id,
        "owner_ref": None if side is None else f"name:{side}",
        "owner_label": None if side is None else side.title(),
        "owner_side": side if side in ("vendor", "customer") else None,
        "due": date.fromisoformat(due) if due else None,
        "status": status,
        "checked": status == "done",
        "milestone": milestone,
        "section": [],
    }


def created(task_id: str, due: str | None, *, day: int = 0, **extra: Any) -> Any:
    return ev(task_id, "created", None, {"id": task_id, "due": due, **extra}, day=day)


# --- due moves and first dates ---------------------------------------------------------------


def test_due_moves_count_only_later_dates_as_slips() -> None:
    events = [
        created("t1", "2026-10-01"),
        ev("t1", "due_moved", "2026-10-01", "2026-10-15", day=5),  # +14: a slip
        ev("t1", "due_moved", "2026-10-15", "2026-10-10", day=6),  # -5: pulled in
        ev("t1", "due_moved", "2026-10-10", None, day=7),  # cleared
        ev("t1", "due_moved", None, "2026-11-01", day=8),  # set again
        ev("t1", "due_moved", "2026-11-01", "2026-11-02", day=9),  # +1: a slip
    ]
    moves = due_moves(events)
    assert [m.days for m in moves] == [14, -5, None, None, 1]
    assert times_slipped(moves) == 2
    assert moves[0].who == "Casey"


def test_first_due_is_the_first_date_ever_given() -> None:
    assert first_due([created("t1", "2026-10-01")], date(2026, 12, 1)) == date(2026, 10, 1)
    # Created without a date, given one later, then moved.
    later = [
        created("t1", None),
        ev("t1", "due_moved", None, "2026-10-05"),
        ev("t1", "due_moved", "2026-10-05", "2026-10-20"),
    ]
    assert first_due(later, date(2026, 10, 20)) == date(2026, 10, 5)
    # No history at all (a plan older than the history): the current date.
    assert first_due([], date(2026, 10, 20)) == date(2026, 10, 20)


def test_completed_on_is_the_last_completion_of_a_task_done_now() -> None:
    events = [
        created("t1", "2026-10-01"),
        ev("t1", "completed", "todo", "done", day=10),
        ev("t1", "reopened", "done", "todo", day=12),
        ev("t1", "completed", "todo", "done", day=20),
    ]
    assert (
        completed_on(task("t1", "2026-10-01", status="done"), events)
        == (START + timedelta(days=20)).date()
    )
    assert completed_on(task("t1", "2026-10-01"), events) is None
    # Written already ticked: done when it was created.
    born_done = [created("t2", "2026-10-01", day=3)]
    assert (
        completed_on(task("t2", None, status="done"), born_done)
        == (START + timedelta(days=3)).date()
    )


# --- reliability -----------------------------------------------------------------------------


def test_reliability_by_side_on_time_rate_and_average_slip() -> None:
    # Vendor: v1 done 2 days early (kept); v2 first due Sep 10, moved to Sep 20, done Sep 25
    # (late; slip 15 days from the first date); v3 due in the future, open (not judged yet).
    # Customer: c1 open, due Nov 26 (late, 10 days by TODAY); c2 done on its day (kept).
    tasks = [
        task("v1", "2026-09-05", status="done"),
        task("v2", "2026-09-20", status="done"),
        task("v3", "2026-12-20"),
        task("c1", "2026-11-26", side="customer"),
        task("c2", "2026-09-03", side="customer", status="done"),
        task("u1", "2026-09-01", side=None),  # unassigned and late
        task("n1", None),  # no date: never judged
    ]
    history = {
        "v1": [created("v1", "2026-09-05"), ev("v1", "completed", day=2)],
        "v2": [
            created("v2", "2026-09-10"),
            ev("v2", "due_moved", "2026-09-10", "2026-09-20", day=5),
            ev("v2", "completed", day=24),
        ],
        "c1": [created("c1", "2026-11-26")],
        "c2": [created("c2", "2026-09-03"), ev("c2", "completed", day=2)],
        "u1": [created("u1", "2026-09-01")],
    }
    rows = {r["side"]: r for r in reliability(tasks, history, TODAY)}
    assert rows["vendor"] | {} == {
        "side": "vendor",
        "label": "Vendor",
        "kept": 1,
        "late": 1,
        "open_late": 0,
        "judged": 2,
        "on_time_pct": 50,
        "avg_slip_days": 15.0,
        "moved_later": 1,
    }
    assert rows["customer"]["on_time_pct"] == 50
    assert rows["customer"]["open_late"] == 1
    assert rows["customer"]["avg_slip_days"] == 10.0
    assert rows["unassigned"]["late"] == 1 and rows["unassigned"]["on_time_pct"] == 0
    assert rows["unknown"]["judged"] == 0 and rows["unknown"]["on_time_pct"] is None


def test_a_task_done_late_after_being_moved_early_slips_from_its_first_date() -> None:
    # First due Oct 10, pulled in to Oct 5, done Oct 12: late by 7 against the date, and the
    # slip counts from the first promise (2 days).
    events = [
        created("t", "2026-10-10"),
        ev("t", "due_moved", "2026-10-10", "2026-10-05"),
        ev("t", "completed", day=41),  # START + 41 days = Oct 12
    ]
    (vendor, *_rest) = reliability([task("t", "2026-10-05", status="done")], {"t": events}, TODAY)
    assert vendor["late"] == 1 and vendor["avg_slip_days"] == 2.0 and vendor["moved_later"] == 0


# --- key result trends -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "baseline", "target", "expected"),
    [
        ([100, 150, 310], 100, 500, "improving"),
        ([310, 150], 100, 500, "worsening"),
        ([40, 30, 25], 40, 20, "improving"),  # lower is better: churn from 40% to 20%
        ([25, 30], 40, 20, "worsening"),
        ([7, 9, 7], 0, 10, "flat"),
        ([5], 0, 10, "flat"),
        ([], 0, 10, "unknown"),
        ([None, None], 0, 10, "unknown"),
        ([1, None, 3], None, None, "improving"),  # no target: up is taken as better
    ],
)
def test_trend(values: list[float | None], baseline: Any, target: Any, expected: str) -> None:
    assert trend(values, baseline, target) == expected


def test_sparkline_points_span_the_box() -> None:
    assert sparkline([5]) == ""
    points = sparkline([0, 10, 5], width=100, height=20)
    assert points == "0.0,17.0 50.0,3.0 100.0,10.0"


# --- the whole brief -------------------------------------------------------------------------


def plan_record() -> persistence.PlanRecord:
    return persistence.PlanRecord(
        id="p1",
        title="Acme rollout",
        customer="Acme",
        created_by=1,
        created_at=START - timedelta(days=1),
        updated_at=START,
    )


def member(name: str, side: str, role: str = "editor", user_id: int = 2) -> Any:
    return persistence.MemberRecord(
        plan_id="p1",
        user_id=user_id,
        name=name,
        email=f"{name.lower()}@example.com",
        role=role,
        side=side,
        added_at=START,
    )


def brief_of(
    tasks: list[dict[str, Any]],
    events: list[persistence.HistoryRecord],
    *,
    key_results: list[dict[str, Any]] | None = None,
    risks: list[dict[str, Any]] | None = None,
    document: dict[str, Any] | None = None,
    internal: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return compute_brief(
        BriefInput(
            plan=plan_record(),
            tasks=tasks,
            key_results=key_results or [],
            risks=risks or [],
            contacts=[],
            members=[member("Casey", "vendor", "owner", 1), member("Robin", "customer")],
            events=list(reversed(events)),  # any order in, time order out
            override=None,
            document=document or {"type": "doc", "content": []},
            today=TODAY,
            internal=internal,
            internal_markdown=None if internal is None else "secret plan\n",
        )
    )


def test_milestone_outcomes_and_how_often_each_slipped() -> None:
    tasks = [
        task("m_met", "2026-09-10", milestone=True, status="done"),
        task("m_late", "2026-09-10", milestone=True, status="done"),
        task("m_missed", "2026-11-01", milestone=True, side="customer"),
        task("m_next", "2027-01-15", milestone=True),
        task("m_nodate", None, milestone=True),
    ]
    events = [
        created("m_met", "2026-09-10"),
        ev("m_met", "completed", day=5),
        created("m_late", "2026-09-10"),
        ev("m_late", "completed", day=20),
        created("m_missed", "2026-10-01"),
        ev("m_missed", "due_moved", "2026-10-01", "2026-10-15", day=10, who="Robin"),
        ev("m_missed", "due_moved", "2026-10-15", "2026-11-01", day=30, who="Robin"),
        created("m_next", "2027-01-15"),
        created("m_nodate", None),
    ]
    b = brief_of(tasks, events)
    outcome = {m["id"]: m for m in b["milestones"]}
    assert outcome["m_met"]["outcome"] == "met"
    assert outcome["m_late"]["outcome"] == "met late"
    missed = outcome["m_missed"]
    assert missed["outcome"] == "missed"
    assert (missed["slipped"], missed["slip_days"]) == (2, 31)
    assert missed["first_due"] == date(2026, 10, 1)
    assert outcome["m_next"]["outcome"] == "upcoming"
    assert outcome["m_nodate"]["outcome"] == "no date"
    assert b["milestone_counts"] == {
        "met": 1,
        "met late": 1,
        "missed": 1,
        "upcoming": 1,
        "no date": 1,
    }
    # Key events: reached, slipped (every later move of a milestone), missed, in time order.
    what = [e["what"] for e in b["events"]]
    assert "Milestone reached: m_met" in what
    assert "Milestone moved 14 days later: m_missed (2026-10-01 → 2026-10-15)" in what
    assert "Milestone moved 17 days later: m_missed (2026-10-15 → 2026-11-01)" in what
    assert "Milestone date missed: m_missed" in what
    assert [e["at"] for e in b["events"]] == sorted(e["at"] for e in b["events"])
    assert b["events"][0]["what"] == "Plan created for Acme" and b["events"][0]["who"] == "Casey"


def test_only_big_slips_of_plain_tasks_are_key_events() -> None:
    tasks = [task("small", "2026-10-04"), task("big", "2026-10-20")]
    events = [
        created("small", "2026-10-01"),
        ev("small", "due_moved", "2026-10-01", "2026-10-04", day=3),
        created("big", "2026-10-01"),
        ev("big", "due_moved", "2026-10-01", "2026-10-20", day=3),
        ev("big", "status_changed", "todo", "blocked", day=4),
    ]
    what = [e["what"] for e in brief_of(tasks, events)["events"]]
    assert "Task moved 19 days later: big (2026-10-01 → 2026-10-20)" in what
    assert not any("small" in w for w in what)
    assert "Blocked: big" in what


def test_open_and_overdue_commitments_by_side() -> None:
    tasks = [
        task("a", "2026-12-01", side="customer", text="Send SSO metadata @Customer"),
        task("b", "2026-12-20", side="customer"),
        task("c", "2026-11-01", side="vendor"),
        task("d", None, side=None),
        task("e", "2026-11-01", side="vendor", status="done"),
    ]
    groups = {g["side"]: g for g in brief_of(tasks, [])["commitments"]}
    customer = groups["customer"]
    assert [t["id"] for t in customer["open"]] == ["a", "b"]
    assert [t["id"] for t in customer["overdue"]] == ["a"]
    # The owner has a column of their own: the chip's "@Customer" leaves the text.
    assert customer["open"][0]["text"] == "Send SSO metadata"
    assert customer["open"][0]["overdue_days"] == 5
    assert [t["id"] for t in groups["vendor"]["overdue"]] == ["c"]
    assert [t["id"] for t in groups["unassigned"]["open"]] == ["d"]


def test_key_result_values_over_time_and_the_target_reached() -> None:
    kr = {
        "id": "k1",
        "metric": "Weekly active users",
        "baseline": "100",
        "target": "500",
        "current": "520",
        "unit": "",
        "date": "2027-01-31",
        "baseline_value": 100.0,
        "target_value": 500.0,
        "current_value": 520.0,
    }
    events = [
        ev(
            "k1",
            "created",
            None,
            {"id": "k1", "metric": "WAU", "current": "150"},
            entity="key_result",
        ),
        ev("k1", "kr_value_changed", "150", "310", day=30, entity="key_result", who="Robin"),
        ev("k1", "kr_value_changed", "310", "520", day=60, entity="key_result"),
    ]
    (got,) = brief_of([], events, key_results=[kr])["key_results"]
    assert [p["value"] for p in got["points"]] == ["150", "310", "520"]
    assert got["trend"] == "improving" and got["progress"] == 1.0
    assert got["sparkline"]
    what = [e["what"] for e in brief_of([], events, key_results=[kr])["events"]]
    assert what.count("Key result reached its target: Weekly active users (520)") == 1


def test_risks_develop_and_closed_ones_stay_in_the_story() -> None:
    risks = [
        {"id": "r1", "risk": "Champion leaves", "severity": "high", "owner": "Casey",
         "mitigation": "Second champion", "position": 0, "section": []},
    ]  # fmt: skip
    events = [
        ev("r1", "created", None, {"risk": "Champion leaves", "severity": "low"}, entity="risk"),
        ev("r1", "risk_severity_changed", "low", "high", day=9, entity="risk", who="Robin"),
        ev("r2", "created", None, {"risk": "Budget cut", "severity": "medium"}, entity="risk"),
        ev("r2", "removed", {"risk": "Budget cut", "severity": "medium", "owner": "Robin",
                             "mitigation": ""}, None, day=20, entity="risk"),
    ]  # fmt: skip
    b = brief_of([], events, risks=risks)
    by_id = {r["id"]: r for r in b["risks"]}
    assert by_id["r1"]["open"] and by_id["r1"]["first_severity"] == "low"
    assert [s["what"] for s in by_id["r1"]["steps"]] == ["raised", "escalated: low → high"]
    assert not by_id["r2"]["open"] and by_id["r2"]["risk"] == "Budget cut"
    assert by_id["r2"]["steps"][-1]["what"] == "closed (removed from the plan)"
    what = [e["what"] for e in b["events"]]
    assert "Risk escalated to high: Champion leaves" in what
    assert "Risk closed: Budget cut" in what


# --- the document's objectives ---------------------------------------------------------------


def h(level: int, text: str) -> dict[str, Any]:
    return {
        "type": "heading",
        "attrs": {"level": level},
        "content": [{"type": "text", "text": text}],
    }


def p(text: str) -> dict[str, Any]:
    return {"type": "paragraph", "content": [{"type": "text", "text": text}]}


def test_objective_sections_run_to_the_next_heading_of_their_level() -> None:
    doc = {
        "type": "doc",
        "content": [
            h(1, "Plan"),
            p("intro"),
            h(2, "Objectives"),
            p("Halve onboarding time"),
            h(3, "Why"),
            p("Churn"),
            h(2, "Milestones"),
            p("not an objective"),
            h(2, "Desired outcomes:"),
            p("Renewal"),
            h(2, "Goals"),  # empty: left out
            h(2, "Risks"),
        ],
    }
    sections = objective_sections(doc)
    assert [s["heading"] for s in sections] == ["Objectives", "Desired outcomes:"]
    assert len(sections[0]["blocks"]) == 3  # its paragraph, the sub-heading and its text
    assert sections[1]["blocks"] == [p("Renewal")]


# --- Markdown --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<script>alert(1)</script>", "\\<script\\>alert(1)\\</script\\>"),
        ("# not a heading", "\\# not a heading"),
        ("- not a list", "\\- not a list"),
        ("1. not a list", "1\\. not a list"),
        ("*a* _b_ `c` [d](e) | f ~g~", "\\*a\\* \\_b\\_ \\`c\\` \\[d\\](e) \\| f \\~g\\~"),
        ("&amp; stays text, & is fine", "\\&amp; stays text, & is fine"),
        ("two\nlines", "two lines"),
        ("Acme (EMEA) 50%", "Acme (EMEA) 50%"),
    ],
)
def test_md_keeps_user_text_literal(text: str, expected: str) -> None:
    assert md(text) == expected


def test_the_internal_plan_is_in_the_markdown_only_when_given() -> None:
    internal = {"type": "doc", "content": [p("secret plan")]}
    with_it = brief_markdown(brief_of([], [], internal=internal))
    assert "## Internal account plan (vendor only)" in with_it and "secret plan" in with_it
    without = brief_markdown(brief_of([], []))
    assert "Internal account plan" not in without and "secret" not in without

"""The dashboard's figures and its red/amber/green rules, on rows as the tables hand them back.

``summarise`` is pure (rows in, JSON out), so each rule is driven at its boundary here without a
server or a database; the README's "Status" section states the same rules.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

import persistence
from server.plan.summary import SOON_DAYS, summarise

TODAY = date(2026, 12, 6)
_ids = itertools.count(1)


def day(offset: int) -> date:
    return TODAY + timedelta(days=offset)


def task(
    text: str = "Do it",
    *,
    due: date | None = None,
    status: str = "todo",
    milestone: bool = False,
    side: str | None = "vendor",
    owner: str | None = "Casey",
) -> dict[str, Any]:
    n = next(_ids)
    return {
        "id": f"t{n}",
        "position": n,
        "text": text,
        "owner_ref": f"u{n}" if owner is not None and side is not None else None,
        "owner_label": owner,
        "owner_side": side,
        "due": due,
        "status": status,
        "checked": status == "done",
        "milestone": milestone,
        "section": ["Plan"],
    }


def milestone(text: str = "Go live", **kw: Any) -> dict[str, Any]:
    return task(text, milestone=True, **kw)


def kr(
    metric: str = "Adoption",
    *,
    baseline: float | None = 0,
    target: float | None = 100,
    current: float | None = 50,
    when: str = "",
) -> dict[str, Any]:
    return {
        "id": f"k{next(_ids)}",
        "metric": metric,
        "baseline": str(baseline),
        "target": str(target),
        "current": str(current),
        "unit": "%",
        "date": when,
        "baseline_value": baseline,
        "target_value": target,
        "current_value": current,
    }


def risk(severity: str, text: str = "Budget") -> dict[str, Any]:
    return {
        "id": f"r{next(_ids)}",
        "risk": text,
        "severity": severity,
        "owner": "Casey",
        "mitigation": "",
    }


def status(
    tasks: Sequence[dict[str, Any]] = (),
    krs: Sequence[dict[str, Any]] = (),
    risks: Sequence[dict[str, Any]] = (),
    override: persistence.StatusOverride | None = None,
) -> dict[str, Any]:
    return summarise(list(tasks), list(krs), list(risks), override, TODAY)["status"]


# Green


def test_an_empty_plan_is_green() -> None:
    s = status()
    assert (s["rag"], s["computed"]) == ("green", "green")
    assert s["reasons"] == ["Nothing overdue, no milestone at risk, no high-severity risk."]
    assert s["override"] is None
    assert [r["rag"] for r in s["rules"]] == ["red", "amber", "green"]


def test_tasks_due_today_or_later_and_done_late_tasks_are_green() -> None:
    tasks = [
        task(due=TODAY),
        task(due=day(30)),
        task(due=day(-5), status="done"),  # late but done: not overdue
        milestone(due=day(-1), status="done"),  # a done milestone is never late
        task(due=None),
    ]
    assert status(tasks)["computed"] == "green"


# Red


def test_a_milestone_past_due_and_not_done_is_red() -> None:
    tasks = [milestone("Kick-off", due=day(-1))] + [task(due=day(10)) for _ in range(10)]
    s = status(tasks)
    assert s["computed"] == "red"
    assert "Milestone “Kick-off” is overdue." in s["reasons"]


def test_a_milestone_due_today_is_not_late() -> None:
    assert status([milestone(due=TODAY)])["computed"] == "green"


def test_a_milestone_without_a_date_is_never_late() -> None:
    assert status([milestone(due=None)])["computed"] == "green"


def test_more_than_a_quarter_of_open_dated_tasks_overdue_is_red() -> None:
    # 2 of 7 (29%) overdue.
    tasks = [task(due=day(-1)) for _ in range(2)] + [task(due=day(3)) for _ in range(5)]
    s = status(tasks)
    assert s["computed"] == "red"
    assert s["reasons"] == ["2 of 7 open dated tasks are overdue."]


def test_exactly_a_quarter_overdue_is_amber_not_red() -> None:
    tasks = [task(due=day(-1))] + [task(due=day(3)) for _ in range(3)]
    s = status(tasks)
    assert s["computed"] == "amber"
    assert s["reasons"] == ["1 task overdue."]


def test_the_quarter_counts_only_open_tasks_with_a_due_date() -> None:
    # 1 of 4 open dated tasks is overdue; undated and done tasks do not dilute or inflate it.
    tasks = (
        [task(due=day(-1))]
        + [task(due=day(3)) for _ in range(3)]
        + [task(due=None) for _ in range(10)]
        + [task(due=day(-9), status="done") for _ in range(10)]
    )
    assert status(tasks)["computed"] == "amber"
    # Without the three on-time tasks the same overdue one is all of them: red.
    assert status([task(due=day(-1)), task(due=None)])["computed"] == "red"


def test_red_reasons_are_only_the_red_ones() -> None:
    tasks = [milestone("Launch", due=day(-2))] + [task(due=day(-1)) for _ in range(3)]
    s = status(tasks, risks=[risk("high")])
    assert s["computed"] == "red"
    # The late milestone is an overdue dated item too.
    assert s["reasons"] == [
        "Milestone “Launch” is overdue.",
        "4 of 4 open dated tasks are overdue.",
    ]


# Amber


def test_any_overdue_task_is_amber() -> None:
    tasks = [task(due=day(-1))] + [task(due=day(1)) for _ in range(9)]
    s = status(tasks)
    assert s["computed"] == "amber"
    assert s["reasons"] == ["1 task overdue."]


def test_a_task_due_yesterday_is_overdue_and_one_due_today_is_not() -> None:
    many = [task(due=day(5)) for _ in range(9)]
    assert status([task(due=day(-1)), *many])["computed"] == "amber"
    assert status([task(due=TODAY), *many])["computed"] == "green"


def test_next_milestone_at_risk_is_amber() -> None:
    # The overdue task is due before the next milestone: at risk (and overdue: both reasons).
    tasks = [task(due=day(-1)), milestone("Go live", due=day(10))] + [
        task(due=day(20)) for _ in range(8)
    ]
    s = status(tasks)
    assert s["computed"] == "amber"
    assert s["reasons"] == [
        "1 task overdue.",
        "Next milestone at risk: 1 task due before it is overdue.",
    ]


def test_a_high_severity_risk_is_amber_whatever_its_case() -> None:
    for level in ("high", "High", " HIGH "):
        s = status(risks=[risk(level)])
        assert s["computed"] == "amber", level
        assert s["reasons"] == ["1 high-severity risk recorded."]
    assert status(risks=[risk("medium"), risk("low"), risk("")])["computed"] == "green"


def test_a_key_result_past_its_date_short_of_target_is_amber() -> None:
    s = status(krs=[kr("Seats", current=99, when=day(-1).isoformat())])
    assert s["computed"] == "amber"
    assert s["reasons"] == ["Key result “Seats” passed its date short of target."]


@pytest.mark.parametrize(
    "when, current",
    [
        (TODAY.isoformat(), 10),  # its day is not past yet
        (day(3).isoformat(), 10),
        (day(-1).isoformat(), 100),  # reached
        (day(-1).isoformat(), 120),  # beyond
        ("next quarter", 10),  # no date to go by
        ("", 10),
    ],
)
def test_key_results_that_are_not_late(when: str, current: float) -> None:
    assert status(krs=[kr(current=current, when=when)])["computed"] == "green"


def test_a_key_result_whose_progress_is_unknown_is_not_late() -> None:
    past = day(-1).isoformat()
    assert status(krs=[kr(current=None, when=past)])["computed"] == "green"
    assert status(krs=[kr(baseline=5, target=5, current=1, when=past)])["computed"] == "green"


def test_a_key_result_that_should_fall_counts_progress_downwards() -> None:
    past = day(-1).isoformat()
    assert status(krs=[kr(baseline=10, target=2, current=2, when=past)])["computed"] == "green"
    assert status(krs=[kr(baseline=10, target=2, current=3, when=past)])["computed"] == "amber"


# The owner's override


def test_an_owner_override_wins_and_the_computed_status_stays_visible() -> None:
    at = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
    override = persistence.StatusOverride("green", "Customer agreed the slip", 7, "Olive", at)
    on_time = [task(due=day(9)) for _ in range(3)]
    s = status([milestone("Launch", due=day(-2)), *on_time], override=override)
    assert (s["rag"], s["computed"]) == ("green", "red")
    assert s["override"] == {
        "rag": "green",
        "reason": "Customer agreed the slip",
        "by": "Olive",
        "at": at.isoformat(),
    }
    assert s["reasons"] == ["Milestone “Launch” is overdue."]


# Next milestone


def next_ms(tasks: list[dict[str, Any]]) -> dict[str, Any] | None:
    return summarise(tasks, [], [], None, TODAY)["next_milestone"]


def test_next_milestone_is_the_earliest_open_one() -> None:
    tasks = [
        milestone("Done already", due=day(-30), status="done"),
        milestone("Later", due=day(20)),
        milestone("Sooner", due=day(5)),
        milestone("Undated", due=None),
    ]
    found = next_ms(tasks)
    assert found is not None
    assert (found["text"], found["verdict"]) == ("Sooner", "on_track")
    assert found["why"] == "No task due before it is overdue."
    assert found["due"] == day(5).isoformat()


def test_an_undated_milestone_comes_after_dated_ones_and_in_document_order() -> None:
    first, second = milestone("First", due=None), milestone("Second", due=None)
    found = next_ms([second, first])  # listed out of order: position decides
    assert found is not None
    assert (found["text"], found["verdict"], found["why"]) == (
        "First",
        "unknown",
        "It has no due date yet.",
    )


def test_no_open_milestone_means_no_next_milestone() -> None:
    assert next_ms([task(due=day(1)), milestone(due=day(-1), status="done")]) is None


def test_next_milestone_overdue() -> None:
    found = next_ms([milestone(due=day(-3))])
    assert found is not None
    assert (found["verdict"], found["why"]) == ("overdue", f"It was due on {day(-3)}.")


def test_next_milestone_at_risk_counts_overdue_tasks_due_on_or_before_it() -> None:
    tasks = [
        milestone(due=day(2)),
        task(due=day(-1)),
        task(due=day(-4)),
        task(due=day(-4), status="done"),  # done: no risk
        task(due=day(1)),  # not overdue
    ]
    found = next_ms(tasks)
    assert found is not None
    assert (found["verdict"], found["why"]) == ("at_risk", "2 tasks due before it are overdue.")


def test_only_dated_open_tasks_put_the_next_milestone_at_risk() -> None:
    found = next_ms([milestone(due=TODAY), task(due=day(-1))])
    assert found is not None and found["verdict"] == "at_risk"
    found = next_ms([milestone(due=TODAY), task(due=None), task(due=day(-1), status="done")])
    assert found is not None and found["verdict"] == "on_track"


# Whose court, due soon


def test_overdue_tasks_are_grouped_by_whose_court_they_are_in() -> None:
    tasks = [
        task("Vendor late", due=day(-1), side="vendor"),
        task("Customer late", due=day(-2), side="customer"),
        task("Bare name late", due=day(-3), side=None, owner="Pat"),
        task("Nobody's", due=day(-4), side=None, owner=None),
        task("Customer on time", due=day(4), side="customer"),
    ]
    overdue = summarise(tasks, [], [], None, TODAY)["overdue"]
    assert {side: [t["text"] for t in items] for side, items in overdue.items()} == {
        "vendor": ["Vendor late"],
        "customer": ["Customer late"],
        "unknown": ["Bare name late"],
        "unassigned": ["Nobody's"],
    }
    bare = overdue["unknown"][0]
    assert bare["owner"] == {"id": None, "label": "Pat", "side": None}
    assert overdue["unassigned"][0]["owner"] is None


def test_due_soon_is_today_to_a_week_ahead_and_open_only() -> None:
    tasks = [
        task("yesterday", due=day(-1)),
        task("today", due=TODAY),
        task("last day", due=day(SOON_DAYS)),
        task("too far", due=day(SOON_DAYS + 1)),
        task("done", due=day(1), status="done"),
        task("undated", due=None),
        milestone("milestone soon", due=day(2), side="customer"),
    ]
    soon = summarise(tasks, [], [], None, TODAY)["due_soon"]
    assert [t["text"] for t in soon["vendor"]] == ["today", "last day"]
    assert [t["text"] for t in soon["customer"]] == ["milestone soon"]
    assert soon["unknown"] == soon["unassigned"] == []


# Progress, key results, risks


def test_progress_counts_tasks_and_milestones_apart() -> None:
    tasks = [
        task(status="done"),
        task(status="in_progress"),
        task(),
        milestone(status="done"),
        milestone(),
    ]
    progress = summarise(tasks, [], [], None, TODAY)["progress"]
    assert progress == {"tasks": {"done": 1, "total": 3}, "milestones": {"done": 1, "total": 2}}


def test_key_result_progress_is_clamped_and_unknown_when_it_cannot_be_said() -> None:
    krs = [
        kr(current=25),
        kr(current=-50),
        kr(current=300),
        kr(current=None),
        kr(baseline=4, target=4, current=4),
    ]
    got = [k["progress"] for k in summarise([], krs, [], None, TODAY)["key_results"]]
    assert got == [0.25, 0.0, 1.0, None, None]


def test_risks_are_counted_by_severity_and_listed_worst_first() -> None:
    risks = [risk("low", "a"), risk("High", "b"), risk("whatever", "c"), risk("medium", "d")]
    out = summarise([], [], risks, None, TODAY)["risks"]
    assert out["by_severity"] == {"high": 1, "medium": 1, "low": 1, "unrated": 1}
    assert out["total"] == 4
    assert [r["risk"] for r in out["items"]] == ["b", "d", "a", "c"]

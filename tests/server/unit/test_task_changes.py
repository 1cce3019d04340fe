"""The checks on a task list's filters and on a change to one task, in the plan domain, before
anything reaches the document: no server, no database (a refused change touches neither)."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest

from server import plan as domain
from server.plan import ApiError


def test_task_filters_are_checked_and_typed() -> None:
    query = {"owner": "Dana", "side": "unassigned", "status": "blocked", "due_before": "2026-02-01"}
    assert domain.task_filters({**query, "milestone": "true"}) == {
        **query,
        "due_before": date(2026, 2, 1),
        "milestone": True,
    }
    for bad, field in (
        ({"colour": "red"}, "colour"),
        ({"side": "both"}, "side"),
        ({"status": "finished"}, "status"),
        ({"due_after": "tomorrow"}, "due_after"),
        ({"milestone": "yes"}, "milestone"),
    ):
        with pytest.raises(ApiError) as caught:
            domain.task_filters(bad)
        assert (caught.value.status_code, caught.value.field) == (400, field)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, None),
        ({"title": "x"}, "title"),
        ({"status": "finished"}, "status"),
        ({"checked": "yes"}, "checked"),
        ({"status": "done", "checked": False}, "checked"),
        ({"owner": "Dana"}, "owner"),
        ({"owner": {"id": "team:1", "label": "x"}}, "owner"),
        ({"owner": {"id": "name:Dana", "side": "both"}}, "owner"),
        ({"due": "31/01/2026"}, "due"),
    ],
)
def test_a_task_change_is_refused_before_it_touches_anything(
    data: dict[str, Any], field: str | None
) -> None:
    # No store, rooms or materialiser: a refusal must come before any of them is used.
    change = domain.change_task(None, None, None, "p", "t_1", data, author_id=1)
    with pytest.raises(ApiError) as caught:
        asyncio.run(change)
    assert (caught.value.status_code, caught.value.field) == (400, field)

"""How consecutive audit events are merged: a sentence typed key by key within a minute, by one
person, is one event in the plan's history.

``merge_events`` (server/projection.py) decides what may fold into what; ``write_projection``
(persistence) decides when (same author, within the window of the entity's latest event). Both
are checked here: the decision table on its own, the timing on a real SQLite file, and the
whole path (keystrokes in a real document, ``advance``, ``write_step``) end to end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pycrdt import Doc, XmlElement, XmlText
from sqlalchemy.orm import Session, sessionmaker

import persistence
from crdt import assign_ids, new_doc, write_prosemirror
from crdt.schema import fragment
from crdt.templates import h, task, tasks
from server.plan.materialise import write_step
from server.plan.projection import Shadow, advance, merge_events

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
Factory = sessionmaker[Session]


def ev(kind: str, old: Any, new: Any, entity: str = "task") -> dict[str, Any]:
    return {"entity": entity, "kind": kind, "old": old, "new": new}


# What folds into what (merge_events on its own)


def test_typing_on_folds_into_the_previous_rewording() -> None:
    assert merge_events(ev("text_changed", "a", "ab"), ev("text_changed", "ab", "abc")) == (
        "a",
        "abc",
    )


def test_text_typed_into_a_new_task_folds_into_its_creation() -> None:
    created = ev("created", None, {"id": "t1", "text": "S", "due": None})
    assert merge_events(created, ev("text_changed", "S", "Se")) == (
        None,
        {"id": "t1", "text": "Se", "due": None},
    )
    # Anything else done to a new task is an event of its own.
    assert merge_events(created, ev("due_moved", None, "2027-01-01")) is None
    assert merge_events(created, ev("completed", "todo", "done")) is None


@pytest.mark.parametrize(
    "entity, kind, field, old, new",
    [
        ("key_result", "kr_value_changed", "current", "1", "12"),
        ("risk", "risk_severity_changed", "severity", "hi", "high"),
        ("risk", "reassigned", "owner", "A", "Ann"),
    ],
)
def test_typed_row_cells_fold_into_the_rows_creation_and_into_each_other(
    entity: str, kind: str, field: str, old: str, new: str
) -> None:
    created = ev("created", None, {"id": "r1", field: old, "other": "x"}, entity)
    assert merge_events(created, ev(kind, old, new, entity)) == (
        None,
        {"id": "r1", field: new, "other": "x"},
    )
    assert merge_events(ev(kind, "", old, entity), ev(kind, old, new, entity)) == ("", new)


def test_other_cells_fold_field_by_field_keeping_the_first_old_value() -> None:
    created = ev("created", None, {"id": "c1", "name": "B", "role": ""}, "contact")
    assert merge_events(created, ev("field_changed", {"name": "B"}, {"name": "Bo"}, "contact")) == (
        None,
        {"id": "c1", "name": "Bo", "role": ""},
    )
    first = ev("field_changed", {"name": "B"}, {"name": "Bo"}, "contact")
    then = ev("field_changed", {"name": "Bo", "role": ""}, {"name": "Bob", "role": "S"}, "contact")
    assert merge_events(first, then) == (
        {"name": "B", "role": ""},
        {"name": "Bob", "role": "S"},
    )


@pytest.mark.parametrize(
    "prev, event",
    [
        # Different kinds of change stay apart.
        (ev("text_changed", "a", "ab"), ev("due_moved", None, "2027-01-01")),
        (ev("due_moved", None, "2027-01-01"), ev("text_changed", "a", "ab")),
        # A task's reassignment is a decision, not typing: each one is kept.
        (ev("reassigned", None, {"id": "u1"}), ev("reassigned", {"id": "u1"}, {"id": "u2"})),
        (ev("due_moved", None, "2027-01-01"), ev("due_moved", "2027-01-01", "2027-02-01")),
        (ev("completed", "todo", "done"), ev("completed", "todo", "done")),
        # Nothing folds into a removal or a re-creation.
        (ev("removed", {"id": "t1"}, None), ev("created", None, {"id": "t1"})),
        (ev("created", None, {"id": "t1"}), ev("removed", {"id": "t1"}, None)),
    ],
)
def test_changes_that_stay_events_of_their_own(prev: dict[str, Any], event: dict[str, Any]) -> None:
    assert merge_events(prev, event) is None


# When they fold: same author, within the window (a real SQLite file)


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Factory]:
    url = f"sqlite:///{tmp_path_factory.mktemp('merging') / 'tandem.db'}"
    persistence.upgrade(url)
    engine = persistence.make_engine(url)
    try:
        yield persistence.make_sessionmaker(engine)
    finally:
        engine.dispose()


def new_plan(factory: Factory) -> str:
    with persistence.transaction(factory) as s:
        return persistence.create_plan(session=s, title="P", customer="Acme", created_by=None).id


def new_user(factory: Factory) -> int:
    with persistence.transaction(factory) as s:
        email = f"{uuid.uuid4().hex}@x.example"
        return persistence.create_user(session=s, email=email, name="A", password_hash=None).id


def reworded(old: str, new: str, author: int, at: datetime, task_id: str = "t_a") -> dict[str, Any]:
    return {
        "entity": "task",
        "entity_id": task_id,
        "kind": "text_changed",
        "old": old,
        "new": new,
        "author_id": author,
        "at": at,
    }


def write(factory: Factory, plan_id: str, *events: dict[str, Any]) -> None:
    """Each call is one materialisation pass: the earlier events are already in the table."""
    with persistence.transaction(factory) as s:
        upto = persistence.projection_watermark(session=s, plan_id=plan_id)
        ids = persistence.append_updates(
            session=s, plan_id=plan_id, entries=[(None, b"u") for _ in events]
        )
        for e, log_id in zip(events, ids, strict=True):
            e["update_id"] = log_id
        assert persistence.write_projection(
            session=s,
            plan_id=plan_id,
            expect_upto=upto,
            upto_id=ids[-1],
            upserts={},
            deletes={},
            events=list(events),
            merge=merge_events,
        )


def history(factory: Factory, plan_id: str) -> list[tuple[str, Any, Any, int | None]]:
    """(entity id, old, new, author) oldest first."""
    with persistence.transaction(factory) as s:
        found = persistence.list_history(session=s, plan_id=plan_id)
    return [(e.entity_id, e.old, e.new, e.author_id) for e in reversed(found)]


def test_one_author_typing_within_a_minute_is_one_event(factory: Factory) -> None:
    plan, ann = new_plan(factory), new_user(factory)
    write(factory, plan, reworded("Send", "Send ", ann, T0))
    write(factory, plan, reworded("Send ", "Send t", ann, T0 + timedelta(seconds=20)))
    # The window runs from the latest change, not the first: a minute after it still folds.
    write(factory, plan, reworded("Send t", "Send th", ann, T0 + timedelta(seconds=80)))
    assert history(factory, plan) == [("t_a", "Send", "Send th", ann)]


def test_a_pause_longer_than_a_minute_starts_a_new_event(factory: Factory) -> None:
    plan, ann = new_plan(factory), new_user(factory)
    write(factory, plan, reworded("a", "ab", ann, T0))
    write(factory, plan, reworded("ab", "abc", ann, T0 + timedelta(seconds=60)))  # exactly
    write(factory, plan, reworded("abc", "abcd", ann, T0 + timedelta(seconds=121)))
    assert history(factory, plan) == [("t_a", "a", "abc", ann), ("t_a", "abc", "abcd", ann)]


def test_another_author_typing_is_their_own_event(factory: Factory) -> None:
    plan, ann, bo = new_plan(factory), new_user(factory), new_user(factory)
    write(factory, plan, reworded("a", "ab", ann, T0))
    write(factory, plan, reworded("ab", "abX", bo, T0 + timedelta(seconds=1)))
    # Ann again: Bo's is now the latest event of the task, so hers does not reach back past it.
    write(factory, plan, reworded("abX", "abXc", ann, T0 + timedelta(seconds=2)))
    assert history(factory, plan) == [
        ("t_a", "a", "ab", ann),
        ("t_a", "ab", "abX", bo),
        ("t_a", "abX", "abXc", ann),
    ]


def test_server_changes_without_an_author_fold_only_with_each_other(factory: Factory) -> None:
    plan, ann = new_plan(factory), new_user(factory)
    write(factory, plan, reworded("a", "ab", ann, T0))
    write(factory, plan, reworded("ab", "abc", None, T0 + timedelta(seconds=1)))  # type: ignore[arg-type]
    assert [h[3] for h in history(factory, plan)] == [ann, None]


def test_events_of_other_entities_do_not_interrupt_a_fold(factory: Factory) -> None:
    plan, ann = new_plan(factory), new_user(factory)
    write(
        factory,
        plan,
        reworded("a", "ab", ann, T0),
        reworded("x", "xy", ann, T0, task_id="t_b"),
        reworded("ab", "abc", ann, T0 + timedelta(seconds=1)),
    )
    # (Listed by the time of each event's last change: t_a's moved after t_b's.)
    assert sorted(history(factory, plan)) == [("t_a", "a", "abc", ann), ("t_b", "x", "xy", ann)]


# The whole path: keystrokes in a document, one event


def _task_text(doc: Doc) -> XmlText:
    def walk(parent: Any) -> XmlText | None:
        for child in parent.children:
            if isinstance(child, XmlElement):
                if child.tag == "taskItem":
                    return child.children[0].children[0]  # its paragraph's text
                found = walk(child)
                if found is not None:
                    return found
        return None

    text = walk(fragment(doc))
    assert isinstance(text, XmlText)
    return text


def test_a_sentence_typed_key_by_key_into_a_new_task_is_one_created_event(
    factory: Factory,
) -> None:
    plan, ann, bo = new_plan(factory), new_user(factory), new_user(factory)
    doc = new_doc()
    updates: list[tuple[int, datetime, bytes]] = []

    def edit(author: int, at: datetime, change: Any) -> None:
        before = doc.get_state()
        change()
        updates.append((author, at, doc.get_update(before)))

    def start() -> None:
        write_prosemirror(doc, {"type": "doc", "content": [h(2, "Actions"), tasks(task("S"))]})
        assign_ids(doc)

    edit(ann, T0, start)
    text = _task_text(doc)
    for i, ch in enumerate("end the SOW"):
        edit(ann, T0 + timedelta(seconds=2 * i), lambda ch=ch: text.insert(len(str(text)), ch))
    # Bo corrects it half a minute later: his change is his own event.
    edit(bo, T0 + timedelta(seconds=50), lambda: text.insert(len(str(text)), "!"))

    shadow = Shadow.empty()
    passes = [updates[:4], updates[4:9], updates[9:]]  # as the materialiser might take them
    for batch in passes:
        with persistence.transaction(factory) as s:
            ids = persistence.append_updates(
                session=s, plan_id=plan, entries=[(a, u) for a, _at, u in batch]
            )
        entries = [
            (log_id, at, author, u) for log_id, (author, at, u) in zip(ids, batch, strict=True)
        ]
        step = advance(shadow, entries)
        with persistence.transaction(factory) as s:
            assert write_step(s, plan, step)

    with persistence.transaction(factory) as s:
        found = list(reversed(persistence.list_history(session=s, plan_id=plan)))
    assert [(e.kind, e.author_id) for e in found] == [("created", ann), ("text_changed", bo)]
    assert found[0].new["text"] == "Send the SOW"
    assert (found[1].old, found[1].new) == ("Send the SOW", "Send the SOW!")

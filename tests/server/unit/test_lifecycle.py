"""A plan's life cycle in the plan domain, called directly: the checks on the changes asked
for, renaming and archiving (recorded in the access log, open connections made read-only),
and deleting (confirmed by the title). Against a real SQLite file; the rooms and the
materialiser are stand-ins that note what they were asked."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import persistence
from server import plan as domain
from server.identity import EDITOR, OWNER, VENDOR, Acting, Identity
from server.live import Close
from server.plan import ApiError
from server.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'tandem.db'}"
    persistence.upgrade(url)
    s = Store.from_url(url)
    yield s
    s.dispose()


@dataclass
class Connection:
    identity: Identity
    closed: list[tuple[int, str]] = field(default_factory=list)

    def close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))


@dataclass
class Rooms:
    open: list[Connection] = field(default_factory=list)
    discarded: list[tuple[str, int]] = field(default_factory=list)

    def plan_connections(self, plan_id: str) -> list[Connection]:
        return self.open

    async def discard(self, key: str, code: int, reason: str) -> None:
        self.discarded.append((key, code))


@dataclass
class Materialiser:
    flushed: list[str] = field(default_factory=list)

    async def flush(self, plan_id: str) -> None:
        self.flushed.append(plan_id)


def who(role: str = OWNER) -> Identity:
    return Identity(
        user_id=None,
        name="Olive",
        email="o@x.example",
        via="session",
        credential_id="c",
        plan_id="p",
        role=role,
        side=VENDOR,
        staff=True,
        read_only=False,
    )


BY = Acting(who(), "203.0.113.5")


@pytest.fixture
def plan(store: Store) -> persistence.PlanRecord:
    with persistence.transaction(store.factory) as s:
        return persistence.create_plan(
            session=s, title="Onboarding", customer="Acme", created_by=None
        )


def log(store: Store, plan_id: str | None) -> list[persistence.AccessEventRecord]:
    with persistence.transaction(store.factory) as s:
        return persistence.access_events(session=s, plan_id=plan_id or "", emails=[])


def test_the_changes_asked_for_are_checked() -> None:
    assert domain.plan_changes({"title": " New ", "archived": True}) == {
        "title": "New",
        "archived": True,
    }
    for body, field_ in (({"owner": 1}, "owner"), ({"archived": "yes"}, "archived"), ({}, None)):
        with pytest.raises(ApiError) as caught:
            domain.plan_changes(body)
        assert (caught.value.status_code, caught.value.field) == (400, field_)


def test_renaming_is_recorded_with_what_it_was(store: Store, plan: persistence.PlanRecord) -> None:
    updated = asyncio.run(domain.change_plan(store, Rooms(), BY, plan, {"title": "Renewal"}))
    assert updated.title == "Renewal"
    [entry] = log(store, plan.id)
    assert (entry.kind, entry.subject, entry.detail, entry.ip) == (
        "plan.renamed",
        "Renewal",
        "was Onboarding",
        "203.0.113.5",
    )


def test_archiving_makes_open_connections_read_only_and_restoring_gives_editing_back(
    store: Store, plan: persistence.PlanRecord
) -> None:
    editor, viewer = (
        Connection(who(EDITOR)),
        Connection(dataclasses.replace(who("viewer"), read_only=True)),
    )
    rooms = Rooms(open=[editor, viewer])
    archived = asyncio.run(domain.change_plan(store, rooms, BY, plan, {"archived": True}))
    assert archived.archived and editor.identity.read_only and viewer.identity.read_only
    assert editor.closed == [(Close.READ_ONLY, "plan archived")] and viewer.closed == []
    # Archived: no renaming until restored.
    with pytest.raises(ApiError) as caught:
        asyncio.run(domain.change_plan(store, rooms, BY, archived, {"title": "X"}))
    assert caught.value.status_code == 409
    asyncio.run(domain.change_plan(store, rooms, BY, archived, {"archived": False}))
    assert not editor.identity.read_only and viewer.identity.read_only
    assert [e.kind for e in log(store, plan.id)] == ["plan.restored", "plan.archived"]


def test_deleting_needs_the_title_and_closes_everything_first(
    store: Store, plan: persistence.PlanRecord
) -> None:
    rooms, materialiser = Rooms(), Materialiser()
    call: Any = domain.delete_plan(store, rooms, materialiser, BY, plan, "onboard")
    with pytest.raises(ApiError) as caught:
        asyncio.run(call)
    assert (caught.value.status_code, caught.value.field) == (400, "confirm")
    assert rooms.discarded == [] and materialiser.flushed == []
    asyncio.run(domain.delete_plan(store, rooms, materialiser, BY, plan, " Onboarding "))
    assert materialiser.flushed == [plan.id]
    assert {code for _, code in rooms.discarded} == {Close.PLAN_NOT_FOUND}
    with persistence.transaction(store.factory) as s:
        assert persistence.get_plan(session=s, plan_id=plan.id) is None
    with pytest.raises(ApiError) as caught:
        asyncio.run(domain.delete_plan(store, rooms, materialiser, BY, plan, "Onboarding"))
    assert caught.value.status_code == 404

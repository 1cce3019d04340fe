"""Room keys: a plan's two documents are two rooms, the plan's and its vendor-only internal one."""

from __future__ import annotations

from typing import TypeAlias

from .events import Doc

INTERNAL_SUFFIX = ":internal"

#: What a room is known by: the plan id for the plan's shared document, the plan id and
#: ``:internal`` for its vendor-only one. Not a plan id: ``split_key`` gives the plan and the doc.
RoomKey: TypeAlias = str


def room_key(plan_id: str, doc: Doc = "plan") -> RoomKey:
    """Rooms are keyed by plan id, with a suffix for the vendor-only internal document."""
    return plan_id + INTERNAL_SUFFIX if doc == "internal" else plan_id


def split_key(key: RoomKey) -> tuple[str, Doc]:
    if key.endswith(INTERNAL_SUFFIX):
        return key[: -len(INTERNAL_SUFFIX)], "internal"
    return key, "plan"


def room_keys(plan_id: str) -> tuple[RoomKey, RoomKey]:
    """Both rooms of one plan."""
    return plan_id, room_key(plan_id, "internal")

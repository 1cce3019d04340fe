"""What the live wing publishes to the hook list (``server.hooks``), and how to describe the
connections to close: plain frozen data, so both can later cross a process boundary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from server.hooks import Event

Doc = Literal["plan", "internal"]


@dataclass(frozen=True)
class Committed(Event):
    """A room made a group of updates durable: the ``(author id, log id)`` of each, in log
    order. ``doc`` says which of the plan's documents: the shared plan or the vendor-only
    internal one."""

    doc: Doc
    entries: tuple[tuple[int | None, int], ...]


@dataclass(frozen=True)
class Closing:
    """Which open connections to close, and why: those of one plan (both its documents), or
    with ``plan_id`` None those of every plan (an account deactivated, a session ended).

    Every given condition must hold: ``user_id`` names an account's connections, ``link_id``
    the visitors who came through one link or embed, ``side`` narrows to one side of the plan,
    ``via`` to one kind of credential ("session", "token", "link", "embed") and
    ``credential_id`` to one credential (a session, a token). With none given, every
    connection of the plan closes."""

    plan_id: str | None
    code: int
    reason: str
    user_id: int | None = None
    link_id: str | None = None
    side: str | None = None
    via: str | None = None
    credential_id: str | None = None

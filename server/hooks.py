"""The one list of hook subscribers: rooms and the materialiser publish typed events to it.

The composition root (``server.app``) registers the subscribers, in order; a new reaction (a
notification, a version-history entry) is one more subscriber there, and the room and the
materialiser never change for it. Subscribers are called on the event loop, synchronously, right
after what the event describes: they must not block (schedule work instead, as the materialiser
does). Events are small frozen dataclasses, so that they can later be sent to another process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """The base of every published event: which plan it is about."""

    plan_id: str


Subscriber = Callable[[Event], None]


class Hooks:
    def __init__(self, subscribers: Iterable[Subscriber] = ()) -> None:
        self._subscribers: list[Subscriber] = list(subscribers)

    def register(self, subscribers: Iterable[Subscriber]) -> None:
        self._subscribers.extend(subscribers)

    @property
    def subscribers(self) -> tuple[Subscriber, ...]:
        return tuple(self._subscribers)

    def publish(self, event: Event) -> None:
        for subscriber in self._subscribers:
            # One failing subscriber must neither stop the others nor reach the publisher (a
            # room mid-commit).
            try:
                subscriber(event)
            except Exception:
                log.exception("hook %r failed on %s", subscriber, type(event).__name__)

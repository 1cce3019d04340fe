"""The notifier: the hook subscriber that turns typed plan events into queued notifications,
and the dispatcher that sends them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from server.hooks import Event
from server.plan import Changed
from server.store import Store

from . import slack
from .dispatcher import Dispatcher
from .links import Links
from .rules import SETTLE, queue_for, wanted

log = logging.getLogger(__name__)


class Notifier:
    """An async context manager entered in the lifespan before the materialiser, so that it
    outlives it: what the materialiser's last passes publish is still queued."""

    def __init__(
        self,
        store: Store,
        links: Links,
        dispatcher: Dispatcher | None,
        *,
        settle: timedelta = SETTLE,
    ) -> None:
        self.store = store
        self.links = links
        self.dispatcher = dispatcher
        self.settle_delay = settle
        self._pending: set[asyncio.Task[None]] = set()

    def on_event(self, event: Event) -> None:
        """A hook subscriber: runs on the event loop, so the lookups are scheduled."""
        if not isinstance(event, Changed) or not wanted(event):
            return
        task = asyncio.get_running_loop().create_task(self._handle(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _handle(self, event: Changed) -> None:
        try:
            queued = await self.store.run(
                # People's own messages, and the plan's Slack channel's (once per event).
                lambda s: (
                    queue_for(s, event, self.links, self.settle_delay)
                    + slack.queue_for(s, event, self.links)
                )
            )
        except Exception:
            log.exception("queueing notifications for %s failed", type(event).__name__)
            return
        if queued and self.dispatcher is not None:
            self.dispatcher.wake()

    async def settle(self) -> None:
        """Wait until every event seen so far is queued."""
        while self._pending:
            await asyncio.wait(list(self._pending))

    async def __aenter__(self) -> Notifier:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.settle()


def subscribers(notifier: Notifier) -> list[Callable[[Event], None]]:
    """What the composition root registers on the hook list that carries the materialiser's
    typed events (``plan.TaskReassigned``, ``plan.TaskCompleted``, ...)."""
    return [notifier.on_event]

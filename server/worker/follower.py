"""Following the update log from another process: which plans' logs grew since the last look.

A poll of the log's primary key range after the newest id seen (an index range scan that
finds nothing most of the time), every ``poll`` seconds; the serving process also nudges the
worker when it waits for a plan's tables (``Worker.nudge``), so a PATCH need not wait for the
next pause in the editing. On PostgreSQL ids are handed out before their transactions commit,
so one can become visible after a higher one: the scan looks ``lookback`` ids behind the
newest it saw, and schedules a plan only when its newest id is one it has not seen.
"""

from __future__ import annotations

import asyncio
import logging

import persistence
from server.plan import Materialiser, SegmentKeeper
from server.store import Store

log = logging.getLogger(__name__)


class LogFollower:
    def __init__(
        self,
        store: Store,
        materialiser: Materialiser,
        *,
        poll: float = 0.1,
        lookback: int | None = None,
        drop_idle_every: float = 30.0,
        segments: SegmentKeeper | None = None,
    ) -> None:
        self.store = store
        self.materialiser = materialiser
        self.segments = segments
        self.poll = poll
        self.lookback = (0 if store.sqlite else 1000) if lookback is None else lookback
        self.drop_idle_every = drop_idle_every
        self.upto = 0  # the newest log id seen
        self._heads: dict[str, int] = {}

    async def run(self) -> None:
        # What is already in the log is the materialiser's catch-up (plans_behind).
        self.upto = await self.store.read(lambda s: persistence.last_log_id(session=s))
        loop = asyncio.get_running_loop()
        dropped_at = loop.time()
        while True:
            await asyncio.sleep(self.poll)
            try:
                await self.look()
            except Exception:
                log.exception("reading the update log's newest entries failed; will retry")
            if loop.time() - dropped_at > self.drop_idle_every:
                dropped_at = loop.time()
                self.materialiser.drop_idle()

    async def look(self) -> int:
        """Schedule every plan whose log grew; returns how many."""
        after = max(0, self.upto - self.lookback)
        heads = await self.store.read(lambda s: persistence.log_heads(session=s, after_id=after))
        grown = 0
        for plan_id, top in heads:
            if top > self._heads.get(plan_id, 0):
                self._heads[plan_id] = top
                self.materialiser.schedule(plan_id)
                if self.segments is not None:
                    self.segments.grew(plan_id)
                grown += 1
            self.upto = max(self.upto, top)
        horizon = self.upto - self.lookback
        if len(self._heads) > 64:
            self._heads = {p: t for p, t in self._heads.items() if t > horizon}
        return grown

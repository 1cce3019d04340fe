"""How late the event loop runs, and how many updates the rooms have committed.

Everything a room does (applying an update, forwarding it, answering a sync, presence) and every
HTTP answer runs on one event loop, so anything that holds it (a slow commit, a long pass of
derived work, the garbage collector) delays all of them at once. ``LoopLag`` measures that
directly: a timer that asks to wake every ``interval`` seconds and records how late it woke.
The figures are served by ``/metrics`` beside the open rooms and connections.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from dataclasses import dataclass, field

from server.hooks import Event

from .events import Committed

# Upper bounds of the lag histogram, in seconds (Prometheus' ``le``); the last bucket is +Inf.
LAG_BUCKETS = (
    *(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075),
    *(0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


@dataclass
class LoopLag:
    """A periodic timer that records how late it fires: a histogram, the sum and the maximum."""

    interval: float = 0.05
    counts: list[int] = field(default_factory=lambda: [0] * (len(LAG_BUCKETS) + 1))
    total: float = 0.0
    worst: float = 0.0

    def observe(self, late: float) -> None:
        late = max(0.0, late)
        self.counts[bisect.bisect_left(LAG_BUCKETS, late)] += 1
        self.total += late
        self.worst = max(self.worst, late)

    @property
    def samples(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, samples at or below it), ending with (inf, all samples)."""
        out, running = [], 0
        for bound, count in zip((*LAG_BUCKETS, float("inf")), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out

    async def run(self) -> None:
        """Runs until cancelled (a task of the server's lifespan)."""
        while True:
            asked = time.monotonic()
            await asyncio.sleep(self.interval)
            self.observe(time.monotonic() - asked - self.interval)


@dataclass
class Applied:
    """Updates the rooms have made durable and forwarded: a hook subscriber on ``Committed``."""

    updates: int = 0

    def on_event(self, event: Event) -> None:
        if isinstance(event, Committed):
            self.updates += len(event.entries)

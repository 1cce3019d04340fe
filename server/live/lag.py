"""How late the event loop runs, and how many updates the rooms have committed.

Everything a room does (applying an update, forwarding it, answering a sync, presence) and every
HTTP answer runs on one event loop, so anything that holds it (a slow commit, a long pass of
derived work, the garbage collector, a busy host) delays all of them at once. ``LoopLag``
measures that directly: a timer that asks to wake every ``interval`` seconds and records how late
it woke, as a histogram with its sum and maximum (served by ``/metrics``), the last and worst lag
in ms (``Services.lag``, logged at shutdown), and a warning past ``warn_ms``, at most once every
``warn_every`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from server.histogram import Histogram
from server.hooks import Event

from .events import Committed

log = logging.getLogger(__name__)

# Upper bounds of the lag histogram, in seconds (Prometheus' ``le``); the last bucket is +Inf.
LAG_BUCKETS = (
    *(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075),
    *(0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


@dataclass
class LoopLag:
    """A periodic timer that records how late it fires."""

    interval: float = 0.05
    warn_ms: float = 100.0
    warn_every: float = 10.0
    histogram: Histogram = field(default_factory=lambda: Histogram(LAG_BUCKETS))
    worst: float = 0.0  # seconds, since start (the histogram's companion)
    current_ms: float = 0.0
    max_ms: float = 0.0  # since start or the last ``reset()``
    _warned_at: float | None = None

    def observe(self, late: float, now: float | None = None) -> None:
        late = max(0.0, late)
        self.histogram.observe(late)
        self.worst = max(self.worst, late)
        self.current_ms = late * 1000
        self.max_ms = max(self.max_ms, self.current_ms)
        if now is None or self.current_ms <= self.warn_ms:
            return
        if self._warned_at is None or now - self._warned_at >= self.warn_every:
            self._warned_at = now
            log.warning(
                "the event loop ran %.0f ms late (every edit waited as long)", self.current_ms
            )

    @property
    def samples(self) -> int:
        return sum(self.histogram.counts)

    @property
    def total(self) -> float:
        """Seconds, over every sample."""
        return self.histogram.total

    def reset(self) -> None:
        self.max_ms = 0.0

    def snapshot(self) -> dict[str, float]:
        return {"current_ms": self.current_ms, "max_ms": self.max_ms, "samples": self.samples}

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, samples at or below it), ending with (inf, all samples)."""
        return self.histogram.cumulative()

    async def run(self) -> None:
        """Runs until cancelled (a task of the server's lifespan)."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.observe(now - due, now)


@dataclass
class Applied:
    """Updates the rooms have made durable and forwarded: a hook subscriber on ``Committed``."""

    updates: int = 0

    def on_event(self, event: Event) -> None:
        if isinstance(event, Committed):
            self.updates += len(event.entries)

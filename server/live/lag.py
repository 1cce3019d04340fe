"""How late the event loop runs: the lag every edit, sync answer and HTTP request of this
process waits on top of its own work (a blocking call, a long pass of the collector, a busy
host).

A timer due every ``interval`` seconds notes how late it fires. ``current_ms`` is the last
lag, ``max_ms`` the worst since start (or ``reset()``); past ``warn_ms`` it logs a warning,
at most once every ``warn_every`` seconds. The server holds one (``Services.lag``) for
reporting beside propagation latency.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


class LoopLag:
    def __init__(
        self, *, interval: float = 0.05, warn_ms: float = 100.0, warn_every: float = 10.0
    ) -> None:
        self.interval = interval
        self.warn_ms = warn_ms
        self.warn_every = warn_every
        self.current_ms = 0.0
        self.max_ms = 0.0
        self.samples = 0
        self._warned_at: float | None = None

    def reset(self) -> None:
        self.max_ms = 0.0

    def snapshot(self) -> dict[str, float]:
        return {"current_ms": self.current_ms, "max_ms": self.max_ms, "samples": self.samples}

    def note(self, lag_ms: float, now: float) -> None:
        self.current_ms = lag_ms
        self.max_ms = max(self.max_ms, lag_ms)
        self.samples += 1
        if lag_ms > self.warn_ms and (
            self._warned_at is None or now - self._warned_at >= self.warn_every
        ):
            self._warned_at = now
            log.warning("the event loop ran %.0f ms late (every edit waited as long)", lag_ms)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.note(max(0.0, now - due) * 1000, now)

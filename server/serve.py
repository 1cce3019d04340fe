"""Running the app under uvicorn, with draining: what SIGTERM does.

At SIGTERM the process first drains: ``/readyz`` answers 503 at once and new websockets are
closed with 1012 (``Close.SERVER_SHUTDOWN``: "reconnect, elsewhere"), for
``TANDEM_DRAIN_SECONDS`` (0 by default), so a load balancer polling ``/readyz`` takes the
process out before it stops listening. Then uvicorn's graceful shutdown: it stops listening,
closes every open websocket with 1012 (its websockets-sansio protocol does that itself) and
finishes the requests in flight; the app's lifespan then closes the rooms, whose updates are
already in the log (an update is logged before it is forwarded), checkpoints them, and stops
the worker child. A second SIGTERM (or SIGINT) skips what is left of the drain delay.
"""

from __future__ import annotations

import signal
import time
from types import FrameType

import uvicorn

from .readiness import Readiness

STARTUP_FAILURE = 3  # uvicorn's exit code when the server never started


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, readiness: Readiness, drain_seconds: float):
        super().__init__(config)
        self.readiness = readiness
        self.drain_seconds = drain_seconds
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.readiness.drain()
        if sig == signal.SIGTERM and self.drain_seconds > 0 and self._drain_until is None:
            self._captured_signals.append(sig)  # re-raised after the shutdown, as uvicorn does
            self._drain_until = time.monotonic() + self.drain_seconds
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        # Called every 0.1 s by uvicorn's main loop; True ends it (then the graceful shutdown).
        if self._drain_until is not None and time.monotonic() >= self._drain_until:
            self.should_exit = True
        return await super().on_tick(counter)


def serve(config: uvicorn.Config, readiness: Readiness, drain_seconds: float) -> int:
    server = DrainingServer(config, readiness, drain_seconds)
    server.run()
    return 0 if server.started else STARTUP_FAILURE

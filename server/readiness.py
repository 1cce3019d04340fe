"""Whether this process should get traffic (``/readyz``): its database answers, its Redis
answers (when ``TANDEM_REDIS_URL`` is set), and it is not draining.

A load balancer polls ``/readyz`` and sends new clients only to processes that answer 200;
``/healthz`` says only that the process is alive (restart it if not). Draining begins at
SIGTERM (``server/serve.py``): ``/readyz`` answers 503 from then on, so the balancer stops
sending clients before the process stops listening.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from .store import Store

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

TIMEOUT = 2.0  # a check not answered by then counts as down


class Readiness:
    def __init__(self, store: Store, redis: Redis | None = None, *, timeout: float = TIMEOUT):
        self.store = store
        self.redis = redis
        self.timeout = timeout
        self.draining = False

    def drain(self) -> None:
        if not self.draining:
            log.info("draining: /readyz answers 503, new websockets are sent elsewhere (1012)")
        self.draining = True

    async def check(self) -> dict[str, str]:
        """Each dependency and "ok", or what is wrong with it."""
        checks = {"database": self._database()}
        if self.redis is not None:
            checks["redis"] = self._redis(self.redis)
        names = list(checks)
        tasks = [asyncio.ensure_future(c) for c in checks.values()]
        done, _ = await asyncio.wait(tasks, timeout=self.timeout)
        out: dict[str, str] = {}
        for name, task in zip(names, tasks, strict=True):
            if task not in done:
                # A thread stuck on a dead connection cannot be cancelled: it is left to end.
                task.add_done_callback(_retrieve)
                out[name] = f"no answer in {self.timeout:g} s"
            elif (exc := task.exception()) is not None:
                out[name] = f"{type(exc).__name__}: {exc}"[:300]
            else:
                out[name] = "ok"
        return out

    async def _database(self) -> None:
        await self.store.read(lambda s: s.execute(text("SELECT 1")))

    @staticmethod
    async def _redis(redis: Redis) -> None:
        await redis.ping()


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()

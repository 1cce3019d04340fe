"""In the serving process: waiting until the worker has brought a plan's tables up to the log
as it stood when asked (``flush``), for the HTTP answers that read them right after a change
(a PATCH, a template saved from a plan, a plan created from a template, deleted).

The wait is for the plan's watermark (the log id its tables reflect) to reach the log's newest
id at the call, and, when the worker asked for ids meanwhile (``assigned``, which it does
before writing the rows that needed them), that change too. It polls the watermark every
``poll`` seconds, nudging a child worker first, and gives up after ``timeout`` with a 503.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session

import persistence
from server.plan import ApiError
from server.store import Store

from .child import WorkerChild


class WorkerTables:
    def __init__(
        self,
        store: Store,
        child: WorkerChild | None = None,
        *,
        timeout: float = 15.0,
        poll: float = 0.01,
    ) -> None:
        self.store = store
        self.child = child
        self.timeout = timeout
        self.poll = poll
        self._assigned: dict[str, int] = {}

    def assigned(self, plan_id: str, log_id: int) -> None:
        """The worker's ids for ``plan_id`` were logged as ``log_id``."""
        self._assigned[plan_id] = max(log_id, self._assigned.get(plan_id, 0))

    async def _marks(self, plan_id: str) -> tuple[int, int]:
        def read(s: Session) -> tuple[int, int]:
            return (
                persistence.projection_watermark(session=s, plan_id=plan_id),
                persistence.last_log_id(session=s, plan_id=plan_id),
            )

        return await self.store.read(read)

    async def flush(self, plan_id: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        watermark, mark = await self._marks(plan_id)
        nudged = False
        while True:
            target = max(mark, self._assigned.get(plan_id, 0))
            if watermark >= target:
                if self._assigned.get(plan_id, 0) <= watermark:
                    self._assigned.pop(plan_id, None)
                return
            if not nudged and self.child is not None:
                self.child.nudge(plan_id)
                nudged = True
            if loop.time() > deadline:
                raise ApiError(
                    503,
                    f"the plan's tasks and tables are behind its document (at update "
                    f"{watermark} of {target}): the worker process is not keeping up or not "
                    "running (see TANDEM_WORKER); try again",
                )
            await asyncio.sleep(self.poll)
            watermark, _ = await self._marks(plan_id)

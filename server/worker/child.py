"""The worker as the serving process's child (``tandem serve`` on one machine).

Started when the server starts (the first one forked before the event loop, ``early.py``),
restarted when it exits without being asked to (a crash, a
kill -9: what it had not written is still in the log, and its watermarks say where to go on),
asked to stop (its stdin closed, then SIGTERM) when the server stops, after the rooms have
written their last updates, so it materialises those too. It dies with the server however the
server dies: its stdin reaches its end, and on Linux the kernel sends it SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable

from .early import ForkedProcess, take_forked

log = logging.getLogger(__name__)

STOP_SECONDS = 15.0
RESTART_AFTER = (0.2, 1.0, 5.0)  # the pause before each restart in a row; then the last
STEADY_SECONDS = 30.0  # a worker that ran this long before exiting starts over at the first


class WorkerChild:
    def __init__(self, server_url: str, *, server_stopping: Callable[[], bool] = bool) -> None:
        self.server_url = server_url
        # True once the server has begun to stop (a SIGTERM drains it before the lifespan
        # ends): a worker that exits then is not restarted.
        self._server_stopping = server_stopping
        self.proc: asyncio.subprocess.Process | ForkedProcess | None = None
        self.restarts = 0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.started = asyncio.Event()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    async def __aenter__(self) -> WorkerChild:
        self._task = asyncio.create_task(self._supervise(), name="worker-child")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stopping = True
        proc = self.proc
        if proc is not None and proc.returncode is None:
            if proc.stdin is not None:
                proc.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_SECONDS)
            except TimeoutError:
                log.warning("worker %d did not stop in %.0f s: killed", proc.pid, STOP_SECONDS)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def nudge(self, plan_id: str) -> None:
        """Ask the worker to materialise ``plan_id`` now rather than after a pause."""
        proc = self.proc
        if proc is None or proc.returncode is not None or proc.stdin is None:
            return
        with contextlib.suppress(Exception):  # it is restarting; the poll finds the plan anyway
            proc.stdin.write(plan_id.encode() + b"\n")

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        in_a_row = 0
        while not self._stopping:
            began = loop.time()
            forked = take_forked()  # the first one, forked before the event loop began
            try:
                if forked is not None:
                    self.proc = await ForkedProcess.adopt(*forked)
                else:
                    self.proc = await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "server",
                        "worker",
                        "--child",
                        str(os.getpid()),
                        "--server-url",
                        self.server_url,
                        stdin=asyncio.subprocess.PIPE,
                    )
            except OSError:
                log.exception("starting the worker process failed")
            else:
                self.started.set()
                log.info("worker process %d started", self.proc.pid)
                code = await self.proc.wait()
                if self._stopping or self._server_stopping():
                    return
                log.warning("worker process %d exited (%s); restarting it", self.proc.pid, code)
                self.restarts += 1
            if loop.time() - began > STEADY_SECONDS:
                in_a_row = 0
            await asyncio.sleep(RESTART_AFTER[min(in_a_row, len(RESTART_AFTER) - 1)])
            in_a_row += 1
            if self._server_stopping():
                # A SIGTERM to the whole process group reaches the worker and the server at
                # once: the worker may stop before the server has noticed its own.
                log.info("the server is stopping: the worker is not restarted")
                return

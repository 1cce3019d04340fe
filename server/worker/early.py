"""The first worker child, forked from the serving process once its modules are imported and
before its event loop or any thread starts, so that the two share those pages copy-on-write.

A fresh interpreter for the worker (``python -m server worker --child``) imports again the
same SQLAlchemy, pycrdt and plan code as the server, and pays for them again: about 65 MB
resident where the forked child's own pages (what it writes after the fork) are a fraction of
that. ``gc.freeze()`` before the fork moves every object there is into the collector's permanent
generation, so that neither process's collections write to the shared pages.

Only the first worker is forked: by the time it needs restarting, the server runs threads and
holds database connections, which a fork must not copy; ``WorkerChild`` then starts a fresh
interpreter as before. The forked child behaves as the exec'd one does: its stdin is a pipe from
the server (plan ids to materialise now, and its end is the server gone), it asks the kernel for
SIGTERM when the server dies, it runs niced with an event loop of its own, and ``ps`` shows it
as ``-m server worker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

_forked: tuple[int, int] | None = None  # (pid, the write end of its stdin) until adopted


def fork_worker(run: Callable[[int], int]) -> int | None:
    """Fork the worker now, in a process with no thread but this one; the child calls
    ``run(server_pid)`` and exits with what it returns. Returns the child's pid (to the
    server), or None when forking is not safe here (then the server starts one as before)."""
    global _forked
    if threading.active_count() > 1 or not hasattr(os, "fork"):
        log.info("threads running: the worker will start as a fresh interpreter")
        return None
    server = os.getpid()
    read, write = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    gc.collect()
    gc.freeze()
    pid = os.fork()
    if pid == 0:  # the worker
        code = 1
        try:
            os.close(write)
            if read != 0:  # 0 itself when the server was started with its stdin closed
                os.dup2(read, 0)
                os.close(read)
            if sys.stdin is None or sys.stdin.closed:
                sys.stdin = open(0, closefd=False)  # noqa: SIM115 (for the process's life)
            _retitle(["-m", "server", "worker", "--child", str(server)])
            code = run(server)
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        except BaseException:
            log.exception("the forked worker failed")
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)
    os.close(read)
    _forked = (pid, write)
    return pid


def take_forked() -> tuple[int, int] | None:
    """The forked worker, once: the supervisor adopts it in place of starting one."""
    global _forked
    forked, _forked = _forked, None
    return forked


class ForkedProcess:
    """The little of ``asyncio.subprocess.Process`` that the supervisor uses, for a child that
    was forked rather than started by asyncio: pid, returncode, stdin, wait, signals."""

    def __init__(self, pid: int, stdin: asyncio.WriteTransport) -> None:
        self.pid = pid
        self.stdin: asyncio.WriteTransport | None = stdin
        self.returncode: int | None = None
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    @classmethod
    async def adopt(cls, pid: int, write: int) -> ForkedProcess:
        loop = asyncio.get_running_loop()
        pipe = os.fdopen(write, "wb", buffering=0)
        transport, _ = await loop.connect_write_pipe(asyncio.Protocol, pipe)
        proc = cls(pid, transport)
        try:
            pidfd = os.pidfd_open(pid)
        except (OSError, AttributeError):  # before Linux 5.3: a thread waits instead
            task = asyncio.create_task(asyncio.to_thread(os.waitpid, pid, 0))
            task.add_done_callback(lambda t: proc._reaped(t.result()[1]))
        else:

            def readable() -> None:
                loop.remove_reader(pidfd)
                os.close(pidfd)
                proc._reaped(os.waitpid(pid, 0)[1])

            loop.add_reader(pidfd, readable)
        return proc

    def _reaped(self, status: int) -> None:
        self.returncode = os.waitstatus_to_exitcode(status)
        if self.stdin is not None:
            self.stdin.close()
        if not self._exited.done():
            self._exited.set_result(self.returncode)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:  # not reaped: the pid is still this child's
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _retitle(argv: list[str]) -> None:
    """Show the forked child as what it is in ps and /proc/PID/cmdline: overwrite the
    arguments after the interpreter's name in place (the kernel reads them from this process's
    memory, between arg_start and arg_end), as many whole arguments as fit; the rest is NUL."""
    with contextlib.suppress(Exception):
        with open("/proc/self/stat") as fh:
            stat = fh.read()
        fields = stat[stat.rindex(")") + 2 :].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end: fields 48, 49
        size = end - start
        current = ctypes.string_at(start, size)
        first = current.index(b"\0") + 1  # keep argv[0], the interpreter
        room = size - first
        title = b""
        for arg in argv:  # whole arguments, while they fit
            if len(title) + len(arg.encode()) + 1 > room:
                break
            title += arg.encode() + b"\0"
        blob = title.ljust(room, b"\0")
        ctypes.memmove(start + first, blob, room)

"""A private ``redis-server`` on a free port, without persistence, that a test may stop and
start again on the same port (never the machine's own on 6379, which other tests share)."""

from __future__ import annotations

import ctypes
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.servers import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def die_with_us() -> None:
    """In a child before exec: SIGKILL it should the test process die without tearing down
    (killed itself), so that no Redis, HAProxy or Node client outlives the run."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


class RedisServer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.folder / f"redis-{self.port}.log"

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    REDIS_SERVER,
                    *("--port", str(self.port), "--bind", "127.0.0.1"),
                    *("--save", ""),
                    *("--appendonly", "no"),
                    *("--dir", str(self.folder)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_us,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # it listens within milliseconds: poll its port
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited:\n{self.log_path.read_text()}")
            if self.ping():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on {self.port} did not start")

    def ping(self) -> bool:
        import redis

        try:
            with redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=1) as r:
                return bool(r.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Down and up again on the same port, empty (nothing is saved)."""
        self.stop()
        self.start()


@contextmanager
def private_redis(folder: Path) -> Iterator[str]:
    """The URL of a fresh private redis-server, stopped at the end."""
    server = RedisServer(folder).start()
    try:
        yield server.url
    finally:
        server.stop()

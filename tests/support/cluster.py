"""Several real Tandem processes on one PostgreSQL database, sharing a private Redis, behind a
real HAProxy: the deployment the README describes, for the scale-out tests and bench/cluster.py.

- the private ``redis-server`` (tests/support/redis.py), restartable on its port.
- ``HAProxy``: Debian's haproxy in the foreground (``-db``), a child of the test, running
  docs/haproxy.cfg (the file the README quotes) with this run's ports and servers put in;
  its log (``log stdout``) goes to a file and its stats socket answers ``show stat``.
- ``Cluster``: all of it together; ``cluster()`` tears everything down even when a test fails.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import queue
import re
import resource
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.redis import RedisServer, die_with_us
from tests.support.servers import ROOT, Server, free_port

HAPROXY = os.environ.get("TANDEM_TEST_HAPROXY", "/usr/sbin/haproxy")
HAPROXY_CONFIG = ROOT / "docs" / "haproxy.cfg"
METRICS_TOKEN = "cluster-test-metrics-token"


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Polls ``condition`` until it returns something true; its value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stop(
    proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 10
) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class HAProxy:
    folder: Path
    servers: list[tuple[str, int]]  # (name, port)
    check_path: str = "/readyz"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        # Not in the test's folder: a Unix socket's path has at most 97 bytes here, and
        # pytest's temporary folders (under xdist, per worker) are longer.
        return Path(tempfile.gettempdir()) / f"tandem-haproxy-{self.port}.sock"

    @property
    def config_path(self) -> Path:
        return self.folder / "haproxy.cfg"

    @property
    def log_path(self) -> Path:
        return self.folder / "haproxy.log"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/plans"

    def config(self) -> str:
        return render_config(
            HAPROXY_CONFIG.read_text(),
            port=self.port,
            socket_path=self.socket_path,
            servers=self.servers,
            check_path=self.check_path,
        )

    def start(self) -> HAProxy:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config())
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_us,
            )
        wait_for(self._listening, f"haproxy on {self.port}", 20)
        return self

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"haproxy exited:\n{self.log()}")
        return _listening(self.port) and self.socket_path.exists()

    def command(self, line: str) -> str:
        """One command on the stats socket (``show stat``, ``show servers state``...)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.socket_path))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stat(self) -> dict[str, dict[str, str]]:
        """``show stat`` of the backend's servers, by server name."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {
            row["svname"]: row
            for row in rows
            if row["pxname"] == "tandem" and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def status(self) -> dict[str, str]:
        """Each server's health as HAProxy sees it: UP, DOWN, "UP 1/2", "DOWN 1/2"..."""
        return {name: row["status"] for name, row in self.stat().items()}

    def wait_status(self, name: str, up: bool, timeout: float = 30) -> None:
        want = "UP" if up else "DOWN"
        wait_for(
            lambda: self.status().get(name) == want,
            f"haproxy to see {name} {want} (now {self.status()})",
            timeout,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        _stop(self.proc, signal.SIGUSR1)  # a soft stop; SIGKILL after 10 s
        self.proc = None
        self.socket_path.unlink(missing_ok=True)


def render_config(
    template: str,
    *,
    port: int,
    socket_path: Path,
    servers: list[tuple[str, int]],
    check_path: str = "/readyz",
) -> str:
    """docs/haproxy.cfg with this run's listening port, stats socket and servers: the `server`
    lines are replaced by one per process, on the options of the first."""
    out: list[str] = []
    placed = False
    for line in template.splitlines():
        stripped = line.strip()
        if stripped.startswith("bind "):
            line = re.sub(r"bind \S+", f"bind 127.0.0.1:{port}", line)
        elif stripped.startswith("maxconn "):
            # Two descriptors a connection (client and server side) must fit this machine's
            # limit, which HAProxy refuses to start beyond.
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            fitting = (hard - 100) // 2 if hard != resource.RLIM_INFINITY else 10**6
            line = re.sub(r"\d+", str(min(int(stripped.split()[1]), fitting)), line)
        elif stripped.startswith("stats socket "):
            line = re.sub(r"stats socket \S+", f"stats socket {socket_path}", line)
        elif stripped.startswith("http-check send ") and check_path != "/readyz":
            line = line.replace("/readyz", check_path)
        elif stripped.startswith("server "):
            if placed:
                continue
            placed = True
            indent = line[: len(line) - len(line.lstrip())]
            options = stripped.split()[3:]
            for name, server_port in servers:
                out.append(
                    " ".join([f"{indent}server", name, f"127.0.0.1:{server_port}", *options])
                )
            # For the tests only: which process answered, on every response (the websocket
            # upgrade's too), so that a client knows where it landed.
            out.append(f"{indent}http-response set-header X-Tandem-Server %s")
            continue
        out.append(line)
    assert placed, "docs/haproxy.cfg has no `server` line"
    return "\n".join(out) + "\n"


@dataclass
class Cluster:
    folder: Path
    database_url: str
    size: int = 3
    extra_env: dict[str, str] = field(default_factory=dict)
    with_redis: bool = True  # False: no TANDEM_REDIS_URL (one process, for comparison)
    redis: RedisServer = field(init=False)
    servers: list[Server] = field(init=False, default_factory=list)
    proxy: HAProxy = field(init=False)

    def __post_init__(self) -> None:
        self.redis = RedisServer(self.folder / "redis")
        for i in range(self.size):
            data = self.folder / f"s{i + 1}"
            data.mkdir(parents=True, exist_ok=True)
            self.servers.append(Server(data_dir=data, database_url=self.database_url))
        self.proxy = HAProxy(
            self.folder / "haproxy",
            [(self.name(i), srv.port) for i, srv in enumerate(self.servers)],
        )

    @staticmethod
    def name(index: int) -> str:
        return f"tandem{index + 1}"

    def index(self, name: str) -> int:
        return int(name.removeprefix("tandem")) - 1

    def env(self) -> dict[str, str]:
        return {
            **({"TANDEM_REDIS_URL": self.redis.url} if self.with_redis else {}),
            "TANDEM_METRICS_TOKEN": METRICS_TOKEN,
            "TANDEM_TRUSTED_PROXIES": "127.0.0.1",
            # About HAProxy's time to see a draining process down (fall 2 x inter 1s).
            "TANDEM_DRAIN_SECONDS": "3",
            **self.extra_env,
        }

    # Starting and stopping.

    def start(self) -> Cluster:
        if self.with_redis:
            self.redis.start()
        for srv in self.servers:
            srv.extra_env = {**self.env(), **srv.extra_env}
        # The first one alone (it migrates the database if it has to), then the others at once.
        self.servers[0].start()
        _parallel([srv.start for srv in self.servers[1:]])
        # A server whose port was taken before it bound moved to another (Server.start).
        self.proxy.servers = [(self.name(i), srv.port) for i, srv in enumerate(self.servers)]
        if httpx.get(f"{self.servers[0].http}/readyz", timeout=5).status_code == 404:
            self.proxy.check_path = "/healthz"  # until /readyz exists
        self.proxy.start()
        for i in range(self.size):
            self.proxy.wait_status(self.name(i), up=True)
        return self

    def close(self) -> None:
        with contextlib.ExitStack() as stack:
            stack.callback(self.redis.stop)
            stack.callback(self.proxy.stop)
            # All at once: each drains for TANDEM_DRAIN_SECONDS.
            stack.callback(_parallel, [lambda srv=srv: _quiet_stop(srv) for srv in self.servers])

    def kill(self, i: int) -> None:
        """SIGKILL: the process and its sockets are gone at once (its worker child notices
        its parent is gone and exits)."""
        self.servers[i].kill()

    def sigterm(self, i: int, timeout: float = 60) -> int:
        """SIGTERM, and the exit code once the process has drained."""
        srv = self.servers[i]
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGTERM)
        try:
            code = srv.proc.wait(timeout=timeout)
        finally:
            if srv.proc.poll() is None:
                srv.proc.kill()
                srv.proc.wait()
            srv.proc = None
        return code

    def stop(self, i: int) -> int:
        return self.servers[i].stop()

    def restart(self, i: int) -> None:
        """Starts process ``i`` again on its port, and waits until HAProxy sends to it."""
        srv = self.servers[i]
        if srv.proc is not None:
            srv.stop()
        srv.start()
        self.proxy.wait_status(self.name(i), up=True)

    def alive(self) -> list[int]:
        return [i for i, srv in enumerate(self.servers) if srv.proc is not None]

    # Reading it.

    @property
    def http(self) -> str:
        return self.proxy.http

    @property
    def ws(self) -> str:
        return self.proxy.ws

    def metrics_text(self, i: int) -> str:
        r = httpx.get(
            f"{self.servers[i].http}/metrics",
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
            timeout=10,
        )
        r.raise_for_status()
        return r.text

    def metrics(self, i: int) -> dict[str, Any]:
        """The process's /metrics through prometheus_client's own parser, by family name."""
        from prometheus_client.parser import text_string_to_metric_families

        return {f.name: f for f in text_string_to_metric_families(self.metrics_text(i))}

    def value(self, i: int, family: str, sample: str | None = None, **labels: str) -> float:
        """One sample's value (the family's first sample of that name, matching ``labels``)."""
        fam = self.metrics(i)[family]
        for s in fam.samples:
            if (sample is None or s.name == sample) and all(
                s.labels.get(k) == v for k, v in labels.items()
            ):
                return float(s.value)
        raise KeyError(f"{family} {sample or ''} {labels} not in /metrics of process {i}")

    def connections(self) -> dict[int, int]:
        """Open websockets per live process, from its /metrics."""
        return {i: int(self.value(i, "tandem_open_connections")) for i in self.alive()}

    def logs(self) -> str:
        parts = [f"--- {self.name(i)} ---\n{srv.log()}" for i, srv in enumerate(self.servers)]
        parts.append(f"--- haproxy ---\n{self.proxy.log()}")
        parts.append(f"--- redis ---\n{_read(self.redis.log_path)}")
        return "\n".join(parts)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _quiet_stop(srv: Server) -> None:
    with contextlib.suppress(Exception):
        srv.stop()


def _parallel(calls: list[Callable[[], Any]]) -> None:
    """Runs the calls at once; the first failure is raised here."""
    with ThreadPoolExecutor(max_workers=max(1, len(calls))) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result()


@contextlib.contextmanager
def cluster(folder: Path, database_url: str, size: int = 3, **extra_env: str) -> Iterator[Cluster]:
    """A started cluster, torn down (processes, HAProxy, Redis) however the block ends."""
    c = Cluster(folder, database_url, size, dict(extra_env))
    try:
        c.start()
        yield c
    finally:
        c.close()


CLIENTS_SCRIPT = ROOT / "tests" / "js" / "cluster_clients.mjs"


class NodeClients:
    """One `node tests/js/cluster_clients.mjs` process: stock y-websocket clients of one plan,
    driven a JSON command per line (the commands are listed in the script)."""

    def __init__(self, ws_base: str, plan_id: str, log_path: Path) -> None:
        self.log_path = log_path
        self._stderr = open(log_path, "ab")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            ["node", str(CLIENTS_SCRIPT), ws_base, plan_id],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            preexec_fn=die_with_us,
        )
        self._lines: queue.Queue[bytes] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(b"")

    def call(self, cmd: str, timeout: float = 90, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        if "timeoutMs" not in args and cmd.startswith(("wait", "synced", "converge")):
            args["timeoutMs"] = int((timeout - 5) * 1000)
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
        self.proc.stdin.flush()
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"node clients did not answer {cmd!r} in {timeout} s") from None
        if not line:
            raise AssertionError(f"node clients exited during {cmd!r}:\n{_read(self.log_path)}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise AssertionError(f"node clients {cmd!r} failed: {answer['error']}")
        return answer

    def open(self, tokens: list[str], url: str | None = None) -> list[int]:
        """New clients, one per token, through the proxy (or straight to ``url``)."""
        return list(self.call("open", tokens=tokens, url=url)["clients"])

    def synced(self, clients: list[int] | None = None, timeout: float = 60) -> dict[int, str]:
        servers = self.call("synced", clients=clients, timeout=timeout)["servers"]
        return {int(i): name for i, name in servers.items()}

    def state(self) -> list[dict[str, Any]]:
        return list(self.call("state")["clients"])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(b'{"cmd": "quit"}\n')
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


@contextlib.contextmanager
def node_clients(ws_base: str, plan_id: str, log_path: Path) -> Iterator[NodeClients]:
    clients = NodeClients(ws_base, plan_id, log_path)
    try:
        yield clients
    finally:
        clients.close()

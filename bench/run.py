"""Benchmark Tandem against the stock y-websocket server, with the same load, in one run.

    .venv/bin/python bench/run.py                      # target: 1 plan x 50 clients x 1 edit/s
    .venv/bin/python bench/run.py --scenario many      # 10 plans x 10 clients x 1 edit/s
    .venv/bin/python bench/run.py --scenario open      # open a ~1 MB plan, cold and warm
    .venv/bin/python bench/run.py --servers tandem,tandem-pg,stock --seconds 60

For each server in turn: start it fresh (Tandem on a temporary data directory, with a user, an
API token and plans made through its CLI and API), drive it with the Node clients of
bench/loadgen.mjs or bench/open_plan.mjs, sample its CPU time and RSS from /proc every 100 ms,
stop it. Then print Markdown tables. Only 127.0.0.1 is ever contacted; every step has a
timeout; servers are started in their own process groups and killed as groups, and temporary
directories (and the optional PostgreSQL database) are removed, whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TANDEM = ROOT / ".venv" / "bin" / "tandem"
STOCK_SERVER = ROOT / "node_modules" / "@y" / "websocket-server" / "src" / "server.js"
STOCK_DEFLATE_SERVER = ROOT / "bench" / "stock_deflate_server.mjs"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"

SCENARIOS = {
    # What Tandem is for: one plan, a whole account team and customer team in it at once.
    "target": {"plans": 1, "clients": 50, "rate": 1.0},
    # Many smaller plans open at the same time on one server.
    "many": {"plans": 10, "clients": 10, "rate": 1.0},
    "open": {},
}

SERVER_LABELS = {
    "tandem": "Tandem (SQLite)",
    "tandem-pg": "Tandem (PostgreSQL)",
    "stock": "@y/websocket-server (memory)",
    "stock-deflate": "@y/websocket-server + deflate (memory)",
}

# --tandem-env KEY=VALUE settings, for every Tandem server of the run.
TANDEM_EXTRA_ENV: dict[str, str] = {}

# Startup warnings that say nothing about the load (the bench sends no mail).
BENIGN_LOG_LINES = ("TANDEM_SMTP_HOST is not set",)

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Machine


def machine_info() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10)
    return {
        "cpus (nproc)": str(len(os.sched_getaffinity(0))),
        "cpu model": model,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node.stdout.strip(),
        "yjs": _npm_version("yjs"),
        "y-websocket": _npm_version("y-websocket"),
        "@y/websocket-server": _npm_version("@y/websocket-server"),
        "pycrdt": _py_version("pycrdt"),
    }


def _npm_version(name: str) -> str:
    try:
        return json.loads((ROOT / "node_modules" / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "?"


def _py_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


# Sampling a process tree from /proc (psutil is not a dependency)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from the kernel's per-thread children lists."""
    pids, i = [pid], 0
    while i < len(pids):
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pids[i]}/task"):
                with open(f"/proc/{pids[i]}/task/{task}/children") as fh:
                    pids += [int(c) for c in fh.read().split()]
        i += 1
    return pids


def _cpu_seconds(pid: int) -> float:
    """User + system time of ``pid`` and of its children it has already reaped."""
    with open(f"/proc/{pid}/stat") as fh:
        stat = fh.read()
    # Fields after the command name (which may hold spaces): state is field 3, utime 14.
    fields = stat[stat.rindex(")") + 2 :].split()
    return sum(int(x) for x in fields[11:15]) / TICKS


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs: to see what else was running during a measurement."""
    with open("/proc/stat") as fh:
        values = [int(x) for x in fh.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


class Sampler:
    """CPU time and RSS of a process tree every ``interval`` seconds, in a thread."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        # (monotonic, cpu seconds, rss bytes, machine busy jiffies, machine total jiffies)
        self.samples: list[tuple[float, float, int, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            cpu, rss = 0.0, 0
            for pid in _tree(self.pid):
                with contextlib.suppress(OSError, ValueError):
                    cpu += _cpu_seconds(pid)
                    rss += _rss_bytes(pid)
            if rss:
                self.samples.append((time.monotonic(), cpu, rss, *_machine_ticks()))
            self._stop.wait(self.interval)

    @property
    def peak_rss_mb(self) -> float | None:
        return max(s[2] for s in self.samples) / 2**20 if self.samples else None

    @property
    def first_rss_mb(self) -> float | None:
        return self.samples[0][2] / 2**20 if self.samples else None

    def _around(self, start: float | None, end: float | None) -> tuple | None:
        """The samples just outside [start, end]."""
        if start is None or end is None:
            return None
        before = [s for s in self.samples if s[0] <= start]
        after = [s for s in self.samples if s[0] >= end]
        return (before[-1], after[0]) if before and after else None

    def cpu_percent(self, start: float | None, end: float | None) -> float | None:
        """Share of one core the process tree used between two monotonic times."""
        around = self._around(start, end)
        if around is None:
            return None
        a, b = around
        return 100 * (b[1] - a[1]) / (b[0] - a[0])

    def machine_percent(self, start: float | None, end: float | None) -> float | None:
        """How busy the whole machine was, in % of one core (so up to 100 x CPUs)."""
        around = self._around(start, end)
        if around is None or around[1][4] == around[0][4]:
            return None
        a, b = around
        cpus = len(os.sched_getaffinity(0))
        return 100 * cpus * (b[3] - a[3]) / (b[4] - a[4])


class Prober:
    """GETs a cheap URL of the server every ``interval`` s, in a thread, timing each answer.

    The answer comes from the same event loop that forwards the edits, so slow answers mean the
    server itself stalled, whatever the clients' own process was doing."""

    def __init__(self, url: str, interval: float = 0.05) -> None:
        self.url = url
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (monotonic, ms)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self._stop.is_set():
                t = time.perf_counter()
                with contextlib.suppress(httpx.HTTPError):
                    http.get(self.url)
                    self.samples.append((time.monotonic(), (time.perf_counter() - t) * 1000))
                self._stop.wait(self.interval)

    def summary(self, start: float | None, end: float | None) -> dict | None:
        if start is None or end is None:
            return None
        ms = sorted(m for t, m in self.samples if start <= t <= end)
        if not ms:
            return None

        def pick(p: float) -> float:
            return round(ms[min(len(ms) - 1, int(p / 100 * len(ms)))], 1)

        return {"count": len(ms), "p50": pick(50), "p99": pick(99), "max": round(ms[-1], 1)}


# Child processes


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> int | None:
    """SIGTERM the process group, then SIGKILL it if it has not exited within ``timeout``."""
    if proc.poll() is None:
        _kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"pid {proc.pid} ignored SIGTERM for {timeout}s: SIGKILL")
            _kill_group(proc, signal.SIGKILL)
            proc.wait(timeout=10)
    _kill_group(proc, signal.SIGKILL)  # anything it left behind in its group
    return proc.returncode


def run_node(
    argv: list[str], timeout: float, stderr_path: Path, on_event: Callable[[dict], None] = print
) -> list[tuple[float, dict]]:
    """Run a bench script; return its JSON stdout lines, each with the monotonic time it came."""
    events: list[tuple[float, dict]] = []
    with open(stderr_path, "ab") as err:
        proc = subprocess.Popen(
            ["node", *argv],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                events.append((time.monotonic(), event))
                on_event(event)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"node {argv[0]} still running after {timeout:.0f}s: killed")
    finally:
        stop_process(proc, timeout=5)
        reader.join(timeout=5)
    if proc.returncode:
        tail = stderr_path.read_text(errors="replace")[-2000:]
        log(f"node {argv[0]} exited {proc.returncode}; stderr tail:\n{tail}")
    return events


class ServerFailed(RuntimeError):
    """A server that did not start; carries the end of its log for the report."""

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(message)
        self.log_tail = log_tail


def wait_http(url: str, proc: subprocess.Popen, log_path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            raise ServerFailed(f"server exited early (code {proc.returncode})", tail)
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server did not answer {url} within {timeout}s")


# The servers under test


class Server:
    """One server under test: started in its own process group on a free port, logging to a file."""

    key = ""
    token = ""  # the stock server ignores the token parameter

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.ready_url = ""
        self.log_path = workdir / f"{self.key}.log"

    @property
    def label(self) -> str:
        return SERVER_LABELS[self.key]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> tuple[list[str], dict[str, str], str]:
        """argv, extra environment, and a URL that answers 200 once the server is ready."""
        raise NotImplementedError

    def start(self) -> None:
        self.port = free_port()
        argv, env, ready = self.command()
        self.ready_url = ready
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_http(ready, self.proc, self.log_path)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        code = stop_process(self.proc)
        self.proc = None
        return code

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def problems(self) -> list[str]:
        """Warnings, errors and tracebacks the server logged."""
        pattern = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback|Error\b")
        return [
            line
            for line in self.log_text().splitlines()
            if pattern.search(line) and not any(benign in line for benign in BENIGN_LOG_LINES)
        ]

    def create_plans(self, n: int) -> list[str]:
        raise NotImplementedError

    def persisted_updates(self, plan_id: str) -> int | None:
        return None

    def cleanup(self) -> None:
        self.stop()


class Stock(Server):
    """The reference: y-websocket's own server, documents in memory, no auth, no persistence."""

    key = "stock"

    def command(self) -> tuple[list[str], dict[str, str], str]:
        env = {"HOST": "127.0.0.1", "PORT": str(self.port)}
        return ["node", str(STOCK_SERVER)], env, f"http://127.0.0.1:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def create_plans(self, n: int) -> list[str]:
        prefix = uuid.uuid4().hex[:8]  # any room name works; fresh names start empty
        return [f"bench-{prefix}-{i}" for i in range(n)]


class StockDeflate(Stock):
    """Control: the same stock server code, behind a ws server that accepts permessage-deflate."""

    key = "stock-deflate"

    def command(self) -> tuple[list[str], dict[str, str], str]:
        env = {"HOST": "127.0.0.1", "PORT": str(self.port)}
        return ["node", str(STOCK_DEFLATE_SERVER)], env, f"http://127.0.0.1:{self.port}/"


class Tandem(Server):
    """Tandem on a fresh data directory, with a user, an API token and plans made as users do."""

    key = "tandem"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.data_dir = workdir / f"{self.key}-data"
        self.data_dir.mkdir()
        self.database_url = self._create_database()
        self.env = {
            "TANDEM_DATA_DIR": str(self.data_dir),
            "TANDEM_DATABASE_URL": self.database_url,
            "TANDEM_SECRET_KEY": "bench-secret-key",
            "TANDEM_LOG_LEVEL": "info",
            # Every bench client connects from 127.0.0.1, where real users come from many
            # addresses: lift the per-address connect limit (120/min), not the global ones.
            "TANDEM_WS_CONNECTS_PER_MINUTE": "1000000",
            **TANDEM_EXTRA_ENV,
        }
        self._cli(["users", "create", "bench@example.com", "--name", "Bench"], "password123\n")
        self.token = self._cli(["tokens", "create", "bench@example.com"]).strip().splitlines()[0]

    def _create_database(self) -> str:
        return f"sqlite:///{self.data_dir / 'tandem.db'}"

    def _cli(self, args: list[str], stdin: str | None = None) -> str:
        done = subprocess.run(
            [str(TANDEM), *args],
            env={**os.environ, **self.env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        if done.returncode != 0:
            raise RuntimeError(f"tandem {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def command(self) -> tuple[list[str], dict[str, str], str]:
        argv = [str(TANDEM), "serve", "--port", str(self.port)]
        return argv, self.env, f"{self.http}/healthz"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/plans"

    def create_plans(self, n: int) -> list[str]:
        ids = []
        with httpx.Client(headers={"Authorization": f"Bearer {self.token}"}, timeout=30) as http:
            for i in range(n):
                r = http.post(
                    f"{self.http}/api/plans",
                    json={"title": f"Bench plan {i}", "customer": "Bench Customer"},
                )
                r.raise_for_status()
                ids.append(r.json()["id"])
        return ids

    def persisted_updates(self, plan_id: str) -> int | None:
        path = self.database_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT count(*) FROM plan_updates WHERE plan_id = ?", (plan_id,))
            return int(row.fetchone()[0])

    def database_bytes(self) -> int:
        path = Path(self.database_url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))  # + -wal, -shm

    def rooms_loaded(self) -> list[str]:
        return re.findall(r"room \S+ loaded \(\d+ updates replayed\)", self.log_text())


class TandemPostgres(Tandem):
    """Tandem on a brand-new PostgreSQL database, dropped afterwards."""

    key = "tandem-pg"
    pg_name = ""

    def _create_database(self) -> str:
        self.pg_name = f"bench_{uuid.uuid4().hex[:10]}"
        self._psql("postgres", f'CREATE DATABASE "{self.pg_name}"')
        return PG_ADMIN.rsplit("/", 1)[0] + "/" + self.pg_name

    @staticmethod
    def _psql(db: str, sql: str) -> str:
        done = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-tAc", sql],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr}")
        return done.stdout

    def persisted_updates(self, plan_id: str) -> int | None:
        # plan ids come from our own server's API, never from outside; still, quote them.
        quoted = plan_id.replace("'", "''")
        sql = f"SELECT count(*) FROM plan_updates WHERE plan_id = '{quoted}'"
        return int(self._psql(self.pg_name, sql).strip())

    def database_bytes(self) -> int:
        return int(self._psql(self.pg_name, "SELECT pg_database_size(current_database())").strip())

    def cleanup(self) -> None:
        super().cleanup()
        if self.pg_name:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._psql("postgres", f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')


SERVERS: dict[str, type[Server]] = {
    "tandem": Tandem,
    "tandem-pg": TandemPostgres,
    "stock": Stock,
    "stock-deflate": StockDeflate,
}


@contextlib.contextmanager
def server_under_test(key: str, workdir: Path) -> Iterator[Server]:
    """A started server; stopped (and its database dropped) on the way out, however we leave."""
    server: Server | None = None
    try:
        server = SERVERS[key](workdir)
        server.start()
        yield server
    finally:
        if server is not None:
            server.cleanup()


# Scenarios


def load_scenario(key: str, args: argparse.Namespace, workdir: Path) -> dict:
    """Drive one server with bench/loadgen.mjs; return the load generator's result plus ours."""
    with server_under_test(key, workdir) as server:
        plans = server.create_plans(args.plans)
        for plan in plans if args.preload else []:
            # Start from a big plan rather than an empty one (what a plan looks like after
            # months of use): every sync and every checkpoint then carries that weight.
            log(f"{server.label}: preloading {args.preload} edits into {plan}")
            build = ["bench/open_plan.mjs", "build", "--url", server.ws_url, "--plan", plan]
            build += ["--token", server.token, "--edits", str(args.preload)]
            built = _last(run_node(build, 600, workdir / "preload.err", on_event=_quiet))
            if "error" in built:
                raise RuntimeError(f"preloading failed: {built['error']}")
        # Work the server deferred during the preload (Tandem's materialiser) must not land in
        # the measured window: wait until it is idle, and say how long that took.
        preload_settle = _wait_idle(server.pid) if args.preload else None
        argv = [
            "bench/loadgen.mjs",
            "--url", server.ws_url,
            "--plans", ",".join(plans),
            "--clients", str(args.clients),
            "--token", server.token,
            "--rate", str(args.rate),
            "--awareness-rate", str(args.awareness_rate),
            "--warmup", str(args.warmup),
            "--seconds", str(args.seconds),
            "--drain", str(args.drain),
            "--settle", str(args.settle),
            "--storm-timeout", str(args.storm_timeout),
            "--deflate", args.deflate,
            "--timeline", "on" if args.timeline else "off",
        ]  # fmt: skip
        budget = args.storm_timeout + args.warmup + args.seconds + args.drain + 2 * args.settle
        with Sampler(server.pid) as sampler, Prober(server.ready_url) as prober:
            events = run_node(
                argv, budget + 60, workdir / f"loadgen-{key}.err", on_event=_progress(server)
            )
        stamps = {e.get("phase"): t for t, e in events if e.get("event") == "phase"}
        results = [e for _, e in events if e.get("event") == "result"]
        result = results[-1] if results else {"error": "the load generator gave no result"}
        exit_code = server.stop()
    result.update(
        server=server.label,
        server_cpu_percent=sampler.cpu_percent(
            stamps.get("measure-start"), stamps.get("measure-end")
        ),
        server_storm_cpu_percent=sampler.cpu_percent(stamps.get("storm"), stamps.get("warmup")),
        machine_cpu_percent=sampler.machine_percent(
            stamps.get("measure-start"), stamps.get("measure-end")
        ),
        load_average=os.getloadavg()[0],
        server_probe_ms=prober.summary(stamps.get("measure-start"), stamps.get("measure-end")),
        preload_settle_seconds=preload_settle,
        server_rss_start_mb=sampler.first_rss_mb,
        server_rss_peak_mb=sampler.peak_rss_mb,
        server_exit_code=exit_code,
        server_problems=server.problems(),
        server_log_tail=server.log_tail() if result.get("error") else None,
    )
    return result


def _wait_idle(pid: int, timeout: float = 300, below: float = 5.0) -> float | None:
    """Seconds until the process tree used under ``below`` % of a core for a whole second."""
    start = time.monotonic()
    last = sum(_cpu_seconds(p) for p in _tree(pid))
    while time.monotonic() - start < timeout:
        time.sleep(1)
        now = sum(_cpu_seconds(p) for p in _tree(pid))
        if (now - last) * 100 < below:
            return round(time.monotonic() - start, 1)
        last = now
    return None


def _progress(server: Server) -> Callable[[dict], None]:
    def show(event: dict) -> None:
        if event.get("event") == "phase":
            extra = {k: v for k, v in event.items() if k not in ("event", "phase", "t")}
            log(f"{server.label}: {event['phase']} {extra or ''}")

    return show


def open_scenario(key: str, args: argparse.Namespace, workdir: Path) -> dict:
    """Build a big plan through a client, restart the server if it persists, time newcomers."""
    err = workdir / f"open-{key}.err"
    with server_under_test(key, workdir) as server:
        (plan,) = server.create_plans(1)

        def common() -> list[str]:  # after a restart the server listens on a new port
            return [
                *("--url", server.ws_url, "--plan", plan, "--token", server.token),
                *("--deflate", args.deflate, "--edits", str(args.edits)),
            ]

        log(f"{server.label}: building a plan of {args.edits} edits")
        build = ["bench/open_plan.mjs", "build", *common()]
        built = _last(run_node(build, 600, err, on_event=_quiet))
        if "error" in built:
            return {
                "server": server.label,
                "error": built["error"],
                "server_log_tail": server.log_tail(),
            }
        result: dict = {"server": server.label, "build": built}
        if isinstance(server, Tandem):
            # Forwarding happens only after the commit, so the watcher holding every edit
            # already means they are durable; count the log rows anyway, independently.
            result["persisted_updates"] = _wait_persisted(server, plan, args.edits)
            result["database_bytes"] = server.database_bytes()
            t = time.monotonic()
            result["shutdown_exit_code"] = server.stop()
            result["shutdown_seconds"] = round(time.monotonic() - t, 2)
            server.start()  # same data dir and database: the room is loaded cold on first join
            result["cold"] = True
        else:
            result["cold"] = False  # in memory: nothing to restart, the room is warm
        log(f"{server.label}: timing {args.runs} newcomers")
        opening = ["bench/open_plan.mjs", "open", *common(), "--runs", str(args.runs)]
        with Sampler(server.pid) as sampler:
            opened = _last(run_node(opening, 600, err, on_event=_quiet))
        result["open"] = opened
        result["server_rss_peak_mb"] = sampler.peak_rss_mb
        result["load_average"] = os.getloadavg()[0]
        if isinstance(server, Tandem):
            result["rooms_loaded"] = server.rooms_loaded()
        result["server_exit_code"] = server.stop()
        result["server_problems"] = server.problems()
        if "error" in opened:
            result["server_log_tail"] = server.log_tail()
    return result


def _quiet(_event: dict) -> None:
    pass


def _last(events: list[tuple[float, dict]]) -> dict:
    return events[-1][1] if events else {"error": "no output"}


def _wait_persisted(server: Server, plan: str, expected: int, timeout: float = 30) -> int | None:
    deadline = time.monotonic() + timeout
    count = server.persisted_updates(plan)
    while count is not None and count < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        count = server.persisted_updates(plan)
    return count


# Reporting


def _fmt(value: object, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def load_report(results: list[dict]) -> str:
    main_rows, detail_rows = [], []
    for r in results:
        if r.get("error"):
            main_rows.append([r["server"], f"**failed: {r['error']}**"] + [""] * 10)
            continue
        lat = r["latencyMs"]
        total_rate = r["rate"] * r["clients"]
        main_rows.append(
            [
                r["server"],
                f"{r['plans']} × {r['clientsPerPlan']}",
                f"{_fmt(r['rate'], 2)} ({_fmt(total_rate, 0)} total)",
                f"{r['storm']['synced']}/{r['clients']} in {_fmt(r['storm']['seconds'], 2)} s",
                _fmt(lat["p50"]),
                _fmt(lat["p95"]),
                _fmt(lat["p99"]),
                _fmt(lat["max"]),
                _fmt(r["lossPercent"], 2),
                _fmt(r["converged"]),
                _fmt(r["server_cpu_percent"], 0),
                _fmt(r["server_rss_peak_mb"], 0),
            ]
        )
        aw = r["awarenessLatencyMs"]
        conn = r["storm"]["connectToSyncMs"]
        client = r["client"]
        errors = ", ".join(f"{k} ×{v}" for k, v in r["errors"].items()) or "none"
        detail_rows.append(
            [
                r["server"],
                str(r["editsSent"]),
                f"{r['receivedDeliveries']}/{r['expectedDeliveries']}",
                str(r["duplicates"]),
                f"{_fmt(conn['p50'], 0)} / {_fmt(conn['max'], 0)}",
                _fmt(r["server_storm_cpu_percent"], 0),
                f"{_fmt(aw['p50'])} / {_fmt(aw['p99'])}",
                _probe(r.get("server_probe_ms")),
                str(r["reconnects"]),
                r.get("extensions") or "none",
                errors,
                str(len(r["server_problems"])),
                f"{_fmt(client['cpuPercent'], 0)} / {_fmt(client['eventLoopDelay']['lagP99Ms'])}",
                _other_load(r),
            ]
        )
    main = _table(
        ["server", "plans × clients", "edits/s per client", "synced (storm)", "p50 ms", "p95 ms",
         "p99 ms", "max ms", "loss %", "converged", "server CPU %", "peak RSS MB"],
        main_rows,
    )  # fmt: skip
    details = _table(
        ["server", "edits sent", "deliveries (measured)", "dupes", "connect→sync p50/max ms",
         "storm CPU %", "cursor p50/p99 ms", "HTTP probe p50/p99/max ms", "reconnects",
         "ws extension", "client errors", "server log warnings",
         "loadgen CPU % / loop lag p99 ms", "other processes CPU %"],
        detail_rows,
    )  # fmt: skip
    return main + "\n\nDetails:\n\n" + details


def _probe(p: dict | None) -> str:
    return f"{_fmt(p['p50'])} / {_fmt(p['p99'])} / {_fmt(p['max'])}" if p else "–"


def _other_load(r: dict) -> str:
    """CPU the rest of the machine used in the window (not the server, not the load generator):
    anything well above zero means the figures were measured on a shared, busy machine."""
    machine = r.get("machine_cpu_percent")
    if machine is None or r.get("server_cpu_percent") is None:
        return "–"
    other = max(0.0, machine - r["server_cpu_percent"] - r["client"]["cpuPercent"])
    return f"{other:.0f} (load avg {r['load_average']:.1f})"


def open_report(results: list[dict]) -> str:
    rows = []
    for r in results:
        if r.get("error") or "error" in r.get("open", {}):
            rows.append([r["server"], f"**failed: {r.get('error') or r['open']['error']}**"])
            continue
        b, o = r["build"], r["open"]
        runs = o["runs"]
        first = f"{_fmt(o['firstMs'], 0)} ({'cold, after restart' if r['cold'] else 'warm'})"
        warm = statistics.median(x["ms"] for x in runs[1:]) if len(runs) > 1 else None
        rows.append(
            [
                r["server"],
                f"{b['edits']} edits, {b['xmlChars'] / 1e6:.2f} MB text, {b['paragraphs']} ¶",
                f"{b['stateBytes']:,}",
                f"{runs[0]['bytesReceived']:,}",
                first,
                _fmt(o["medianMs"], 0),
                _fmt(warm, 0),
                " / ".join(_fmt(x["ms"], 0) for x in runs),
                _fmt(b["editsPerSecond"], 0),
                _fmt(r.get("persisted_updates")),
                _fmt(r["database_bytes"] / 1e6 if "database_bytes" in r else None),
                _fmt(r["server_rss_peak_mb"], 0),
                _fmt(r["load_average"]),
            ]
        )
    return _table(
        ["server", "plan", "state bytes", "bytes to sync", "1st open ms", "median of all ms",
         "median warm ms", "each run ms", "build edits/s", "log rows", "database MB",
         "peak RSS MB", "load avg"],
        rows,
    )  # fmt: skip


# Main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scenario", choices=sorted(SCENARIOS), default="target")
    p.add_argument("--plans", type=int, help="plans (scenario default)")
    p.add_argument("--clients", type=int, help="clients per plan (scenario default)")
    p.add_argument("--rate", type=float, help="edits per second per client (scenario default)")
    p.add_argument("--awareness-rate", type=float, default=0.5, help="cursor moves/s per client")
    p.add_argument("--seconds", type=float, default=30, help="measured window (default 30)")
    p.add_argument("--warmup", type=float, default=5, help="editing before the window (default 5)")
    p.add_argument("--drain", type=float, default=15, help="max wait for late deliveries")
    p.add_argument("--settle", type=float, default=15, help="max wait for convergence")
    p.add_argument("--storm-timeout", type=float, default=60, help="max wait for all to sync")
    p.add_argument(
        "--deflate",
        choices=["off", "on"],
        default="off",
        help="clients offer permessage-deflate (default off: see bench/README.md)",
    )
    p.add_argument(
        "--preload", type=int, default=0, help="edits written into each plan before the load"
    )
    p.add_argument("--edits", type=int, default=20000, help="open scenario: edits in the plan")
    p.add_argument("--runs", type=int, default=5, help="open scenario: newcomers timed")
    p.add_argument(
        "--servers",
        default="tandem,stock",
        help="comma-separated, run in this order: tandem, tandem-pg, stock, stock-deflate "
        "(default tandem,stock)",
    )
    p.add_argument("--repeat", type=int, default=1, help="rounds over the servers (default 1)")
    p.add_argument(
        "--timeline",
        action="store_true",
        help="print each server's slowest 250 ms stretches of the window (periodic stalls)",
    )
    p.add_argument(
        "--tandem-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a TANDEM_* setting for the Tandem servers (repeatable)",
    )
    p.add_argument("--logs", type=Path, help="copy server logs and client stderr to this dir")
    p.add_argument("--json", type=Path, help="also write the raw results to this file")
    args = p.parse_args(argv)
    for name, value in SCENARIOS[args.scenario].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for setting in args.tandem_env:
        key, sep, value = setting.partition("=")
        if not sep or not key.startswith("TANDEM_"):
            p.error(f"--tandem-env wants TANDEM_KEY=VALUE, not {setting!r}")
        TANDEM_EXTRA_ENV[key] = value
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        p.error(f"unknown servers: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("node") is None or not TANDEM.exists() or not STOCK_SERVER.exists():
        print(
            "needs node, .venv/bin/tandem and node_modules (run `make test-setup`)", file=sys.stderr
        )
        return 2
    # A SIGTERM (from a CI timeout, say) unwinds through the finally blocks like Ctrl-C does,
    # so servers are stopped and temporary directories removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    info = machine_info()
    load_before = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory(prefix="tandem-bench-") as tmp:
        # Rounds interleave the servers (A, B, A, B...) so that a busy spell on a shared
        # machine does not land on one server only.
        for round_ in range(1, args.repeat + 1):
            for key in args.servers:
                label = SERVER_LABELS[key] + (f" #{round_}" if args.repeat > 1 else "")
                workdir = Path(tmp) / f"{key}-{round_}"
                workdir.mkdir()
                log(f"{label}: scenario {args.scenario}")
                try:
                    if args.scenario == "open":
                        result = open_scenario(key, args, workdir)
                    else:
                        result = load_scenario(key, args, workdir)
                except (RuntimeError, OSError, httpx.HTTPError, subprocess.SubprocessError) as exc:
                    log(f"{label} failed: {exc}")
                    result = {"error": str(exc)[:300]}
                    if isinstance(exc, ServerFailed):
                        result["server_log_tail"] = exc.log_tail
                result["server"] = label
                results.append(result)
                if args.logs:  # keep the server's log and the clients' stderr past cleanup
                    args.logs.mkdir(parents=True, exist_ok=True)
                    for path in workdir.glob("*.log"):
                        shutil.copy(path, args.logs / f"{key}-{round_}-{path.name}")
                    for path in workdir.glob("*.err"):
                        shutil.copy(path, args.logs / f"{key}-{round_}-{path.name}")

    print(f"## Scenario `{args.scenario}`\n")
    print("Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()) + "\n")
    if load_before > 0.5 * len(os.sched_getaffinity(0)):
        print(
            f"**Warning:** the machine was busy (1-minute load average {load_before:.1f} on "
            f"{len(os.sched_getaffinity(0))} CPUs when the run began): expect noisy tails.\n"
        )
    if args.scenario == "open":
        print(
            f"Plan of {args.edits} edits, {args.runs} newcomers timed one after the other; "
            f"clients offer permessage-deflate: {args.deflate}.\n"
        )
        print(open_report(results))
    else:
        print(
            f"{args.plans} plan(s) × {args.clients} clients, {args.rate} edits/s and "
            f"{args.awareness_rate} cursor moves/s per client; {args.warmup:g} s warmup, "
            f"{args.seconds:g} s measured; clients offer permessage-deflate: {args.deflate}"
            + (f"; each plan preloaded with {args.preload} edits" if args.preload else "")
            + (f"; Tandem with {', '.join(args.tandem_env)}" if args.tandem_env else "")
            + ".\n"
        )
        print(load_report(results))
    for r in results:
        if r.get("preload_settle_seconds") is not None or (args.preload and "error" not in r):
            settle = r.get("preload_settle_seconds")
            took = f"{settle:g} s" if settle is not None else "over 300 s"
            print(f"\n{r['server']}: busy for {took} after the preload, before the load began")
        if r.get("timeline"):
            worst = sorted(sorted(r["timeline"], key=lambda bin_: -bin_[1])[:10])
            spikes = ", ".join(f"{t:g} s: {ms:.0f} ms" for t, ms in worst)
            print(
                f"\n{r['server']}: slowest 250 ms stretches (send time into the window): {spikes}"
            )
        if r.get("server_log_tail"):
            print(f"\n{r['server']} failed; the end of its log:\n")
            print("```\n" + r["server_log_tail"] + "\n```")
        problems = r.get("server_problems") or []
        if problems:
            print(f"\n{r['server']} logged {len(problems)} warning/error lines; first ones:\n")
            print("```\n" + "\n".join(problems[:8]) + "\n```")
    if args.json:
        args.json.write_text(
            json.dumps({"machine": info, "args": _jsonable(args), "results": results}, indent=2)
        )
    failed = any(r.get("error") for r in results)
    return 1 if failed else 0


def _jsonable(args: argparse.Namespace) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


if __name__ == "__main__":
    raise SystemExit(main())

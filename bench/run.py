"""Benchmark Tandem against the stock y-websocket server and Hocuspocus, in memory and with the
persistence a user would pick, with the same load, in one run of interleaved rounds.

    .venv/bin/python bench/run.py                          # own paragraphs: 1 plan x 50 clients
    .venv/bin/python bench/run.py --scenario shared        # 50 clients in one paragraph
    .venv/bin/python bench/run.py --scenario many          # 10 plans x 10 clients
    .venv/bin/python bench/run.py --scenario rooms         # 1,000 plans x 2 clients, 0.1 edit/s
    .venv/bin/python bench/run.py --scenario open          # open a ~1 MB plan, cold and warm
    .venv/bin/python bench/run.py --scenario durability    # kill -9 mid-edit: lost edits
    .venv/bin/python bench/run.py --scenario all --repeat 3

For each scenario, round and server in turn: start the server fresh (Tandem on a temporary data
directory, with a user, an API token and plans made through its CLI and API), drive it with the
Node clients of bench/loadgen.mjs, bench/open_plan.mjs or bench/durability.mjs, sample its CPU
time and RSS from /proc every 100 ms and its PSS every 500 ms, read its peak RSS over the load
(VmHWM, reset before the load through /proc/PID/clear_refs; PSS has no high-water mark, so its
peak is the largest sample), stop it. Then print Markdown tables. Memory is summed over the
server's process tree (Tandem's includes its worker child): RSS counts a page that the server
and its worker share (copy-on-write, after a fork) once in each, PSS divides it between them,
so summed PSS is what the machine really pays. Start-up memory is taken once the server answers
and, for Tandem, once its worker follows the log. Only 127.0.0.1 is ever
contacted; every step has a timeout; servers are started in their own process groups and killed
as groups, and temporary directories (and the optional PostgreSQL database) are removed,
whatever happens.
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
# `python -m server` from the repository root: the working tree's code, whichever checkout the
# virtualenv's editable install points at.
PYTHON = ROOT / ".venv" / "bin" / "python"
TANDEM = [str(PYTHON), "-m", "server"]
STOCK_SERVER = ROOT / "node_modules" / "@y" / "websocket-server" / "src" / "server.js"
STOCK_DEFLATE_SERVER = ROOT / "bench" / "stock_deflate_server.mjs"
HOCUSPOCUS_SERVER = ROOT / "bench" / "hocuspocus_server.mjs"
METRICS_TOKEN = "bench-metrics-token"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"

SCENARIOS: dict[str, dict] = {
    # What Tandem is for: one plan, a whole account team and customer team in it at once, each
    # typing in their own paragraph.
    "own": {"plans": 1, "clients": 50, "rate": 1.0},
    # The same people all fixing one paragraph (a table row, a sentence) during a call.
    "shared": {"plans": 1, "clients": 50, "rate": 1.0, "shared": True},
    # Many smaller plans open at the same time on one server.
    "many": {"plans": 10, "clients": 10, "rate": 1.0},
    # Many rooms per process: 1,000 plans open, two people each, editing now and then. Clients
    # connect 50 at a time (Tandem lets 100 sockets authenticate at once: at 100 a batch, on a
    # busy machine, late sockets and the provider's reconnects went past it and got 4429), one
    # per plan first, then the second of each, so that memory per room and per connection can
    # be told apart.
    "rooms": {
        "plans": 1000,
        "clients": 2,
        "rate": 0.1,
        "awareness_rate": 0.05,
        "waves": 2,
        "connect_batch": 50,
        "storm_timeout": 300,
    },
    "open": {},
    # Kill -9 while 5 clients type 20 edits/s each, restart on the same data: lost edits.
    "durability": {"plans": 1, "clients": 5, "rate": 20.0},
}
LOAD_SCENARIOS = ("own", "shared", "many", "rooms")
ALL_SCENARIOS = ("own", "shared", "many", "rooms", "open", "durability")
# Option defaults a scenario may override (None on the command line: take the scenario's).
OPTION_DEFAULTS = {
    "awareness_rate": 0.5,
    "shared": False,
    "waves": 1,
    "connect_batch": 0,
    "storm_timeout": 60.0,
}

SERVER_LABELS = {
    "tandem": "Tandem (SQLite)",
    "tandem-pg": "Tandem (PostgreSQL)",
    "stock": "@y/websocket-server (memory)",
    "stock-leveldb": "@y/websocket-server + LevelDB",
    "hocuspocus": "Hocuspocus (memory)",
    "hocuspocus-sqlite": "Hocuspocus + SQLite",
    "stock-deflate": "@y/websocket-server + deflate (memory)",
}
DEFAULT_SERVERS = "stock,stock-leveldb,hocuspocus,hocuspocus-sqlite,tandem"

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
        "y-leveldb": _npm_version("y-leveldb"),
        "@hocuspocus/server": _npm_version("@hocuspocus/server"),
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


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _pss_kib(pid: int) -> int:
    """Proportional set size: each resident page divided by the number of processes mapping
    it, so a page that a server shares with its worker (forked, copy-on-write) counts once over
    the two, where RSS counts it in each."""
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def memory(pid: int) -> dict[str, float]:
    """Resident size, high-water mark (VmHWM) and PSS of a process tree, in MB, each summed
    over its processes (for a tree of several, the sum of peaks is an upper bound of the peak;
    summed RSS counts twice what two processes share, summed PSS counts it once: what the
    machine really pays)."""
    rss = hwm = pss = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError, ValueError):
            rss += _status_kib(p, "VmRSS")
            hwm += _status_kib(p, "VmHWM")
            pss += _pss_kib(p)
    return {
        "rss_mb": round(rss / 1024, 1),
        "hwm_mb": round(hwm / 1024, 1),
        "pss_mb": round(pss / 1024, 1),
    }


def reset_peak(pid: int) -> bool:
    """Restart VmHWM from the current RSS for every process of the tree (clear_refs "5")."""
    done = True
    for p in _tree(pid):
        try:
            Path(f"/proc/{p}/clear_refs").write_text("5")
        except OSError:
            done = False
    return done


class Sampler:
    """CPU time and RSS of a process tree every ``interval`` seconds, and its PSS every
    ``pss_every`` samples (reading smaps_rollup walks the page tables under the process's
    memory lock, so less often), in a thread."""

    def __init__(self, pid: int, interval: float = 0.1, pss_every: int = 5) -> None:
        self.pid = pid
        self.interval = interval
        self.pss_every = pss_every
        # (monotonic, cpu seconds, rss bytes, machine busy jiffies, machine total jiffies)
        self.samples: list[tuple[float, float, int, int, int]] = []
        self.pss_kib: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        tick = 0
        while not self._stop.is_set():
            cpu, rss, pss = 0.0, 0, 0
            with_pss = tick % self.pss_every == 0
            tick += 1
            for pid in _tree(self.pid):
                with contextlib.suppress(OSError, ValueError):
                    cpu += _cpu_seconds(pid)
                    rss += _rss_bytes(pid)
                    if with_pss:
                        pss += _pss_kib(pid)
            if rss:
                self.samples.append((time.monotonic(), cpu, rss, *_machine_ticks()))
            if pss:
                self.pss_kib.append(pss)
            self._stop.wait(self.interval)

    @property
    def peak_pss_mb(self) -> float | None:
        """The largest PSS sampled (PSS has no high-water mark of its own)."""
        return round(max(self.pss_kib) / 1024, 1) if self.pss_kib else None

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


class TablesLag:
    """How far Tandem's materialised tables are behind its update log, from its /metrics
    (``tandem_worker_lag_seconds``: how long the oldest update not yet in the tables has
    waited) every ``interval`` s, in a thread; nothing for a server without those figures."""

    def __init__(self, server: Server, interval: float = 1.0) -> None:
        self.server = server
        self.interval = interval
        self.samples: list[tuple[float, float, float]] = []  # (monotonic, seconds, updates)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TablesLag:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _read(self) -> tuple[float, float] | None:
        m = self.server.metrics()
        if not m or "tandem_worker_lag_seconds" not in m:
            return None
        return m["tandem_worker_lag_seconds"], m.get("tandem_worker_lag_updates", 0.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            got = self._read()
            if got is None:
                return  # not Tandem, or a Tandem without the figures: nothing to follow
            self.samples.append((time.monotonic(), *got))
            self._stop.wait(self.interval)

    def worst(self, start: float | None, end: float | None) -> float | None:
        """The longest an update had waited for the tables, sampled within [start, end]."""
        if start is None or end is None:
            return None
        seen = [lag for t, lag, _ in self.samples if start <= t <= end]
        return round(max(seen), 1) if seen else None

    def caught_up(self, since: float | None, timeout: float = 60.0) -> float | None:
        """Seconds from ``since`` (the end of the edits) until no update waits for the tables,
        polled now until then (None: not Tandem, or not within ``timeout``)."""
        if since is None or not self.samples:
            return None
        # Sampled while the clients drained and settled, or else polled from now on.
        done = [t for t, _, updates in self.samples if t >= since and updates == 0]
        if done:
            return round(done[0] - since, 1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self._read()
            if got is None:
                return None
            if got[1] == 0:
                return round(max(0.0, time.monotonic() - since), 1)
            time.sleep(0.1)
        return None


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
    token = ""  # the stock server and Hocuspocus (no auth hook) ignore the token
    protocol = "y-websocket"  # what bench/clients.mjs speaks to it
    persistent = False  # keeps documents across a restart (open: cold; durability)
    keeps_unattended = True  # keeps a document no client has open (open: builds, then opens)

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.ready_url = ""
        self.log_path = workdir / f"{self.key}.log"
        self.startup: dict[str, float] = {}  # memory right after it answered, before any client

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
        self.started()
        self.startup = memory(self.proc.pid)

    def started(self) -> None:
        """Wait, after it answers, until the server is all there (Tandem: its worker)."""

    def kill(self) -> None:
        """SIGKILL the server's process group, as a crash or the OOM killer would."""
        if self.proc is not None:
            _kill_group(self.proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
            self.proc = None

    def metrics(self) -> dict[str, float] | None:
        """The server's own figures (Tandem's /metrics), if it has any."""
        return None

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


class StockLevelDB(Stock):
    """The stock server with its own persistence: every update stored in LevelDB (y-leveldb)
    as it arrives, in a temporary directory."""

    key = "stock-leveldb"
    persistent = True

    def command(self) -> tuple[list[str], dict[str, str], str]:
        argv, env, ready = super().command()
        return argv, {**env, "YPERSISTENCE": str(self.workdir / "leveldb")}, ready


class Hocuspocus(Server):
    """Hocuspocus 3 with its defaults, documents in memory (bench/hocuspocus_server.mjs)."""

    key = "hocuspocus"
    protocol = "hocuspocus"
    # It unloads a document as its last client leaves; in memory, that is the end of it.
    keeps_unattended = False

    def command(self) -> tuple[list[str], dict[str, str], str]:
        env = {"HOST": "127.0.0.1", "PORT": str(self.port)}
        return ["node", str(HOCUSPOCUS_SERVER)], env, f"http://127.0.0.1:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def create_plans(self, n: int) -> list[str]:
        prefix = uuid.uuid4().hex[:8]
        return [f"bench-{prefix}-{i}" for i in range(n)]


class HocuspocusSQLite(Hocuspocus):
    """Hocuspocus with its SQLite extension (a file in a temporary directory): it stores the
    whole document after its debounce (2 s after the last change, at most every 10 s)."""

    key = "hocuspocus-sqlite"
    persistent = True
    keeps_unattended = True  # stored, and loaded again

    def command(self) -> tuple[list[str], dict[str, str], str]:
        argv, env, ready = super().command()
        return argv, {**env, "SQLITE": str(self.workdir / "hocuspocus.sqlite")}, ready


class StockDeflate(Stock):
    """Control: the same stock server code, behind a ws server that accepts permessage-deflate."""

    key = "stock-deflate"

    def command(self) -> tuple[list[str], dict[str, str], str]:
        env = {"HOST": "127.0.0.1", "PORT": str(self.port)}
        return ["node", str(STOCK_DEFLATE_SERVER)], env, f"http://127.0.0.1:{self.port}/"


class Tandem(Server):
    """Tandem on a fresh data directory, with a user, an API token and plans made as users do."""

    key = "tandem"
    persistent = True

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
            # Its event-loop lag, read at the edges of the measured window.
            "TANDEM_METRICS_TOKEN": METRICS_TOKEN,
            **TANDEM_EXTRA_ENV,
        }
        self._cli(["users", "create", "bench@example.com", "--name", "Bench"], "password123\n")
        self.token = self._cli(["tokens", "create", "bench@example.com"]).strip().splitlines()[0]

    def _create_database(self) -> str:
        return f"sqlite:///{self.data_dir / 'tandem.db'}"

    def started(self) -> None:
        # Its worker child may answer later than the server (a fresh interpreter takes about
        # half a second to import): start-up memory is taken once it follows the log.
        if self.env.get("TANDEM_WORKER", "process") != "process":
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if re.search(r"worker \d+ following the update log", self.log_text()):
                return
            time.sleep(0.05)

    def _cli(self, args: list[str], stdin: str | None = None) -> str:
        done = subprocess.run(
            [*TANDEM, *args],
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
        argv = [*TANDEM, "serve", "--port", str(self.port)]
        return argv, self.env, f"{self.http}/healthz"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/plans"

    def metrics(self) -> dict[str, float] | None:
        from prometheus_client.parser import text_string_to_metric_families

        try:
            r = httpx.get(
                f"{self.http}/metrics",
                headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                timeout=5,
            )
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None  # a server from before /metrics
        out = {}
        for family in text_string_to_metric_families(r.text):
            for sample in family.samples:
                le = sample.labels.get("le")
                out[sample.name + (f"[{le}]" if le else "")] = sample.value
        return out

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
    "stock-leveldb": StockLevelDB,
    "hocuspocus": Hocuspocus,
    "hocuspocus-sqlite": HocuspocusSQLite,
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
        startup = dict(server.startup)
        log(f"{server.label}: making {args.plans} plan(s)")
        plans = server.create_plans(args.plans)
        for plan in plans if args.preload else []:
            # Start from a big plan rather than an empty one (what a plan looks like after
            # months of use): every sync and every checkpoint then carries that weight.
            log(f"{server.label}: preloading {args.preload} edits into {plan}")
            build = ["bench/open_plan.mjs", "build", "--url", server.ws_url, "--plan", plan]
            build += ["--token", server.token, "--edits", str(args.preload)]
            build += ["--protocol", server.protocol]
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
            "--protocol", server.protocol,
            "--shared", "on" if args.shared else "off",
            "--waves", str(args.waves),
            "--connect-batch", str(args.connect_batch),
        ]  # fmt: skip
        budget = args.storm_timeout + args.warmup + args.seconds + args.drain + 2 * args.settle
        # The load's peak: VmHWM restarted from here (the plans are made, no client yet).
        before_load = memory(server.pid)
        peak_reset = reset_peak(server.pid)
        rss_at: dict[str, float] = {}  # RSS at phase lines (rooms, connections...)
        pss_at: dict[str, float] = {}  # and PSS
        metrics_at: dict[str, dict[str, float] | None] = {}

        def on_event(event: dict) -> None:
            _progress(server)(event)
            phase = event.get("phase")
            if event.get("event") != "phase" or phase is None:
                return
            name = f"wave{event.get('wave')}" if phase == "wave" else phase
            at = memory(server.pid)
            rss_at[name], pss_at[name] = at["rss_mb"], at["pss_mb"]
            if phase in ("measure-start", "measure-end"):
                metrics_at[phase] = server.metrics()

        with (
            Sampler(server.pid) as sampler,
            Prober(server.ready_url) as prober,
            TablesLag(server) as tables,
        ):
            events = run_node(argv, budget + 60, workdir / f"loadgen-{key}.err", on_event=on_event)
        load_memory = memory(server.pid)
        stamps = {e.get("phase"): t for t, e in events if e.get("event") == "phase"}
        # The materialiser keeping up: the longest an update waited for the tables in the
        # window, and how long after the last measured edit the tables held every update.
        tables_lag = {
            "worst_s": tables.worst(stamps.get("measure-start"), stamps.get("measure-end")),
            "caught_up_s": tables.caught_up(stamps.get("measure-end")),
        }
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
        memory={
            "startup_rss_mb": startup.get("rss_mb"),
            "startup_hwm_mb": startup.get("hwm_mb"),
            "startup_pss_mb": startup.get("pss_mb"),
            "before_load_rss_mb": before_load["rss_mb"],
            "before_load_pss_mb": before_load["pss_mb"],
            "load_peak_mb": load_memory["hwm_mb"] if peak_reset else None,
            "load_peak_pss_mb": sampler.peak_pss_mb,
            "after_load_rss_mb": load_memory["rss_mb"],
            "after_load_pss_mb": load_memory["pss_mb"],
            "rss_at_phase_mb": rss_at,
            "pss_at_phase_mb": pss_at,
            **_per_room(rss_at, len(plans), args.clients, args.waves),
            **{
                f"pss_{k}": v
                for k, v in _per_room(pss_at, len(plans), args.clients, args.waves).items()
            },
        },
        lag=lag_window(metrics_at.get("measure-start"), metrics_at.get("measure-end")),
        # How long each group commit of the update log took (its transaction, the wait for
        # SQLite's write lock and the fsync included): what an edit waits for before it is sent.
        commit=lag_window(
            metrics_at.get("measure-start"),
            metrics_at.get("measure-end"),
            "tandem_commit_seconds_bucket",
        ),
        tables_lag=tables_lag,
        server_exit_code=exit_code,
        server_problems=server.problems(),
        server_log_tail=server.log_tail() if result.get("error") else None,
    )
    return result


def _per_room(rss_at: dict[str, float], plans: int, clients: int, waves: int) -> dict:
    """Memory per open room and per connection, from RSS before any client, after one client
    per plan (wave 1: every room open, one connection each), and after all (the rest are
    connections only): per connection = growth in wave 2 / its connections; per room = growth
    in wave 1 / plans - one connection."""
    if waves < 2 or clients < 2 or not all(k in rss_at for k in ("storm", "wave1", "storm-done")):
        return {}
    per_conn = (rss_at["storm-done"] - rss_at["wave1"]) * 1024 / (plans * (clients - 1))
    per_room = (rss_at["wave1"] - rss_at["storm"]) * 1024 / plans - per_conn
    return {"per_connection_kb": round(per_conn, 1), "per_room_kb": round(per_room, 1)}


def lag_window(
    before: dict[str, float] | None,
    after: dict[str, float] | None,
    name: str = "tandem_event_loop_lag_seconds_bucket",
) -> dict | None:
    """Tandem's event-loop lag (or another of its histograms, ``name``) over the measured
    window, from two scrapes of its histogram: p50/p99 interpolated within buckets (as
    Prometheus' histogram_quantile), the max since start-up (the lag monitor keeps one), and
    the number of samples."""
    if not before or not after:
        return None
    bounds = sorted(
        (float(k[len(name) + 1 : -1]), after[k] - before.get(k, 0.0))
        for k in after
        if k.startswith(name + "[")
    )
    total = bounds[-1][1] if bounds else 0
    if total <= 0:
        return None

    def quantile(q: float) -> float:
        rank, lower, below = q * total, 0.0, 0.0
        for bound, cumulative in bounds:
            if cumulative >= rank:
                if bound == float("inf"):
                    return lower * 1000
                share = (rank - below) / (cumulative - below) if cumulative > below else 1.0
                return (lower + (bound - lower) * share) * 1000
            lower, below = bound, cumulative
        return lower * 1000

    return {
        "p50_ms": round(quantile(0.5), 2),
        "p99_ms": round(quantile(0.99), 2),
        "max_ms": round(after.get("tandem_event_loop_lag_max_seconds", 0.0) * 1000, 1)
        if name == "tandem_event_loop_lag_seconds_bucket"
        else None,
        "samples": int(total),
    }


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
    if not SERVERS[key].keeps_unattended:
        return {"skipped": "drops a document from memory when its last client leaves"}
    with server_under_test(key, workdir) as server:
        (plan,) = server.create_plans(1)

        def common() -> list[str]:  # after a restart the server listens on a new port
            return [
                *("--url", server.ws_url, "--plan", plan, "--token", server.token),
                *("--deflate", args.deflate, "--edits", str(args.edits)),
                *("--protocol", server.protocol),
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
        if server.persistent:
            if isinstance(server, Tandem):
                # Forwarding happens only after the commit, so the watcher holding every edit
                # already means they are durable; count the log rows anyway, independently.
                result["persisted_updates"] = _wait_persisted(server, plan, args.edits)
                result["database_bytes"] = server.database_bytes()
            else:
                # Give the others' stores time to write (Hocuspocus debounces for 2 s) before
                # the clean stop, so that the restarted server has the whole plan.
                time.sleep(5)
            t = time.monotonic()
            result["shutdown_exit_code"] = server.stop()
            result["shutdown_seconds"] = round(time.monotonic() - t, 2)
            server.start()  # same data dir and database: the room is loaded cold on first join
            result["cold"] = True
        else:
            result["cold"] = False  # in memory: nothing to restart, the room is warm
        log(f"{server.label}: timing {args.runs} newcomers")
        opening = ["bench/open_plan.mjs", "open", *common(), "--runs", str(args.runs)]
        opening += ["--expect-clock", str(built.get("writerClock", 0))]
        result["startup"] = dict(server.startup)
        peak_reset = reset_peak(server.pid)
        with Sampler(server.pid) as sampler:
            opened = _last(run_node(opening, 600, err, on_event=_quiet))
        result["open"] = opened
        result["server_rss_peak_mb"] = sampler.peak_rss_mb
        result["open_peak_mb"] = memory(server.pid)["hwm_mb"] if peak_reset else None
        result["load_average"] = os.getloadavg()[0]
        if isinstance(server, Tandem):
            result["rooms_loaded"] = server.rooms_loaded()
        result["server_exit_code"] = server.stop()
        result["server_problems"] = server.problems()
        if "error" in opened:
            result["server_log_tail"] = server.log_tail()
    return result


def durability_scenario(key: str, args: argparse.Namespace, workdir: Path) -> dict:
    """Clients type fast; the server is killed with SIGKILL ``--kill-after`` seconds in and
    restarted on the same data; an edit some client had received from another (the server had
    forwarded it: someone saw it) and that is missing after the restart is lost."""
    err = workdir / f"durability-{key}.err"
    if not SERVERS[key].persistent:
        return {"skipped": "keeps documents in memory only"}
    with server_under_test(key, workdir) as server:
        (plan,) = server.create_plans(1)
        killer: list[threading.Timer] = []
        killed_at: list[float] = []

        def kill() -> None:
            killed_at.append(time.monotonic())
            server.kill()

        def on_event(event: dict) -> None:
            if event.get("phase") == "editing" and not killer:
                killer.append(threading.Timer(args.kill_after, kill))
                killer[0].start()

        common = ["--plan", plan, "--token", server.token, "--protocol", server.protocol]
        write = ["bench/durability.mjs", "write", "--url", server.ws_url, *common]
        write += ["--clients", str(args.clients), "--rate", str(args.rate)]
        write += ["--seconds", str(args.kill_after + 10)]
        try:
            written = _last(run_node(write, args.kill_after + 90, err, on_event=on_event))
        finally:
            for timer in killer:
                timer.cancel()
                timer.join()
        if "seen" not in written or not killed_at:
            return {
                "server": server.label,
                "error": written.get("error") or "the clients gave no result",
                "server_log_tail": server.log_tail(),
            }
        markers = workdir / "seen.json"
        markers.write_text(json.dumps(written["seen"]))
        server.start()  # the same data directory, database or file
        check = ["bench/durability.mjs", "check", "--url", server.ws_url, *common]
        checked = _last(run_node([*check, "--markers", str(markers)], 90, err, on_event=_quiet))
        if "lost" not in checked:
            return {
                "server": server.label,
                "error": checked.get("error", "the check gave no result"),
            }
        return {
            "server": server.label,
            "sent": written["sent"],
            "seen": len(written["seen"]),
            "lost": checked["lost"],
            "missing_sample": checked["missing"][:10],
            "server_problems": server.problems(),
        }


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
        if r.get("skipped"):
            rows.append([r["server"], f"skipped: {r['skipped']}"])
            continue
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
                _fmt(r.get("open_peak_mb"), 0),
                _fmt(r["load_average"]),
            ]
        )
    return _table(
        ["server", "plan", "state bytes", "bytes to sync", "1st open ms", "median of all ms",
         "median warm ms", "each run ms", "build edits/s", "log rows", "database MB",
         "peak RSS MB (sampled)", "peak RSS in opens (VmHWM) MB", "load avg"],
        rows,
    )  # fmt: skip


def _by_server(results: list[dict]) -> dict[str, list[dict]]:
    """Results grouped by server key, in the order the servers ran, rounds in order."""
    out: dict[str, list[dict]] = {}
    for r in results:
        out.setdefault(r["key"], []).append(r)
    return out


def _tables_lag(lags: list[dict]) -> str:
    """Each round's worst wait for the tables, then how long they took to catch up."""
    if not any(lag.get("worst_s") is not None for lag in lags):
        return "–"
    worst = _rounds([lag.get("worst_s") for lag in lags])
    return f"{worst}; caught up in {_rounds([lag.get('caught_up_s') for lag in lags])}"


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _rounds(values: list[float | None], digits: int = 1) -> str:
    return " / ".join(_fmt(v, digits) for v in values)


def summary_report(results: list[dict]) -> str:
    """One row per server over the rounds: propagation p50/p99 of each round and their
    medians, the worst loss, Tandem's event-loop lag p99 beside its p99, memory."""
    rows = []
    for key, rs in _by_server(results).items():
        ok = [r for r in rs if not r.get("error")]
        failed = len(rs) - len(ok)
        p50 = [r["latencyMs"]["p50"] for r in ok]
        p99 = [r["latencyMs"]["p99"] for r in ok]
        lag = [(r.get("lag") or {}).get("p99_ms") for r in ok]
        commit = [(r.get("commit") or {}).get("p99_ms") for r in ok]
        mem = [r.get("memory") or {} for r in ok]
        loss = max((r["lossPercent"] or 0 for r in ok), default=None)
        rows.append(
            [
                SERVER_LABELS[key] + (f" (**{failed} failed**)" if failed else ""),
                _rounds(p50),
                _rounds(p99),
                _fmt(_median(p50)),
                _fmt(_median(p99)),
                _fmt(loss, 2),
                (_rounds(lag, 2) + f" (median {_fmt(_median(lag), 2)})")
                if any(v is not None for v in lag)
                else "–",
                _rounds(commit, 2) if any(v is not None for v in commit) else "–",
                _fmt(_median([m.get("load_peak_mb") for m in mem]), 0),
                _fmt(_median([m.get("load_peak_pss_mb") for m in mem]), 0),
                f"{_fmt(_median([m.get('startup_rss_mb') for m in mem]), 0)} / "
                f"{_fmt(_median([m.get('startup_hwm_mb') for m in mem]), 0)} / "
                f"{_fmt(_median([m.get('startup_pss_mb') for m in mem]), 0)}",
                _fmt(_median([r.get("server_cpu_percent") for r in ok]), 0),
                _tables_lag([r.get("tables_lag") or {} for r in ok]),
                _fmt(all(r["converged"] for r in ok) if ok else None),
            ]
        )
    return _table(
        ["server", "p50 ms per round", "p99 ms per round", "median p50 ms", "median p99 ms",
         "loss % (worst)", "event-loop lag p99 ms per round", "log commit p99 ms per round",
         "peak RSS in load MB (median)", "peak PSS in load MB (median)",
         "start-up RSS / HWM / PSS MB", "server CPU %",
         "tables behind: worst in window; caught up after the last edit in, s", "converged"],
        rows,
    )  # fmt: skip


def memory_report(results: list[dict]) -> str:
    """Memory at each step, medians over the rounds; per room and per connection when the
    clients came in two waves (see _per_room)."""
    rows = []
    for key, rs in _by_server(results).items():
        mem = [r.get("memory") or {} for r in rs if not r.get("error")]

        def med(field: str, mem: list[dict] = mem) -> float | None:
            return _median([m.get(field) for m in mem])

        at = [m.get("rss_at_phase_mb") or {} for m in mem]
        rows.append(
            [
                SERVER_LABELS[key],
                _fmt(med("startup_rss_mb"), 1),
                _fmt(med("startup_hwm_mb"), 1),
                _fmt(med("before_load_rss_mb"), 1),
                _fmt(_median([a.get("wave1") for a in at]), 1),
                _fmt(_median([a.get("storm-done") for a in at]), 1),
                _fmt(med("load_peak_mb"), 1),
                _fmt(med("after_load_rss_mb"), 1),
                _fmt(med("per_room_kb"), 1),
                _fmt(med("per_connection_kb"), 1),
                _fmt(med("startup_pss_mb"), 1),
                _fmt(med("load_peak_pss_mb"), 1),
                _fmt(med("pss_per_room_kb"), 1),
                _fmt(med("pss_per_connection_kb"), 1),
            ]
        )
    return _table(
        ["server", "RSS after start-up MB", "VmHWM at start-up MB", "RSS before load MB",
         "RSS one client per plan MB", "RSS all connected MB", "peak RSS in load (VmHWM) MB",
         "RSS after load MB", "per room KB", "per connection KB", "PSS after start-up MB",
         "peak PSS in load (sampled) MB", "PSS per room KB", "PSS per connection KB"],
        rows,
    )  # fmt: skip


def durability_report(results: list[dict]) -> str:
    rows = []
    for key, rs in _by_server(results).items():
        if all(r.get("skipped") for r in rs):
            continue
        done = [r for r in rs if not r.get("error") and not r.get("skipped")]
        errors = [r["error"] for r in rs if r.get("error")]
        rows.append(
            [
                SERVER_LABELS[key],
                " / ".join(f"{r['lost']} of {r['seen']}" for r in done) or "–",
                str(sum(r["lost"] for r in done)),
                f"{sum(1 for r in done if r['lost'])} of {len(done)}",
                " / ".join(str(r["sent"]) for r in done) or "–",
                "; ".join(e[:80] for e in errors) or "none",
            ]
        )
    return _table(
        ["server", "lost of seen, per run", "lost in all", "runs with a loss",
         "edits sent per run", "failed runs"],
        rows,
    )  # fmt: skip


# Main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--scenario",
        default="own",
        help=f"comma-separated, in this order, or `all` ({', '.join(ALL_SCENARIOS)}); "
        "`target` is `own` (default own)",
    )
    p.add_argument("--plans", type=int, help="plans (scenario default)")
    p.add_argument("--clients", type=int, help="clients per plan (scenario default)")
    p.add_argument("--rate", type=float, help="edits per second per client (scenario default)")
    p.add_argument("--awareness-rate", type=float, help="cursor moves/s per client (0.5)")
    p.add_argument("--seconds", type=float, default=30, help="measured window (default 30)")
    p.add_argument("--warmup", type=float, default=5, help="editing before the window (default 5)")
    p.add_argument("--drain", type=float, default=15, help="max wait for late deliveries")
    p.add_argument("--settle", type=float, default=15, help="max wait for convergence")
    p.add_argument("--storm-timeout", type=float, help="max wait for all to sync (60)")
    p.add_argument("--waves", type=int, help="2: one client per plan first, then the rest")
    p.add_argument("--connect-batch", type=int, help="clients connecting at a time (0: all)")
    p.add_argument(
        "--kill-after", type=float, default=3, help="durability: seconds of editing before SIGKILL"
    )
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
        default=DEFAULT_SERVERS,
        help=f"comma-separated, run in this order within a round: any of {', '.join(SERVERS)} "
        f"(default {DEFAULT_SERVERS})",
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
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE[,KEY=VALUE]",
        help="a Tandem with these TANDEM_* settings, run as server `tandem+NAME` beside the "
        "others (repeatable): an A/B of two settings in one run, interleaved",
    )
    p.add_argument("--logs", type=Path, help="copy server logs and client stderr to this dir")
    p.add_argument("--json", type=Path, help="also write the raw results to this file")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.scenario.split(",") if n.strip()]
    names = (
        list(ALL_SCENARIOS) if names == ["all"] else ["own" if n == "target" else n for n in names]
    )
    unknown = set(names) - set(SCENARIOS)
    if unknown or not names:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))} (any of {', '.join(SCENARIOS)})")
    args.scenarios = names
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for setting in args.tandem_env:
        key, sep, value = setting.partition("=")
        if not sep or not key.startswith("TANDEM_"):
            p.error(f"--tandem-env wants TANDEM_KEY=VALUE, not {setting!r}")
        TANDEM_EXTRA_ENV[key] = value
    for spec in args.variant:
        name, sep, settings = spec.partition(":")
        env = dict(kv.partition("=")[::2] for kv in settings.split(",") if kv)
        if not sep or not name.isidentifier() or not env:
            p.error(f"--variant wants NAME:TANDEM_KEY=VALUE[,...], not {spec!r}")
        if not all(k.startswith("TANDEM_") for k in env):
            p.error(f"--variant {name}: every setting is a TANDEM_* one, not {spec!r}")
        add_variant(name, env)
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        p.error(f"unknown servers: {', '.join(sorted(unknown))}")
    return args


def add_variant(name: str, env: dict[str, str]) -> None:
    """Server ``tandem+name``: Tandem on SQLite with ``env`` over its settings."""
    key = f"tandem+{name}"

    class Variant(Tandem):
        def __init__(self, workdir: Path) -> None:
            super().__init__(workdir)
            self.env.update(env)

    Variant.key = key
    SERVERS[key] = Variant
    SERVER_LABELS[key] = f"Tandem {name} ({', '.join(f'{k}={v}' for k, v in env.items())})"


def for_scenario(args: argparse.Namespace, name: str) -> argparse.Namespace:
    """The options for one scenario: the command line's, else the scenario's, else defaults."""
    out = argparse.Namespace(**vars(args))
    out.scenario = name
    for option, value in {**OPTION_DEFAULTS, **SCENARIOS[name]}.items():
        if getattr(out, option, None) is None:
            setattr(out, option, value)
    return out


def run_scenario(args: argparse.Namespace, tmp: Path) -> list[dict]:
    """Every round of one scenario, the servers interleaved within each round (A, B, A, B...)
    so that a busy spell on a shared machine does not land on one server only."""
    results = []
    for round_ in range(1, args.repeat + 1):
        for key in args.servers:
            label = SERVER_LABELS[key] + (f" #{round_}" if args.repeat > 1 else "")
            workdir = tmp / f"{args.scenario}-{key}-{round_}"
            workdir.mkdir()
            log(f"{label}: scenario {args.scenario}")
            try:
                if args.scenario == "open":
                    result = open_scenario(key, args, workdir)
                elif args.scenario == "durability":
                    result = durability_scenario(key, args, workdir)
                else:
                    result = load_scenario(key, args, workdir)
            except (RuntimeError, OSError, httpx.HTTPError, subprocess.SubprocessError) as exc:
                log(f"{label} failed: {exc}")
                result = {"error": str(exc)[:300]}
                if isinstance(exc, ServerFailed):
                    result["server_log_tail"] = exc.log_tail
            result.update(server=label, key=key, round=round_)
            results.append(result)
            if args.logs:  # keep the server's log and the clients' stderr past cleanup
                args.logs.mkdir(parents=True, exist_ok=True)
                for path in [*workdir.glob("*.log"), *workdir.glob("*.err")]:
                    shutil.copy(path, args.logs / f"{args.scenario}-{key}-{round_}-{path.name}")
            shutil.rmtree(workdir, ignore_errors=True)  # big plans, LevelDB, 1,000 rooms
    return results


def report(args: argparse.Namespace, results: list[dict]) -> None:
    print(f"## Scenario `{args.scenario}`\n")
    rounds = f"{args.repeat} round(s), servers interleaved within each"
    if args.scenario == "open":
        print(
            f"Plan of {args.edits} edits, {args.runs} newcomers timed one after the other; "
            f"clients offer permessage-deflate: {args.deflate}; {rounds}.\n"
        )
        print(open_report(results))
    elif args.scenario == "durability":
        print(
            f"{args.clients} clients × {args.rate:g} edits/s in one plan, the server killed with "
            f"SIGKILL {args.kill_after:g} s after the editing began and restarted on the same "
            f"data; an edit is lost when some client had received it from another before the "
            f"kill and a newcomer does not find it after the restart; {rounds}. Servers that "
            f"keep documents in memory only are left out.\n"
        )
        print(durability_report(results))
    else:
        print(
            f"{args.plans} plan(s) × {args.clients} clients, {args.rate:g} edits/s and "
            f"{args.awareness_rate:g} cursor moves/s per client"
            + (", all typing into one shared paragraph" if args.shared else "")
            + f"; {args.warmup:g} s warmup, {args.seconds:g} s measured; {rounds}; clients "
            f"offer permessage-deflate: {args.deflate}"
            + (f"; each plan preloaded with {args.preload} edits" if args.preload else "")
            + (f"; Tandem with {', '.join(args.tandem_env)}" if args.tandem_env else "")
            + ".\n"
        )
        print(summary_report(results))
        print("\nMemory (medians over the rounds):\n")
        print(memory_report(results))
        print("\nEach round:\n")
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
    print()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("node") is None or not PYTHON.exists() or not STOCK_SERVER.exists():
        print("needs node, .venv and node_modules (run `make test-setup`)", file=sys.stderr)
        return 2
    # A SIGTERM (from a CI timeout, say) unwinds through the finally blocks like Ctrl-C does,
    # so servers are stopped and temporary directories removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    info = machine_info()
    load_before = os.getloadavg()[0]
    print("Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()) + "\n")
    if load_before > 0.5 * len(os.sched_getaffinity(0)):
        print(
            f"**Warning:** the machine was busy (1-minute load average {load_before:.1f} on "
            f"{len(os.sched_getaffinity(0))} CPUs when the run began): expect noisy tails.\n"
        )
    everything: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="tandem-bench-") as tmp:
        for name in args.scenarios:
            scenario = for_scenario(args, name)
            everything[name] = run_scenario(scenario, Path(tmp))
            report(scenario, everything[name])  # as each scenario ends: a long run shows progress
            sys.stdout.flush()
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": info, "args": _jsonable(args), "results": everything},
                indent=2,
                default=str,
            )
        )
    failed = any(r.get("error") for rs in everything.values() for r in rs)
    return 1 if failed else 0


def _jsonable(args: argparse.Namespace) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


if __name__ == "__main__":
    raise SystemExit(main())

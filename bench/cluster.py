"""Several server processes behind HAProxy (issue 14), run by hand:

    .venv/bin/python bench/cluster.py                      # every scenario, one round
    .venv/bin/python bench/cluster.py --scenario spread --rounds 3 --seconds 30
    .venv/bin/python bench/cluster.py --scenario rooms,failover --json out.json

The deployment is the tests' (tests/support/cluster.py): N `tandem serve` processes on one fresh
PostgreSQL database, a private Redis, Debian's HAProxy in front running docs/haproxy.cfg; every
client connects through the proxy.

- ``spread``: 50 clients of one plan, 1 edit/s each (bench/loadgen.mjs, as in bench/run.py's
  `own` scenario) on one process, then spread over 2 and over 3, in interleaved rounds. One
  process runs without Redis (the single-machine deployment), behind the same proxy.
  Propagation p50/p99 (send to receipt by every other client, one clock), loss, and the
  fan-out lag from the processes' /metrics (any histogram with "fanout" in its name).
- ``rooms``: 1,000 plans x 2 clients over 3 processes, 0.1 edit/s and 0.05 cursor moves/s per
  client: p99, and the memory (RSS) of each process with its worker child.
- ``failover``: 50 clients of one plan over 3 processes typing 1 edit/s (tests/js/
  cluster_clients.mjs); SIGKILL of one process; the time until every client it had is synced
  on another process, and until every client holds every edit again.

Figures go to stdout as Markdown tables; ``--json`` keeps every round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.cluster import Cluster, node_clients  # noqa: E402
from tests.support.servers import Database  # noqa: E402


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Bench:
    """A started cluster of ``size`` processes on a fresh database, with a user and a token."""

    def __init__(self, folder: Path, size: int, *, redis: bool = True) -> None:
        self.db = Database("postgresql", folder, at_head=True)
        env = {"TANDEM_LOG_LEVEL": "warning"}
        self.cluster = Cluster(folder / "cluster", self.db.url, size, env, with_redis=redis)

    def __enter__(self) -> Bench:
        try:
            self.cluster.start()
            srv = self.cluster.servers[0]
            srv.create_user("bench@example.com", "Bench")
            self.token = srv.create_token("bench@example.com")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.cluster.close()
        finally:
            self.db.drop()

    def plans(self, n: int) -> list[str]:
        out = []
        with httpx.Client(
            base_url=self.cluster.http,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        ) as http:
            for k in range(n):
                r = http.post("/api/plans", json={"title": f"Plan {k}", "customer": "Acme"})
                r.raise_for_status()
                out.append(r.json()["id"])
        return out

    def fanout_lag(self) -> dict[str, Any] | None:
        """Every process's fan-out histogram(s) added up: count and bucket-bound quantiles."""
        buckets: dict[float, float] = {}
        total = count = 0.0
        name = None
        for i in self.cluster.alive():
            for family in self.cluster.metrics(i).values():
                if "fanout" not in family.name or family.type != "histogram":
                    continue
                name = family.name
                for s in family.samples:
                    if s.name.endswith("_bucket"):
                        le = float(s.labels["le"])
                        buckets[le] = buckets.get(le, 0) + s.value
                    elif s.name.endswith("_sum"):
                        total += s.value
                    elif s.name.endswith("_count"):
                        count += s.value
        if name is None or not count:
            return None

        def quantile(q: float) -> float | None:
            for le in sorted(buckets):
                if buckets[le] >= q * count:
                    return le * 1000
            return None

        return {
            "metric": name,
            "count": count,
            "meanMs": total / count * 1000,
            "p50LeMs": quantile(0.5),
            "p99LeMs": quantile(0.99),
        }

    def memory(self) -> dict[str, float]:
        """MiB of RSS per process, its worker child included."""
        out = {}
        for i in self.cluster.alive():
            proc = self.cluster.servers[i].proc
            assert proc is not None
            out[self.cluster.name(i)] = sum(_rss(p) for p in _tree(proc.pid)) / 2**20
        return out


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:
            continue
        for child in children:
            pids += _tree(int(child))
    return pids


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def loadgen(
    b: Bench, plans: list[str], timeout: float, **options: Any
) -> tuple[dict, dict[str, Any]]:
    """bench/loadgen.mjs through the proxy: its "result" line, and what the processes held
    (sockets, memory) as the measured window opens, every client connected and editing."""
    args = ["node", str(ROOT / "bench" / "loadgen.mjs"), "--url", b.cluster.ws]
    args += ["--plans", ",".join(plans), "--token", b.token]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    during: dict[str, Any] = {}
    result = None
    with subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                event = json.loads(line)
                if event.get("phase") == "measure-start":
                    during = {"connections": b.cluster.connections(), "memoryMiB": b.memory()}
                elif event.get("event") == "result":
                    result = event
            stderr = proc.stderr.read() if proc.stderr else ""
        finally:
            timer.cancel()
    if result is None:
        raise RuntimeError(f"loadgen gave no result:\n{stderr[-3000:]}")
    return result, during


def spread(args: argparse.Namespace, tmp: Path) -> list[dict]:
    rows = []
    for r in range(args.rounds):
        for size in (1, 2, 3):
            log(f"spread: round {r + 1}, {size} process(es)")
            with Bench(tmp / f"spread-{r}-{size}", size, redis=size > 1) as b:
                (plan,) = b.plans(1)
                result, during = loadgen(
                    b,
                    [plan],
                    timeout=args.seconds + 300,
                    clients=50,
                    rate=1,
                    warmup=args.warmup,
                    seconds=args.seconds,
                )
                rows.append(
                    {
                        "round": r + 1,
                        "processes": size,
                        "latencyMs": result.get("latencyMs"),
                        "lossPercent": result.get("lossPercent"),
                        "duplicates": result.get("duplicates"),
                        "reconnects": result.get("reconnects"),
                        "converged": result.get("converged"),
                        "errors": result.get("errors"),
                        "fanoutLag": b.fanout_lag(),
                        **during,
                    }
                )
                log(f"  {json.dumps(rows[-1])}")
    return rows


def rooms(args: argparse.Namespace, tmp: Path) -> list[dict]:
    rows = []
    for r in range(args.rounds):
        log(f"rooms: round {r + 1}: {args.plans} plans x 2 clients over 3 processes")
        with Bench(tmp / f"rooms-{r}", 3) as b:
            before = b.memory()
            plans = b.plans(args.plans)
            result, during = loadgen(
                b,
                plans,
                timeout=args.seconds + 900,
                clients=2,
                rate=0.1,
                awareness_rate=0.05,
                warmup=args.warmup,
                seconds=args.seconds,
                waves=2,
                connect_batch=50,
                settle=60,
                storm_timeout=300,
            )
            rows.append(
                {
                    "round": r + 1,
                    "plans": len(plans),
                    "latencyMs": result.get("latencyMs"),
                    "lossPercent": result.get("lossPercent"),
                    "converged": result.get("converged"),
                    "storm": result.get("storm"),
                    "errors": result.get("errors"),
                    "memoryBeforeMiB": before,
                    "fanoutLag": b.fanout_lag(),
                    **during,
                }
            )
            log(f"  {json.dumps(rows[-1])}")
    return rows


def failover(args: argparse.Namespace, tmp: Path) -> list[dict]:
    rows = []
    for r in range(args.rounds):
        log(f"failover: round {r + 1}")
        with Bench(tmp / f"failover-{r}", 3) as b:
            (plan,) = b.plans(1)
            with node_clients(b.cluster.ws, plan, tmp / f"failover-{r}.log") as nc:
                ids = nc.open([b.token] * 50)
                servers = nc.synced(ids, timeout=120)
                nc.call("start", rate=1)
                time.sleep(args.warmup)  # typing before the kill, as in loadgen's warmup
                victim = 1
                orphans = [i for i, s in servers.items() if s == b.cluster.name(victim)]
                killed_at = time.monotonic()
                b.cluster.kill(victim)
                nc.call("waitServerChange", clients=orphans, timeout=120, **{"from": servers})
                resynced = time.monotonic() - killed_at
                nc.call("stop")
                nc.call("converge", timeout=120)
                converged = time.monotonic() - killed_at
                seen = set(nc.call("everSeen")["marks"])
                counts = nc.call("marks", client=ids[0])["counts"]
                rows.append(
                    {
                        "round": r + 1,
                        "orphans": len(orphans),
                        "resyncedSeconds": resynced,
                        "convergedSeconds": converged,
                        "edits": len(seen),
                        "lost": len(seen - set(counts)),
                        "doubled": sum(1 for n in counts.values() if n > 1),
                    }
                )
                log(f"  {json.dumps(rows[-1])}")
    return rows


def _med(values: list[Any]) -> str:
    values = [v for v in values if v is not None]
    return f"{statistics.median(values):.1f}" if values else "-"


def report(results: dict[str, list[dict]]) -> None:
    if "spread" in results:
        print("\n### 50 clients of one plan, 1 edit/s each, through HAProxy\n")
        print(
            "| processes | propagation p50 ms | p99 ms | loss % "
            "| fan-out lag p50 / p99 ms (bucket bound) | rounds |"
        )
        print("|---|---|---|---|---|---|")
        for size in (1, 2, 3):
            rs = [x for x in results["spread"] if x["processes"] == size]
            lags = [x["fanoutLag"] for x in rs if x["fanoutLag"]]
            lag = f"{_med([x['p50LeMs'] for x in lags])} / {_med([x['p99LeMs'] for x in lags])}"
            label = "1 (no Redis)" if size == 1 else str(size)
            print(
                f"| {label} | {_med([x['latencyMs']['p50'] for x in rs])} "
                f"| {_med([x['latencyMs']['p99'] for x in rs])} "
                f"| {_med([x['lossPercent'] for x in rs])} | {lag if lags else '-'} | {len(rs)} |"
            )
    if "rooms" in results:
        print(f"\n### {results['rooms'][-1]['plans']} plans x 2 clients over 3 processes\n")
        print(
            "| p50 ms | p99 ms | loss % "
            "| RSS per process, MiB (with its worker), idle -> loaded | rounds |"
        )
        print("|---|---|---|---|---|")
        rs = results["rooms"]
        last = rs[-1]
        mem = ", ".join(
            f"{last['memoryBeforeMiB'][k]:.0f} -> {v:.0f}"
            for k, v in last.get("memoryMiB", {}).items()
        )
        print(
            f"| {_med([x['latencyMs']['p50'] for x in rs])} "
            f"| {_med([x['latencyMs']['p99'] for x in rs])} "
            f"| {_med([x['lossPercent'] for x in rs])} | {mem} | {len(rs)} |"
        )
    if "failover" in results:
        print("\n### SIGKILL of one of 3 processes, 50 clients typing\n")
        print("| clients moved | all resynced, s | all converged, s | lost | doubled | rounds |")
        print("|---|---|---|---|---|---|")
        rs = results["failover"]
        print(
            f"| {_med([x['orphans'] for x in rs])} | {_med([x['resyncedSeconds'] for x in rs])} "
            f"| {_med([x['convergedSeconds'] for x in rs])} | {sum(x['lost'] for x in rs)} "
            f"| {sum(x['doubled'] for x in rs)} | {len(rs)} |"
        )


SCENARIOS = {"spread": spread, "rooms": rooms, "failover": failover}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scenario", default="spread,rooms,failover")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--seconds", type=float, default=30, help="measured window of loadgen")
    p.add_argument("--warmup", type=float, default=5)
    p.add_argument("--plans", type=int, default=1000, help="plans of the rooms scenario")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="tandem-cluster-bench-") as tmp:
        for name in args.scenario.split(","):
            results[name] = SCENARIOS[name](args, Path(tmp))
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())

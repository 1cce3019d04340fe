"""Operations figures on PostgreSQL (README, Operations):

- ``takeover``: from SIGKILL of the worker-lease holder (a ``tandem worker``) to the other
  worker holding the lease, three times, for a lease of ``--ttl`` seconds;
- ``sigterm``: from SIGTERM of a server with two open websockets to their 1012 and to its exit;
- ``drain``: new websockets opened through HAProxy (four at a time, for 5 s) while one of two
  servers is SIGTERMed after 1 s, with ``TANDEM_DRAIN_SECONDS`` ``--drain``: how many connected,
  how many were closed with 1012, how many failed.

    .venv/bin/python bench/ops.py takeover --ttl 10
    .venv/bin/python bench/ops.py sigterm
    .venv/bin/python bench/ops.py drain --drain 0
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import websockets  # noqa: E402

from tests.support.servers import ROOT, Database, Server, free_port  # noqa: E402
from tests.support.wire import peer  # noqa: E402

HAPROXY = """
global
  maxconn 2000
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout tunnel 60s
  retries 3
  option redispatch
frontend f
  bind 127.0.0.1:{front}
  default_backend b
backend b
  balance roundrobin
  option httpchk GET /readyz
  default-server inter 500ms fall 1 rise 2
  server a 127.0.0.1:{a} check
  server b 127.0.0.1:{b} check
"""


def until(predicate: Callable[[], bool], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError
        time.sleep(0.01)


def worker(server: Server, name: str, ttl: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = server.data_dir / f"worker-{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server", "worker"],
            env={
                **server.env(),
                "TANDEM_WORKER_SERVER_URL": server.http,
                "TANDEM_WORKER_LEASE_SECONDS": ttl,
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    return proc, log


def logged(path: Path, text: str) -> Callable[[], bool]:
    return lambda: text in path.read_text()


def takeover(server: Server, ttl: str) -> None:
    figures = []
    for _ in range(3):
        a, log_a = worker(server, "a", ttl)
        until(logged(log_a, f"worker {a.pid} holds the worker lease"))
        b, log_b = worker(server, "b", ttl)
        until(logged(log_b, f"worker {b.pid} waits"))
        began = time.monotonic()
        a.kill()
        a.wait()
        until(logged(log_b, f"worker {b.pid} holds the worker lease"))
        figures.append(time.monotonic() - began)
        b.send_signal(signal.SIGTERM)
        b.wait()
    print(f"lease {ttl} s: taken over after SIGKILL in " + ", ".join(f"{f:.2f} s" for f in figures))


async def sigterm(server: Server) -> None:
    server.create_user("csm@vendor.example", "Casey CSM")
    token = server.create_token("csm@vendor.example")
    plan = server.create_plan(token)
    url = f"{server.ws}/{plan}?token={token}"
    for _ in range(3):
        assert server.proc is not None
        async with peer(url) as one, peer(url) as two:
            began = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            while not (one.closed.is_set() and two.closed.is_set()):
                await asyncio.sleep(0.005)
            closed = time.monotonic() - began
            code = server.proc.wait()
            print(
                f"SIGTERM: both sockets closed ({one.close_code}, {two.close_code}) after "
                f"{closed:.2f} s, exit {code} after {time.monotonic() - began:.2f} s"
            )
        server.proc = None
        server.start()


async def _open(url: str) -> str:
    try:
        async with websockets.connect(url, open_timeout=5) as ws:
            try:
                await asyncio.wait_for(ws.recv(), 2)
            except websockets.ConnectionClosed as closed:
                return f"closed {closed.rcvd.code if closed.rcvd else None}"
            return "connected"
    except websockets.InvalidStatus as refused:
        return f"http {refused.response.status_code}"
    except (OSError, TimeoutError, websockets.WebSocketException) as failed:
        return type(failed).__name__


async def drain(database: Database, tmp: Path, delay: str) -> None:
    env = {"TANDEM_DRAIN_SECONDS": delay, "TANDEM_WORKER": "off"}
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    a = Server(data_dir=tmp / "a", database_url=database.url, extra_env=env).start()
    b = Server(data_dir=tmp / "b", database_url=database.url, extra_env=env).start()
    a.create_user("csm@vendor.example", "Casey CSM")
    token = a.create_token("csm@vendor.example")
    plan = a.create_plan(token)
    front = free_port()
    (tmp / "haproxy.cfg").write_text(HAPROXY.format(front=front, a=a.port, b=b.port))
    proxy = subprocess.Popen(["/usr/sbin/haproxy", "-f", str(tmp / "haproxy.cfg")])
    try:
        await asyncio.sleep(1.5)  # two health checks: both servers up
        url = f"ws://127.0.0.1:{front}/ws/plans/{plan}?token={token}"
        outcomes: collections.Counter[str] = collections.Counter()
        began = time.monotonic()
        stopped = False
        while time.monotonic() - began < 5:
            if not stopped and time.monotonic() - began > 1:
                assert a.proc is not None
                a.proc.send_signal(signal.SIGTERM)
                stopped = True
            outcomes.update(await asyncio.gather(*(_open(url) for _ in range(4))))
        assert a.proc is not None
        print(f"TANDEM_DRAIN_SECONDS={delay}: {dict(outcomes)} (exit {a.proc.wait()})")
        a.proc = None
    finally:
        proxy.terminate()
        proxy.wait()
        b.stop()
        a.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["takeover", "sigterm", "drain"])
    parser.add_argument("--ttl", default="10")
    parser.add_argument("--drain", default="0")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tandem-ops-"))
    database = Database("postgresql", tmp, at_head=True)
    try:
        if args.what == "drain":
            asyncio.run(drain(database, tmp, args.drain))
            return
        extra = {"TANDEM_WORKER": "off"} if args.what == "takeover" else {}
        server = Server(data_dir=tmp, database_url=database.url, extra_env=extra).start()
        try:
            if args.what == "takeover":
                takeover(server, args.ttl)
            else:
                asyncio.run(sigterm(server))
        finally:
            server.stop()
    finally:
        database.drop()


if __name__ == "__main__":
    main()

"""The notification outbox under load: how fast it empties into a local SMTP sink, and what it
does to live editing beside it (run by hand, not in tests).

    .venv/bin/python bench/notify.py [--notifications 10000] [--rounds 3] [--seconds 30]
        [--send-per-second N]

The outbox sends at the server's pace (``TANDEM_NOTIFY_SEND_PER_SECOND``, 50 by default;
``--send-per-second 0`` for as fast as the sink takes them); the output names it.

1. Throughput, alone: a fresh Tandem (SQLite) with ``--notifications`` rows queued in its
   outbox (``persistence.queue_notification``, one transaction, each an *assigned* message with
   its signed action and unsubscribe links, as the rules queue them), then one real task
   assignment through the API wakes the dispatcher, which renders and sends every row (text and
   HTML parts) over SMTP to an aiosmtpd sink on 127.0.0.1. Messages per second, from the wake
   to the last message received, per round.
2. Beside live editing: bench/run.py's live scenario (``--scenario``, default ``own``: 1 plan x
   50 clients x 1 edit/s through the stock y-websocket provider) on two servers interleaved in
   each round (quiet, outbox, quiet, outbox...): both have the same SMTP sink, the same extra
   plan and member, and the same assignment at the start of the measured window; the outbox one
   also has the rows queued, so its dispatcher sends them during the window. Propagation p50/p99
   per round and their medians, Tandem's event-loop lag and CPU (the server's process tree,
   worker included: the dispatcher runs in the worker process), and how many messages went out
   inside the window.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

import run as live  # noqa: E402  (bench/run.py: servers, load generator, reports)

import persistence  # noqa: E402
from server.identity import Signer  # noqa: E402
from server.notify import Links, Person  # noqa: E402

READER = "robin@bench.example"
PASSWORD = "bench password 1"


class Sink:
    """An SMTP server that keeps only the time each message arrived."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.cond = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        with self.cond:
            self.times.append(time.monotonic())
            self.cond.notify_all()
        return "250 OK"

    def count(self) -> int:
        with self.cond:
            return len(self.times)

    def wait_for(self, count: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.times) >= count, timeout)


SINK = Sink()
# What each outbox server did, in the order the servers ran (bench/run.py runs them in turn).
RUNS: list[dict[str, Any]] = []


class OutboxTandem(live.Tandem):
    """Tandem with an extra plan and a member to assign tasks to, ``queue`` notifications
    waiting in its outbox, and a task assignment at the start of the measured window (which
    wakes the dispatcher)."""

    key = "tandem-outbox"
    queue = 0

    def create_plans(self, n: int) -> list[str]:
        ids = super().create_plans(n)
        self.record: dict[str, Any] = {"key": self.key, "queued": 0}
        RUNS.append(self.record)
        self._prepare()
        return ids

    def _client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.http, headers=headers, timeout=60)

    def _prepare(self) -> None:
        with self._client() as http:
            body = {"title": "Outbox bench", "customer": "Bench", "template": "onboarding-roadmap"}
            r = http.post("/api/plans", json=body)
            r.raise_for_status()
            self.plan = r.json()["id"]
            invite = {"email": READER, "role": "editor", "side": "customer"}
            r = http.post(f"/api/plans/{self.plan}/members", json=invite)
            r.raise_for_status()
            url = r.json()["url"]
            form = {"name": "Robin Reader", "password": PASSWORD, "confirm": PASSWORD}
            done = httpx.post(url, data=form, follow_redirects=False, timeout=60)
            if done.status_code != 303:
                raise RuntimeError(f"accepting the invitation: {done.status_code} {done.text}")
            members = http.get(f"/api/plans/{self.plan}/members").json()["members"]
            self.reader = next(m["user_id"] for m in members if m["email"] == READER)
            tasks = http.get(f"/api/plans/{self.plan}/tasks").json()["tasks"]
            self.tasks = [t for t in tasks if not t["milestone"]]
        if self.queue:
            started = time.monotonic()
            self._queue(self.queue)
            self.record["queue_seconds"] = time.monotonic() - started

    def _queue(self, count: int) -> None:
        """``count`` assigned notifications, as the rules write them, in one transaction."""
        links = Links(Signer("bench-secret-key"), self.http)
        task = self.tasks[0]
        engine = persistence.make_engine(self.database_url)
        try:
            with persistence.transaction(persistence.make_sessionmaker(engine)) as s:
                for i in range(count):
                    person = Person(f"contact:bench{i}", f"reader{i}@bench.example", f"Reader {i}")
                    payload = {
                        "plan_id": self.plan,
                        "plan_title": "Outbox bench",
                        "customer": "Bench",
                        "plan_url": f"{self.http}/plans/{self.plan}",
                        "task_id": task["id"],
                        "task_text": task["text"],
                        "due": "2027-03-01",
                        "milestone": False,
                        "recipient": person.name,
                        "by": "Bench",
                        "unsubscribe": links.unsubscribe(
                            email=person.email, plan_id=self.plan, kind="assigned"
                        ),
                        "actions": links.actions(
                            plan_id=self.plan, task_id=task["id"], person=person
                        ),
                    }
                    persistence.queue_notification(
                        session=s,
                        dedup_key=f"bench:{i}",
                        plan_id=self.plan,
                        recipient_email=person.email,
                        recipient_name=person.name,
                        kind="assigned",
                        subject=f"[Outbox bench] Assigned to you: {task['text'][:60]}",
                        payload=payload,
                    )
        finally:
            engine.dispose()
        self.record["queued"] = count

    def release(self) -> None:
        """Assign a task to the member through the API: its notification wakes the
        dispatcher, which then sends whatever the outbox holds."""
        self.record["sink_before"] = SINK.count()
        self.record["released_at"] = time.monotonic()
        owner = {"id": f"user:{self.reader}", "label": "Robin Reader", "side": "customer"}
        with self._client() as http:
            r = http.patch(
                f"/api/plans/{self.plan}/tasks/{self.tasks[1]['id']}", json={"owner": owner}
            )
            r.raise_for_status()

    def metrics(self) -> dict[str, float] | None:
        # bench/run.py reads the metrics at the start and at the end of the measured window.
        if "window_start" not in self.record:
            self.record["window_start"] = time.monotonic()
            threading.Thread(target=self.release, daemon=True).start()
        else:
            self.record["window_end"] = time.monotonic()
            self.record["sink_at_end"] = SINK.count()
        return super().metrics()


class QuietTandem(OutboxTandem):
    key = "tandem-quiet"
    queue = 0


def throughput_round(workdir: Path, count: int, timeout: float) -> dict[str, Any]:
    server = OutboxTandem(workdir)
    try:
        server.start()
        server.create_plans(0)
        record = server.record
        server.release()
        target = record["sink_before"] + count + 1  # the rows and the assignment's own message
        drained = SINK.wait_for(target, timeout)
        times = SINK.times[record["sink_before"] : target]
        seconds = (times[-1] - record["released_at"]) if times else None
        return {
            "queued": count,
            "queue_seconds": record.get("queue_seconds"),
            "sent": len(times),
            "drained": drained,
            "seconds": seconds,
            "per_second": (len(times) - 1) / seconds if seconds else None,
            "problems": server.problems(),
        }
    finally:
        server.cleanup()


def window_figures(record: dict[str, Any]) -> dict[str, Any]:
    start, end = record.get("window_start"), record.get("window_end")
    if start is None or end is None:
        return {}
    times = SINK.times[record.get("sink_before", 0) :]
    inside = [t for t in times if start <= t <= end]
    return {
        "sent_in_window": len(inside),
        "window_seconds": end - start,
        "per_second_in_window": len(inside) / (end - start) if end > start else None,
        "sent_by_end": record["sink_at_end"] - record.get("sink_before", 0),
        "queued": record["queued"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--notifications", type=int, default=10000, help="rows queued (10000)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of each part (3)")
    p.add_argument("--scenario", default="own", help="bench/run.py live scenario (own)")
    p.add_argument("--seconds", type=float, default=30, help="live measured window (30)")
    p.add_argument("--warmup", type=float, default=5, help="live editing before the window (5)")
    p.add_argument(
        "--send-per-second",
        help="TANDEM_NOTIFY_SEND_PER_SECOND for the servers (default: the server's, 50; 0: no cap)",
    )
    p.add_argument("--skip-live", action="store_true", help="only the throughput part")
    p.add_argument(
        "--skip-throughput", action="store_true", help="only the live part (for trying designs)"
    )
    p.add_argument("--json", type=Path, help="also write the raw results to this file")
    args = p.parse_args(argv)

    port = live.free_port()
    controller = Controller(SINK, hostname="127.0.0.1", port=port)
    controller.start()
    live.TANDEM_EXTRA_ENV.update(
        {
            "TANDEM_SMTP_HOST": "127.0.0.1",
            "TANDEM_SMTP_PORT": str(port),
            "TANDEM_SMTP_FROM": "tandem@bench.example",
            "TANDEM_NOTIFY_CLOCK_SECONDS": "0",
        }
    )
    if args.send_per_second is not None:
        live.TANDEM_EXTRA_ENV["TANDEM_NOTIFY_SEND_PER_SECOND"] = args.send_per_second
    pace = live.TANDEM_EXTRA_ENV.get("TANDEM_NOTIFY_SEND_PER_SECOND", "50 (the default)")
    live.SERVERS |= {"tandem-quiet": QuietTandem, "tandem-outbox": OutboxTandem}
    live.SERVER_LABELS |= {
        "tandem-quiet": "Tandem, outbox idle",
        "tandem-outbox": f"Tandem, outbox sending {args.notifications:,}",
    }
    OutboxTandem.queue = args.notifications
    info = live.machine_info()
    print("Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()))
    print(f"Load average at start: {os.getloadavg()[0]:.2f}")
    print(f"TANDEM_NOTIFY_SEND_PER_SECOND: {pace}\n")
    out: dict[str, Any] = {"machine": info, "args": {k: str(v) for k, v in vars(args).items()}}
    try:
        with tempfile.TemporaryDirectory(prefix="tandem-bench-notify-") as tmp:
            rounds = []
            for round_ in range(1, 0 if args.skip_throughput else args.rounds + 1):
                workdir = Path(tmp) / f"throughput-{round_}"
                workdir.mkdir()
                live.log(f"throughput round {round_}: {args.notifications:,} notifications")
                rounds.append(throughput_round(workdir, args.notifications, timeout=1800))
            out["throughput"] = rounds
            print(throughput_report(rounds))
            for r in rounds:
                for line in r["problems"][:5]:
                    print(f"    server log: {line}")
            if not args.skip_live:
                live_args = live.parse_args(
                    ["--scenario", args.scenario, "--servers", "tandem-quiet,tandem-outbox",
                     "--repeat", str(args.rounds), "--seconds", str(args.seconds),
                     "--warmup", str(args.warmup)]
                )  # fmt: skip
                scenario = live.for_scenario(live_args, live_args.scenarios[0])
                results = live.run_scenario(scenario, Path(tmp))
                records = RUNS[len(rounds) :]
                for result in results:
                    mine = next((r for r in records if r["key"] == result["key"]), None)
                    if mine is not None:
                        records.remove(mine)
                        result["outbox"] = window_figures(mine)
                out["live"] = results
                print(f"\n## Live editing beside the outbox (`{args.scenario}`)\n")
                print(live.summary_report(results))
                print("\nPer round:\n")
                print(live.load_report(results))
                print("\nThe outbox inside each measured window:\n")
                print(outbox_report(results))
    finally:
        controller.stop()
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


def throughput_report(rounds: list[dict[str, Any]]) -> str:
    rows = [
        [
            str(i),
            f"{r['queued']:,}",
            live._fmt(r["queue_seconds"], 1),
            f"{r['sent']:,}" + ("" if r["drained"] else " (**not drained**)"),
            live._fmt(r["seconds"], 1),
            live._fmt(r["per_second"], 0),
            str(len(r["problems"])),
        ]
        for i, r in enumerate(rounds, 1)
    ]
    rates = [r["per_second"] for r in rounds if r["per_second"]]
    table = live._table(
        ["round", "queued", "queueing s", "messages received", "wake to last s", "messages/s",
         "server log warnings"],
        rows,
    )  # fmt: skip
    median = live._fmt(statistics.median(rates), 0) if rates else "–"
    return f"## Outbox to a local SMTP sink, alone\n\n{table}\n\nMedian: {median} messages/s."


def outbox_report(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        o = r.get("outbox") or {}
        rows.append(
            [
                r["server"],
                f"{o.get('queued', 0):,}",
                str(o.get("sent_in_window", "–")),
                live._fmt(o.get("window_seconds"), 1),
                live._fmt(o.get("per_second_in_window"), 0),
                str(o.get("sent_by_end", "–")),
            ]
        )
    return live._table(
        ["server", "queued", "messages in window", "window s", "messages/s in window",
         "messages by the window's end"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())

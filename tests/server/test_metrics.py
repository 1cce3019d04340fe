"""``/metrics``: Prometheus figures for the holder of ``TANDEM_METRICS_TOKEN``, 404 for anyone
else; and the event-loop lag monitor behind one of them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.live import LoopLag
from tests.support.servers import Database, Server
from tests.support.wire import peer, wait_for
from tests.support.yclient import add_paragraph

pytestmark = pytest.mark.anyio

TOKEN = "metrics-token-for-tests"


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("metrics")
    srv = Server(
        data_dir=tmp,
        database_url=f"sqlite:///{tmp / 'tandem.db'}",
        extra_env={"TANDEM_METRICS_TOKEN": TOKEN},
    ).start()
    yield srv
    srv.stop()


def scrape(server: Server, token: str = TOKEN) -> dict[str, float]:
    r = httpx.get(f"{server.http}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        sample.name + "".join(f"{{{k}={v}}}" for k, v in sample.labels.items()): sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
    }


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Cookie": f"tandem_session={TOKEN}"},
    ],
    ids=["no header", "wrong token", "longer token", "not bearer", "cookie"],
)
def test_without_the_token_metrics_do_not_exist(metered: Server, headers: dict) -> None:
    r = httpx.get(f"{metered.http}/metrics", headers=headers)
    assert r.status_code == 404
    assert "tandem_" not in r.text


def test_unset_token_means_no_metrics_for_anyone(tmp_path: Path) -> None:
    srv = Server(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'tandem.db'}").start()
    try:
        for headers in ({}, {"Authorization": "Bearer x"}, {"Authorization": f"Bearer {TOKEN}"}):
            assert httpx.get(f"{srv.http}/metrics", headers=headers).status_code == 404
    finally:
        srv.stop()


async def test_metrics_count_connections_rooms_updates_and_loop_lag(metered: Server) -> None:
    metered.create_user("csm@vendor.example", "Casey CSM")
    token = metered.create_token("csm@vendor.example")
    plan_id = metered.create_plan(token)
    before = await anyio.to_thread.run_sync(scrape, metered)
    with anyio.fail_after(30):
        async with peer(f"{metered.ws}/{plan_id}?token={token}") as writer:
            add_paragraph(writer.doc, "counted")
            add_paragraph(writer.doc, "counted too")

            async def counted() -> dict[str, float]:
                return await anyio.to_thread.run_sync(scrape, metered)

            now = await counted()
            deadline = time.monotonic() + 10
            while now["tandem_updates_applied_total"] < before["tandem_updates_applied_total"] + 2:
                assert time.monotonic() < deadline, now
                await anyio.sleep(0.05)
                now = await counted()
            assert now["tandem_open_connections"] == 1
            assert now["tandem_open_rooms"] >= 1
    # The lag timer has been firing all along: every sample is in the +Inf bucket.
    lag_count = now["tandem_event_loop_lag_seconds_count"]
    assert lag_count > 0
    assert now["tandem_event_loop_lag_seconds_bucket{le=+Inf}"] == lag_count
    assert now["tandem_event_loop_lag_max_seconds"] >= 0


async def test_loop_lag_sees_a_blocked_loop() -> None:
    lag = LoopLag(interval=0.01)
    task = asyncio.ensure_future(lag.run())
    try:
        await wait_for(lambda: lag.samples >= 3, what="the timer firing")
        time.sleep(0.12)  # holds the event loop, as a long synchronous step would
        await wait_for(lambda: lag.worst >= 0.1, what="the lag being recorded")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    cumulative = dict(lag.cumulative())
    assert cumulative[0.1] < cumulative[float("inf")] == lag.samples
    assert lag.total >= 0.1


# Every family /metrics serves, the list: connections and rooms, updates (a counter:
# Prometheus' rate() makes it per second), commit latency, event-loop lag, the worker's lag
# behind the log, the outbox.
NAMES = {
    "tandem_open_connections",
    "tandem_open_rooms",
    "tandem_updates_applied",
    "tandem_commit_seconds",
    "tandem_event_loop_lag_seconds",
    "tandem_event_loop_lag_max_seconds",
    "tandem_worker_lag_seconds",
    "tandem_worker_lag_updates",
    "tandem_worker_lag_plans",
    "tandem_outbox_depth",
    "tandem_metrics_database_up",
}


def families(server: Server) -> dict[str, object]:
    r = httpx.get(f"{server.http}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    return {family.name: family for family in text_string_to_metric_families(r.text)}


async def test_metrics_parse_and_hold_every_name_with_commits_and_the_worker_caught_up(
    metered: Server,
) -> None:
    metered.create_user("pat@vendor.example", "Pat CSM")
    token = metered.create_token("pat@vendor.example")
    plan_id = metered.create_plan(token)
    async with peer(f"{metered.ws}/{plan_id}?token={token}") as writer:
        add_paragraph(writer.doc, "committed and timed")

        def caught_up() -> dict[str, float] | None:
            now = scrape(metered)
            done = now["tandem_commit_seconds_count"] >= 1 and now["tandem_worker_lag_plans"] == 0
            return now if done else None

        now = None
        with anyio.fail_after(20):
            while (now := await anyio.to_thread.run_sync(caught_up)) is None:
                await anyio.sleep(0.1)
    assert set(families(metered)) >= NAMES
    assert now["tandem_commit_seconds_bucket{le=+Inf}"] == now["tandem_commit_seconds_count"]
    assert now["tandem_commit_seconds_sum"] > 0
    assert now["tandem_worker_lag_seconds"] == 0 and now["tandem_worker_lag_updates"] == 0
    assert now["tandem_outbox_depth"] >= 0 and now["tandem_metrics_database_up"] == 1


async def test_the_worker_lag_counts_what_waits_for_a_worker(
    database: Database, tmp_path: Path
) -> None:
    # No worker anywhere: what is typed waits in the log, and the lag says so.
    srv = Server(
        data_dir=tmp_path,
        database_url=database.url,
        extra_env={"TANDEM_METRICS_TOKEN": TOKEN, "TANDEM_WORKER": "off"},
    ).start()
    try:
        srv.create_user("csm@vendor.example", "Casey CSM")
        token = srv.create_token("csm@vendor.example")
        plan_id = srv.create_plan(token)
        async with peer(f"{srv.ws}/{plan_id}?token={token}") as writer:
            add_paragraph(writer.doc, "waits for a worker")
            with anyio.fail_after(20):
                while (now := await anyio.to_thread.run_sync(scrape, srv))[
                    "tandem_worker_lag_updates"
                ] < 1:
                    await anyio.sleep(0.1)
        assert now["tandem_worker_lag_plans"] == 1
        assert now["tandem_worker_lag_seconds"] >= 0
        assert now["tandem_outbox_depth"] == 0
    finally:
        srv.stop()

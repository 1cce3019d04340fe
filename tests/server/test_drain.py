"""``/readyz`` and draining: what a real server does at SIGTERM, seen by real clients.

At SIGTERM a server answers ``/readyz`` with 503, sends new websockets elsewhere (1012), then
closes the open ones with 1012, flushes its rooms and exits 0. An edit made before is in the
log: a fresh client of the restarted server sees it.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.redis import private_redis
from tests.support.servers import Database, Server, free_port
from tests.support.wire import peer, wait_for
from tests.support.yclient import add_paragraph, paragraphs

pytestmark = pytest.mark.anyio


def readyz(server: Server) -> httpx.Response:
    return httpx.get(f"{server.http}/readyz", timeout=5)


@pytest.fixture
def setup(server: Server) -> tuple[Server, str, str]:
    server.create_user("csm@vendor.example", "Casey CSM")
    token = server.create_token("csm@vendor.example")
    return server, token, server.create_plan(token)


async def test_readyz_names_the_database_when_it_is_ready(server: Server) -> None:
    r = readyz(server)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "down": [], "checks": {"database": "ok"}}
    assert httpx.get(f"{server.http}/healthz").json() == {"status": "ok"}


async def test_sigterm_closes_sockets_with_1012_keeps_the_edit_and_exits_0(
    setup: tuple[Server, str, str],
) -> None:
    server, token, plan_id = setup
    url = f"{server.ws}/{plan_id}?token={token}"
    async with peer(url) as writer, peer(url) as reader:
        add_paragraph(writer.doc, "Said before the restart")
        # The other client has it: it was logged before it was forwarded.
        await wait_for(lambda: "Said before the restart" in paragraphs(reader.doc))
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        await wait_for(lambda: writer.closed.is_set() and reader.closed.is_set(), timeout=20)
        assert (writer.close_code, reader.close_code) == (1012, 1012)
        code = server.proc.wait(timeout=30)
    assert code == 0, server.log()
    server.proc = None
    server.start()
    async with peer(url) as fresh:
        assert "Said before the restart" in paragraphs(fresh.doc)


async def test_with_a_drain_delay_readyz_is_503_and_new_sockets_go_elsewhere_first(
    setup: tuple[Server, str, str],
) -> None:
    server, token, plan_id = setup
    server.stop()
    server.extra_env["TANDEM_DRAIN_SECONDS"] = "30"  # ended early by a second signal below
    server.start()
    url = f"{server.ws}/{plan_id}?token={token}"
    async with peer(url) as open_before:
        add_paragraph(open_before.doc, "Typed while draining began")
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        await wait_for(lambda: readyz(server).status_code == 503)
        assert readyz(server).json()["status"] == "draining"
        # Still listening, still serving the sockets it has, but no new ones.
        assert not open_before.closed.is_set()
        async with websockets.connect(url) as late:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await late.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        server.proc.send_signal(signal.SIGTERM)  # the second: the drain delay ends now
        await wait_for(lambda: open_before.closed.is_set(), timeout=20)
        assert open_before.close_code == 1012
        assert server.proc.wait(timeout=30) == 0
    server.proc = None
    server.start()
    async with peer(url) as fresh:
        assert "Typed while draining began" in paragraphs(fresh.doc)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[str]:
    with private_redis(tmp_path) as url:
        yield url


async def test_readyz_names_redis_when_it_is_down(
    backend: str, database: Database, tmp_path: Path, redis_server: str
) -> None:
    if backend != "postgresql":
        pytest.skip("TANDEM_REDIS_URL is for several processes on PostgreSQL")
    server = Server(
        data_dir=tmp_path,
        database_url=database.url,
        extra_env={"TANDEM_REDIS_URL": redis_server},
    ).start()
    try:
        r = readyz(server)
        assert r.status_code == 200, r.text
        assert r.json()["checks"] == {"database": "ok", "redis": "ok"}
        dead = f"redis://127.0.0.1:{free_port()}/0"
        server.stop()
        server.extra_env["TANDEM_REDIS_URL"] = dead
        server.start()
        r = readyz(server)
        assert r.status_code == 503
        assert r.json()["down"] == ["redis"] and r.json()["checks"]["database"] == "ok"
    finally:
        server.stop()

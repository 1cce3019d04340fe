"""Rate limits and the cap on sockets still authenticating, shared by processes through Redis.

Two real server processes on one PostgreSQL database and a private redis-server: sign-in
attempts and websocket connects spread over both are limited as if one process took them all.
Without Redis (or when it does not answer) each process keeps its own, and says so in the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from server.identity import Limits
from server.identity import limits as limits_module
from tests.support.redis import private_redis
from tests.support.servers import Database, Server, free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with private_redis(tmp_path) as url:
        yield url


@pytest.fixture
def two_servers(
    backend: str, database: Database, tmp_path: Path, redis_url: str
) -> Iterator[tuple[Server, Server]]:
    if backend != "postgresql":
        pytest.skip("several processes share one PostgreSQL database")
    env = {
        "TANDEM_REDIS_URL": redis_url,
        "TANDEM_SIGNIN_PER_MINUTE": "3",
        "TANDEM_WS_CONNECTS_PER_MINUTE": "3",
        "TANDEM_WORKER": "off",
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Server(data_dir=tmp_path / "a", database_url=database.url, extra_env=env).start()
    b = Server(data_dir=tmp_path / "b", database_url=database.url, extra_env=env)
    try:
        b.start()
        yield a, b
    finally:
        b.stop()
        a.stop()


def sign_in(server: Server) -> int:
    r = httpx.post(
        f"{server.http}/login",
        data={"email": "csm@vendor.example", "password": "not the password", "next": "/"},
    )
    return r.status_code


async def socket_close(server: Server) -> int | None:
    async with websockets.connect(f"{server.ws}/p1") as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    return closed.value.rcvd.code if closed.value.rcvd else None


async def test_sign_ins_and_connects_over_two_processes_are_limited_as_one(
    two_servers: tuple[Server, Server],
) -> None:
    a, b = two_servers
    a.create_user("csm@vendor.example", "Casey CSM")
    codes = [sign_in(server) for server in (a, b, a, b, a, b)]
    # Three a minute from one address: on one process each, six would all be answered 401.
    assert codes[:3] == [401, 401, 401]
    assert codes[3:] == [429, 429, 429]
    closes = [await socket_close(server) for server in (a, b, a, b, a, b)]
    assert closes[:3] == [4401, 4401, 4401]  # connected, with no credentials
    assert closes[3:] == [4429, 4429, 4429]


async def test_the_cap_on_sockets_authenticating_is_shared_and_does_not_leak(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis.asyncio

    monkeypatch.setattr(limits_module, "AUTHENTICATING_SECONDS", 1)
    one, two = redis.asyncio.Redis.from_url(redis_url), redis.asyncio.Redis.from_url(redis_url)
    try:
        # Two processes' limits on one Redis.
        first = Limits(signin=3, codes=3, ws_connects=3, redis=one)
        second = Limits(signin=3, codes=3, ws_connects=3, redis=two)
        held = [await first.admit_unauthenticated(2), await second.admit_unauthenticated(2)]
        assert all(t is not None and t.shared for t in held)
        assert await second.admit_unauthenticated(2) is None  # two in all: the cap
        await first.release_unauthenticated(held[0])  # type: ignore[arg-type]
        again = await second.admit_unauthenticated(2)
        assert again is not None
        # The other never releases (its process died): it stops counting on its own.
        assert await first.admit_unauthenticated(2) is None
        for _ in range(100):  # Redis' clock decides; nothing to await but it
            if (ticket := await first.admit_unauthenticated(2)) is not None:
                break
            await asyncio.sleep(0.05)
        assert ticket is not None
    finally:
        await one.aclose()
        await two.aclose()


async def test_without_redis_answering_the_limits_are_the_process_own_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import redis.asyncio

    dead = redis.asyncio.Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1
    )
    limits = Limits(signin=3, codes=3, ws_connects=3, redis=dead)
    with caplog.at_level(logging.WARNING, logger="server.identity.limits"):
        answers = [await limits.signin.allow("203.0.113.1|x@y.example") for _ in range(5)]
        ticket = await limits.admit_unauthenticated(1)
        assert ticket is not None and not ticket.shared
        assert await limits.admit_unauthenticated(1) is None  # the local cap still holds
        await limits.release_unauthenticated(ticket)
    assert answers == [True, True, True, False, False]  # limited all the same, never an error
    warnings = [r.getMessage() for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1  # said once, not at each request
    await dead.aclose()

"""Live sync over a real server with real pycrdt clients."""

from __future__ import annotations

import anyio
import pytest

from tests.support.servers import Server
from tests.support.yclient import add_paragraph, connect, paragraphs

pytestmark = pytest.mark.anyio


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


async def test_two_pycrdt_clients_converge(server: Server, token: str, plan_id: str) -> None:
    async with (
        connect(server.ws, plan_id, token) as (a, _),
        connect(server.ws, plan_id, token) as (b, _),
    ):
        add_paragraph(a, "from a")
        add_paragraph(b, "from b")
        await wait_for(lambda: len(paragraphs(a)) == 2 and len(paragraphs(b)) == 2)
        assert sorted(paragraphs(a)) == sorted(paragraphs(b)) == ["from a", "from b"]


async def test_content_survives_restart(server: Server, token: str, plan_id: str) -> None:
    async with (
        connect(server.ws, plan_id, token) as (a, _),
        connect(server.ws, plan_id, token) as (b, _),
    ):
        add_paragraph(a, "kept across restarts")
        await wait_for(lambda: paragraphs(b) == ["kept across restarts"])
    server.stop()
    server.start()
    async with connect(server.ws, plan_id, token) as (c, _):
        assert paragraphs(c) == ["kept across restarts"]

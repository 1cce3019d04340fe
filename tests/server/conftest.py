from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.access import World, build_world
from tests.support.servers import Database, Server


@pytest.fixture(scope="module")
def world(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One server per module with a plan and every kind of caller (see tests/support/access.py)."""
    tmp = tmp_path_factory.mktemp(f"access-{backend}")
    db = Database(backend, tmp, at_head=True)
    srv = Server(
        data_dir=tmp, database_url=db.url, extra_env={"TANDEM_WS_CONNECTS_PER_MINUTE": "10000"}
    ).start()
    try:
        world = build_world(srv)
        yield world
        world.close()
    finally:
        srv.stop()
        db.drop()

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import Database, Server


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backends",
        default="sqlite,postgresql",
        help="comma-separated databases to run database tests against",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = metafunc.config.getoption("--backends").split(",")
        metafunc.parametrize("backend", backends, scope="module")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Browser tests last: Playwright's sync API runs its own loop and greenlets in the main
    # thread, which nothing else should have to share.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Database]:
    # Empty for tests of the database itself (migrations, the CLI); already at the newest
    # schema under a test server, which would only migrate it first.
    db = Database(backend, tmp_path, at_head="server" in request.fixturenames)
    yield db
    db.drop()


@pytest.fixture
def server(database: Database, tmp_path: Path) -> Iterator[Server]:
    srv = Server(data_dir=tmp_path, database_url=database.url).start()
    yield srv
    srv.stop()


@pytest.fixture
def token(server: Server) -> str:
    server.create_user("csm@vendor.example", "Casey CSM")
    return server.create_token("csm@vendor.example")


@pytest.fixture
def plan_id(server: Server, token: str) -> str:
    return server.create_plan(token)

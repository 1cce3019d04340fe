"""One migrated database per test module (a SQLite file, or a fresh PostgreSQL database)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import persistence
from tests.support.servers import Database


@pytest.fixture(scope="module")
def engine(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    db = Database(backend, tmp_path_factory.mktemp(f"persistence-{backend}"))
    try:
        persistence.upgrade(db.url)
        engine = persistence.make_engine(db.url)
        try:
            yield engine
        finally:
            engine.dispose()
    finally:
        db.drop()


@pytest.fixture(scope="module")
def factory(engine: Engine) -> sessionmaker[Session]:
    return persistence.make_sessionmaker(engine)

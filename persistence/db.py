"""Engines, sessions and schema migrations."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event, inspect
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, *, durable: bool = True, wait_for_lock: bool = True) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and full fsync on commit.

    ``durable=False`` is for data derived from the update log (the materialised tables and
    their watermark): a commit is atomic but not flushed to disk before it returns (SQLite
    ``synchronous=NORMAL`` in WAL mode, PostgreSQL ``synchronous_commit=off``). A power cut
    can take back the last such commits, rows and watermark together, and the materialiser
    then redoes them from the log; a crash of the process loses nothing.

    ``wait_for_lock=False`` (SQLite): a write finding the database locked by another
    connection fails at once (see ``locked``) instead of waiting up to 30 s for it.
    """
    if url.startswith("sqlite"):
        wait = 30 if wait_for_lock else 0
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": wait})
        # FULL: a committed update survives power loss too, not only a crash of the process.
        level = "FULL" if durable else "NORMAL"

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={level}")
            # The server copies the WAL into the database from a background task
            # (checkpoint_wal) before it reaches SQLite's own threshold (1000 pages), at which
            # the commit crossing it would do the copy and its fsync itself. That threshold
            # stays, as the bound under a burst of writes; after one, the WAL file shrinks
            # back to this size when it restarts.
            cur.execute("PRAGMA journal_size_limit=16777216")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={wait * 1000}")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    if not durable:

        @event.listens_for(engine, "connect")
        def _pg_async_commit(dbapi_conn: Any, _record: Any) -> None:
            with dbapi_conn.cursor() as cur:
                cur.execute("SET synchronous_commit TO off")
            dbapi_conn.commit()

    return engine


def locked(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite refusing a write because another connection holds the lock."""
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


def checkpoint_wal(engine: Engine) -> None:
    """Copy what the SQLite WAL holds into the database file without blocking readers or
    writers (a PASSIVE checkpoint); nothing to do for other databases."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE run through ``Session.execute`` touched."""
    # Session.execute is typed as returning a Result; a DML statement's is a CursorResult.
    return cast(CursorResult[Any], result).rowcount


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: committed on success, rolled back whole on any error."""
    with factory() as session, session.begin():
        yield session


def _alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


#: The newest migration's revision (a test checks it against Alembic's own view).
HEAD = "0006_history"


def schema_revision(url: str) -> str | None:
    """The revision a database is at, or None when it has no schema yet."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    finally:
        engine.dispose()


def upgrade(url: str) -> None:
    """Bring the schema at ``url`` to the newest migration (creating it if empty).

    A database already at the newest one (every start but the first after an upgrade) is
    left alone without loading Alembic: it and its templating stayed in the server's memory
    for good (about 10 MB of its resident size) only to find there was nothing to do.
    """
    if schema_revision(url) == HEAD:
        return
    from alembic import command

    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    command.upgrade(_alembic_config(url), "head")

"""Engines, sessions and schema migrations."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
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
HEAD = "0012_notification_clock"


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


def upgrade(url: str, *, isolated: bool = False) -> None:
    """Bring the schema at ``url`` to the newest migration (creating it if empty).

    A database already at the newest one (every start but the first after an upgrade) is
    left alone without loading Alembic: it and its templating stayed in the server's memory
    for good (about 10 MB of its resident size) only to find there was nothing to do.
    ``isolated``: when there is something to do, Alembic runs in a child process, so that a
    long-lived caller (the server, on its first start after an install or an upgrade) never
    holds it either.
    """
    if schema_revision(url) == HEAD:
        return
    if isolated:
        _upgrade_in_child(url)
        return
    from alembic import command

    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    command.upgrade(_alembic_config(url), "head")


def _upgrade_in_child(url: str) -> None:
    # The URL (which may hold a password) goes through stdin, not argv or the environment.
    code = "import sys; from persistence.db import upgrade; upgrade(sys.stdin.read())"
    root = str(Path(__file__).resolve().parents[1])  # this checkout's persistence package
    path = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=url,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        stderr=subprocess.PIPE,
        check=False,
    )
    sys.stderr.write(done.stderr)  # Alembic's own log lines, as if run here
    if done.returncode != 0:
        raise RuntimeError(f"the schema migration failed (exit {done.returncode})")

"""Alembic migrations: idempotent, upgrade an old database in place, and match the models."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

import persistence
import persistence.db
from persistence.db import MIGRATIONS
from persistence.models import Base
from tests.support.servers import ROOT, Database


def sqlalchemy_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


@contextmanager
def connect(url: str) -> Iterator[Connection]:
    engine = persistence.make_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    with connect(url) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head(url: str) -> str:
    script = ScriptDirectory.from_config(alembic_config(url))
    heads = script.get_heads()
    assert len(heads) == 1, f"migrations must have one head, found {heads}"
    return heads[0]


def initial_revision(url: str) -> str:
    script = ScriptDirectory.from_config(alembic_config(url))
    bases = script.get_bases()
    assert len(bases) == 1, f"migrations must have one base, found {bases}"
    return bases[0]


def schema(url: str) -> dict[str, Any]:
    """Tables, columns, keys and indexes as the database reports them."""
    with connect(url) as conn:
        insp = inspect(conn)
        out: dict[str, Any] = {}
        for table in sorted(insp.get_table_names()):
            out[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)
                ],
                "pk": insp.get_pk_constraint(table)["constrained_columns"],
                "fks": sorted(
                    (fk["constrained_columns"], fk["referred_table"], fk["referred_columns"])
                    for fk in insp.get_foreign_keys(table)
                ),
                "indexes": sorted((i["name"], i["column_names"]) for i in insp.get_indexes(table)),
                "unique": sorted(
                    (u["name"], u["column_names"]) for u in insp.get_unique_constraints(table)
                ),
            }
        return out


def rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with connect(url) as conn:
        return {
            table: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]
            for table in ("users", "plans", "plan_updates", "checkpoints")
        }


def test_upgrade_creates_the_schema_at_head(database: Database) -> None:
    assert current_revision(database.url) is None
    persistence.upgrade(database.url)
    assert current_revision(database.url) == head(database.url)
    tables = set(schema(database.url))
    assert {"users", "sessions", "api_tokens", "plans", "plan_updates", "checkpoints"} <= tables


def test_the_head_the_server_checks_for_is_alembics_head(database: Database) -> None:
    """``upgrade`` skips Alembic when the database is at ``HEAD``: a new migration that did
    not move ``HEAD`` would never be applied."""
    assert head(database.url) == persistence.db.HEAD
    assert persistence.db.schema_revision(database.url) is None
    persistence.upgrade(database.url)
    assert persistence.db.schema_revision(database.url) == persistence.db.HEAD


def test_an_isolated_upgrade_migrates_without_loading_alembic_here(database: Database) -> None:
    """The server's first start after an install or an upgrade migrates in a child process:
    Alembic (about 10 MB resident) never enters the long-lived server process."""
    script = (
        "import sys\n"
        "import persistence\n"
        "from persistence.db import HEAD, schema_revision\n"
        "url = sys.stdin.read()\n"
        "persistence.upgrade(url, isolated=True)\n"
        "assert schema_revision(url) == HEAD, schema_revision(url)\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'alembic'], 'alembic loaded'\n"
    )
    assert current_revision(database.url) is None
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=database.url,
        text=True,
        capture_output=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert current_revision(database.url) == head(database.url)


def test_migrated_schema_matches_the_models(database: Database) -> None:
    """Autogenerate finds nothing to do: no model change is missing a migration."""
    persistence.upgrade(database.url)
    with connect(database.url) as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrading_twice_is_a_no_op(database: Database) -> None:
    persistence.upgrade(database.url)
    with persistence.transaction(
        persistence.make_sessionmaker(engine := persistence.make_engine(database.url))
    ) as s:
        plan = persistence.create_plan(session=s, title="Kept", customer="Acme", created_by=None)
        persistence.append_updates(session=s, plan_id=plan.id, entries=[(None, b"\x01\x02")])
    engine.dispose()
    before_schema, before_rows = schema(database.url), rows(database.url)

    persistence.upgrade(database.url)

    assert current_revision(database.url) == head(database.url)
    assert schema(database.url) == before_schema
    assert rows(database.url) == before_rows


def test_database_at_the_initial_revision_upgrades_in_place(database: Database) -> None:
    command.upgrade(alembic_config(database.url), initial_revision(database.url))
    assert current_revision(database.url) == initial_revision(database.url)
    # Data written the way the initial schema allows (plain SQL, not today's models).
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with connect(database.url) as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, email, name, password_hash, is_owner, created_at) "
                "VALUES (1, 'owner@vendor.example', 'Owner', 'hash', :t, :at)"
            ),
            {"t": True, "at": at},
        )
        conn.execute(
            text(
                "INSERT INTO plans (id, title, customer, created_by, created_at, updated_at) "
                "VALUES ('oldplan', 'Old plan', 'Acme', 1, :at, :at)"
            ),
            {"at": at},
        )
        for data in (b"first", b"second"):
            conn.execute(
                text(
                    "INSERT INTO plan_updates (plan_id, created_at, author_id, data) "
                    "VALUES ('oldplan', :at, 1, :data)"
                ),
                {"at": at, "data": data},
            )
        conn.commit()

    persistence.upgrade(database.url)

    assert current_revision(database.url) == head(database.url)
    engine = persistence.make_engine(database.url)
    try:
        with persistence.transaction(persistence.make_sessionmaker(engine)) as s:
            found = persistence.find_user(session=s, email="owner@vendor.example")
            assert found is not None and found[0].is_owner
            plan = persistence.get_plan(session=s, plan_id="oldplan")
            assert plan is not None and (plan.title, plan.updated_at) == ("Old plan", at)
            history = persistence.load_history(session=s, plan_id="oldplan")
            assert history.updates == [b"first", b"second"]
            # The log's id sequence carries on after the old rows.
            [new_id] = persistence.append_updates(
                session=s, plan_id="oldplan", entries=[(None, b"third")]
            )
            assert new_id > history.last_id
    finally:
        engine.dispose()

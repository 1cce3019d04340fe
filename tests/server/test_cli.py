"""The ``tandem`` command, run as a real process (``python -m server``) on SQLite and PostgreSQL."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import persistence
from persistence.db import MIGRATIONS
from tests.support.servers import ROOT, Database, Server

PASSWORD = "correct horse battery"


@pytest.fixture
def cli(database: Database, tmp_path: Path) -> Server:
    """A server's environment, not started: for running the CLI against the database."""
    return Server(data_dir=tmp_path, database_url=database.url)


def create_user(cli: Server, email: str, name: str = "Casey", password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return cli.cli("users", "create", email, "--name", name, stdin=password + "\n")


def has_user(cli: Server, email: str) -> bool:
    return cli.cli("tokens", "list", email).returncode == 0


def tokens(cli: Server, email: str) -> list[list[str]]:
    done = cli.cli("tokens", "list", email)
    assert done.returncode == 0, done.stderr
    return [line.split("\t") for line in done.stdout.splitlines()]


def sign_in(srv: Server, email: str, password: str) -> int:
    r = httpx.post(f"{srv.http}/login", data={"email": email, "password": password}, timeout=10)
    return r.status_code


# users create


def test_users_create_reads_the_password_from_stdin(cli: Server) -> None:
    # Spaces inside are kept; the line ending (even \r\n) is not part of it.
    done = cli.cli(
        "users",
        "create",
        "owner@vendor.example",
        "--name",
        "Olive Owner",
        stdin=" spaced out pass \r\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("<owner@vendor.example> (workspace owner)")
    done = create_user(cli, "Second@Vendor.example", "Sam Second")
    assert done.returncode == 0, done.stderr
    assert "<second@vendor.example>" in done.stdout and "owner" not in done.stdout

    cli.start()
    try:
        assert sign_in(cli, "owner@vendor.example", " spaced out pass ") == 303
        assert sign_in(cli, "owner@vendor.example", " spaced out pass \r") == 401
        assert sign_in(cli, "owner@vendor.example", "spaced out pass") == 401
        assert sign_in(cli, "second@vendor.example", PASSWORD) == 303
    finally:
        cli.stop()


@pytest.mark.parametrize("password", ["", "7chars!"])
def test_users_create_rejects_short_passwords(cli: Server, password: str) -> None:
    done = create_user(cli, "short@vendor.example", password=password)
    assert done.returncode == 2
    assert "at least 8 characters" in done.stderr
    assert done.stdout == ""
    assert not has_user(cli, "short@vendor.example")


def test_users_create_rejects_duplicates(cli: Server) -> None:
    assert create_user(cli, "casey@vendor.example").returncode == 0
    for again in ("casey@vendor.example", "CASEY@Vendor.Example"):
        done = create_user(cli, again, "Impostor")
        assert done.returncode == 1
        assert "already exists" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("email", "name"),
    [
        ("casey@vendor.example", ""),
        ("casey@vendor.example", "  "),
        ("casey@vendor.example", "n" * 201),
        ("not-an-address", "Casey"),
        ("c@" + "v" * 320, "Casey"),
    ],
    ids=["empty-name", "blank-name", "long-name", "no-at", "long-email"],
)
def test_users_create_rejects_bad_names_and_emails(cli: Server, email: str, name: str) -> None:
    done = create_user(cli, email, name)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error:") and "Traceback" not in done.stderr
    assert not has_user(cli, email)


# tokens


def test_tokens_create_prints_only_the_token(cli: Server) -> None:
    assert create_user(cli, "casey@vendor.example").returncode == 0
    done = cli.cli("tokens", "create", "casey@vendor.example", "--label", "CI")
    assert done.returncode == 0, done.stderr
    token = done.stdout.removesuffix("\n")
    assert "\n" not in token and " " not in token and token.startswith("tdm_")
    [[token_id, state, expires, used, label]] = tokens(cli, "casey@vendor.example")
    assert (state, used, label) == ("active", "last used never", "CI")
    assert expires.startswith("expires ") and expires != "expires never"
    # Where to find it again is on stderr, for people; stdout stays pipeable.
    assert f"tandem tokens revoke {token_id}" in done.stderr


def test_tokens_create_refuses_unknown_users_and_long_labels(cli: Server) -> None:
    done = cli.cli("tokens", "create", "nobody@vendor.example")
    assert (done.returncode, done.stdout) == (1, "")
    assert "no user" in done.stderr
    assert create_user(cli, "casey@vendor.example").returncode == 0
    done = cli.cli("tokens", "create", "casey@vendor.example", "--label", "l" * 201)
    assert (done.returncode, done.stdout) == (2, "")
    assert "Traceback" not in done.stderr
    assert tokens(cli, "casey@vendor.example") == []


@pytest.mark.parametrize("days", ["0", "-1", "731", "100000000"])
def test_tokens_create_refuses_lifetimes_out_of_range(cli: Server, days: str) -> None:
    # 0 made a 365-day token; -1 one already expired but listed as active.
    assert create_user(cli, "casey@vendor.example").returncode == 0
    done = cli.cli("tokens", "create", "casey@vendor.example", "--days", days)
    assert (done.returncode, done.stdout) == (2, "")
    assert "--days must be from 1 to 730" in done.stderr and "Traceback" not in done.stderr
    assert tokens(cli, "casey@vendor.example") == []


def test_tokens_create_days_sets_the_expiry(cli: Server) -> None:
    from server import cli as tandem_cli
    from server.identity import auth

    assert (tandem_cli.DEFAULT_TOKEN_DAYS, tandem_cli.MAX_TOKEN_DAYS) == (
        auth.DEFAULT_TOKEN_DAYS,
        auth.MAX_TOKEN_DAYS,
    )
    assert create_user(cli, "casey@vendor.example").returncode == 0
    for days in ("1", "730"):
        done = cli.cli("tokens", "create", "casey@vendor.example", "--days", days)
        assert done.returncode == 0, done.stderr
    states = sorted(row[1] for row in tokens(cli, "casey@vendor.example"))
    assert states == ["active", "active"]


def test_token_works_as_bearer_until_revoked(cli: Server) -> None:
    assert create_user(cli, "casey@vendor.example").returncode == 0
    assert create_user(cli, "other@vendor.example").returncode == 0
    token = cli.create_token("casey@vendor.example")
    kept = cli.create_token("casey@vendor.example")
    cli.create_token("other@vendor.example")
    listed = tokens(cli, "casey@vendor.example")
    assert [row[1] for row in listed] == ["active", "active"]
    revoked_id = listed[0][0]

    cli.start()
    try:

        def status(t: str) -> int:
            return httpx.get(
                f"{cli.http}/api/plans", headers={"Authorization": f"Bearer {t}"}, timeout=10
            ).status_code

        assert status(token) == 200 and status(kept) == 200
        # Use is recorded.
        assert all(row[3] != "last used never" for row in tokens(cli, "casey@vendor.example"))

        done = cli.cli("tokens", "revoke", revoked_id)
        assert (done.returncode, done.stdout.strip()) == (0, f"revoked {revoked_id}")
        assert status(token) == 401  # at once, on the running server
        assert status(kept) == 200
        assert [row[1] for row in tokens(cli, "casey@vendor.example")] == ["revoked", "active"]
        assert [row[1] for row in tokens(cli, "other@vendor.example")] == ["active"]
    finally:
        cli.stop()

    again = cli.cli("tokens", "revoke", revoked_id)
    assert again.returncode == 1 and "no active token" in again.stderr
    assert cli.cli("tokens", "revoke", "0123456789abcdef").returncode == 1
    assert cli.cli("tokens", "list", "nobody@vendor.example").returncode == 1


# Settings and the database


def test_secret_key_is_generated_once_into_the_data_dir(database: Database, tmp_path: Path) -> None:
    data_dir = tmp_path / "not" / "yet" / "there"
    # No TANDEM_SECRET_KEY: the data directory's own key is used.
    srv = Server(data_dir=data_dir, database_url=database.url, extra_env={"TANDEM_SECRET_KEY": ""})
    assert srv.cli("db", "upgrade").returncode == 0
    key_file = data_dir / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text()
    assert len(key.strip()) >= 32

    assert create_user(srv, "casey@vendor.example").returncode == 0
    token = srv.create_token("casey@vendor.example")
    assert key_file.read_text() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    # A token signed by one process is good in another: the same key was reused.
    srv.start()
    try:
        r = httpx.get(
            f"{srv.http}/api/plans", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert r.status_code == 200
    finally:
        srv.stop()
    assert key_file.read_text() == key


def test_token_commands_on_a_new_database(cli: Server) -> None:
    # Nothing created yet, not even the schema: plain answers, no tracebacks.
    for args in (("tokens", "list", "nobody@vendor.example"), ("tokens", "revoke", "0" * 16)):
        done = cli.cli(*args)
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("error:") and "Traceback" not in done.stderr


def test_explicit_secret_key_writes_no_key_file(cli: Server) -> None:
    assert cli.env()["TANDEM_SECRET_KEY"]
    assert cli.cli("db", "upgrade").returncode == 0
    assert not (cli.data_dir / "secret_key").exists()


def current_and_head(url: str) -> tuple[str | None, str]:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    engine = persistence.make_engine(url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    return current, ScriptDirectory.from_config(cfg).get_current_head() or ""


def test_db_upgrade(cli: Server, database: Database) -> None:
    assert current_and_head(database.url)[0] is None
    for _ in range(2):  # the second run has nothing to do, and says the same
        done = cli.cli("db", "upgrade")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "database is at the newest schema"
        current, head = current_and_head(database.url)
        assert current == head


def test_users_guest_deactivate_and_reactivate(cli: Server) -> None:
    assert create_user(cli, "owner@vendor.example", "Olive").returncode == 0
    done = cli.cli(
        "users", "create", "gil@customer.example", "--name", "Gil", "--guest", stdin=PASSWORD + "\n"
    )
    assert done.returncode == 0 and "(guest)" in done.stdout, done.stderr
    assert "(staff)" in create_user(cli, "sam@vendor.example", "Sam").stdout
    assert cli.cli("users", "deactivate", "owner@vendor.example").returncode == 1
    assert cli.cli("users", "deactivate", "nobody@vendor.example").returncode == 1
    token = cli.cli("tokens", "create", "sam@vendor.example").stdout.strip()
    cli.start()
    try:
        auth = {"Authorization": f"Bearer {token}"}
        guest = cli.cli("tokens", "create", "gil@customer.example").stdout.strip()
        r = httpx.post(
            f"{cli.http}/api/plans",
            json={"title": "T", "customer": "C"},
            headers={"Authorization": f"Bearer {guest}"},
        )
        assert r.status_code == 403  # guests create no plans
        assert httpx.get(f"{cli.http}/api/plans", headers=auth).status_code == 200
        done = cli.cli("users", "deactivate", "sam@vendor.example")
        assert done.returncode == 0, done.stderr
        assert httpx.get(f"{cli.http}/api/plans", headers=auth).status_code == 401
        assert sign_in(cli, "sam@vendor.example", PASSWORD) == 401
        assert cli.cli("users", "reactivate", "sam@vendor.example").returncode == 0
        assert sign_in(cli, "sam@vendor.example", PASSWORD) == 303
        assert httpx.get(f"{cli.http}/api/plans", headers=auth).status_code == 401
    finally:
        cli.stop()


def test_a_second_server_on_one_sqlite_file_is_refused_and_the_first_goes_on(
    cli: Server, database: Database, tmp_path: Path
) -> None:
    """Each process would hold its own copy of a plan's live document: edits through one would
    never reach the other's clients. On PostgreSQL several processes share them through Redis."""
    if database.backend != "sqlite":
        pytest.skip("several processes on PostgreSQL are the fan-out's tests")
    first = cli.start()
    try:
        second = Server(data_dir=tmp_path, database_url=database.url)
        done = subprocess.run(
            [sys.executable, "-m", "server", "serve", "--port", str(second.port)],
            env=second.env(),
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        assert done.returncode != 0
        assert "already serves" in done.stderr and "PostgreSQL" in done.stderr
        assert first.proc is not None
        assert f"pid {first.proc.pid}" in done.stderr
        assert httpx.get(f"{first.http}/healthz").status_code == 200
    finally:
        assert first.stop() == 0
    # Stopped, the file is free again: a restart is not refused.
    cli.start()
    cli.stop()

"""A real Tandem server in a subprocess on a free port, on SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import httpx

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN = os.environ.get("TANDEM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Database:
    """A fresh database for one test: a SQLite file, or a new PostgreSQL database.

    ``at_head``: already migrated to the newest schema, copied from a template made once per
    test process (a file copy, or PostgreSQL's ``CREATE DATABASE ... TEMPLATE``). A server
    started on it finds nothing to migrate, which saves each test server its Alembic child
    process (about a second); the migrations themselves are tested on empty databases, in
    tests/persistence/test_migrations.py and the CLI tests.
    """

    def __init__(self, backend: str, tmp: Path, *, at_head: bool = False) -> None:
        self.backend = backend
        if backend == "sqlite":
            path = tmp / "tandem.db"
            if at_head:
                shutil.copyfile(_template("sqlite"), path)
            self.url = f"sqlite:///{path}"
            self._name = None
        else:
            import psycopg

            self._name = f"tandem_test_{uuid.uuid4().hex[:12]}"
            template = f' TEMPLATE "{_template("postgresql")}"' if at_head else ""
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self._name}"{template}')
            self.url = PG_ADMIN.rsplit("/", 1)[0] + "/" + self._name

    def drop(self) -> None:
        if self._name:
            _drop_pg(self._name)


def _drop_pg(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_TEMPLATES: dict[str, str] = {}


def _template(backend: str) -> str:
    """A database at the newest migration, made on first use in this process: a file path
    (SQLite) or a database name (PostgreSQL), removed when the process exits."""
    if backend in _TEMPLATES:
        return _TEMPLATES[backend]
    import persistence

    if backend == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="tandem-template-"))
        atexit.register(shutil.rmtree, folder, True)
        path = folder / "tandem.db"
        persistence.upgrade(f"sqlite:///{path}")
        _TEMPLATES[backend] = str(path)
    else:
        import psycopg

        name = f"tandem_template_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        atexit.register(_drop_pg, name)
        persistence.upgrade(PG_ADMIN.rsplit("/", 1)[0] + "/" + name)
        # A database is copied only while nobody is connected to it.
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        _TEMPLATES[backend] = name
    return _TEMPLATES[backend]


@dataclass
class Server:
    data_dir: Path
    database_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    _started: bool = field(default=False, init=False, repr=False)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/plans"

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "TANDEM_DATA_DIR": str(self.data_dir),
            "TANDEM_DATABASE_URL": self.database_url,
            "TANDEM_SECRET_KEY": "test-secret-key-not-for-production",
            "TANDEM_LOG_LEVEL": "info",
            # Tests sign in and connect far faster than people: rate limits are tested on
            # their own, with low limits set there.
            "TANDEM_SIGNIN_PER_MINUTE": "10000",
            "TANDEM_WS_CONNECTS_PER_MINUTE": "100000",
            **self.extra_env,
        }
        return env

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "server", *args],
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )

    def start(self) -> Server:
        """Start the server and return once it answers, on this port, as this process.

        The port was free when ``free_port()`` asked, but any socket may take it before the
        server binds it; another test's server did once, and answered this one's health check
        while this one was failing to bind. So "up" is the health check *and* uvicorn's own
        line saying this process listens on the port; a process that could not bind tries a
        new port, on its first start only (a restarted server keeps the port its clients and
        proxies know)."""
        tries = 3 if not self._started else 1
        for attempt in range(1, tries + 1):
            if self._launch():
                self._started = True
                return self
            if attempt == tries:
                break
            self.port = free_port()
        raise RuntimeError(f"server could not bind a port:\n{self.log()}")

    def _launch(self) -> bool:
        """One start on ``self.port``: True once up, False if the port was taken."""
        self.log_path = self.data_dir / f"server-{self.port}.log"
        listening = f"Uvicorn running on {self.http}".encode()
        with open(self.log_path, "ab") as log:
            since = log.tell()  # a restart appends to the same file
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server", "serve", "--port", str(self.port)],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )

        def written() -> bytes:
            with open(self.log_path or "", "rb") as f:
                f.seek(since)
                return f.read()

        # About 2 s on a quiet machine; a minute allows for a host busy with other work.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                if b"address already in use" in written():
                    return False
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                up = httpx.get(f"{self.http}/healthz", timeout=1).status_code == 200
                if up and listening in written():
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        # Not left running (with its worker) for the rest of the run: the fixture that called
        # start() never gets to stop() it.
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def stop(self) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    # Fixtures of the product itself, made the way a user makes them.

    def create_user(self, email: str, name: str, password: str = "correct horse battery") -> None:
        done = self.cli_here("users", "create", email, "--name", name, stdin=password + "\n")
        assert done.returncode == 0, done.stderr

    def create_token(self, email: str) -> str:
        done = self.cli_here("tokens", "create", email)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def cli_here(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """The same CLI command as :meth:`cli`, run in this process: a fixture's users and
        tokens cost a Python start and the server's imports each (about 0.8 s of CPU) as
        subprocesses, hundreds of times a run. The CLI itself is tested as a process in
        tests/server/test_cli.py. Inside a running event loop (the command runs its own),
        it falls back to the subprocess."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            return self.cli(*args, stdin=stdin)
        from server import cli

        settings = cli.Settings.from_env(self.env())
        parsed = cli.parser().parse_args(list(args))
        stores: list[Any] = []
        made = cli._store

        def store(settings: Any) -> Any:
            stores.append(made(settings))
            return stores[-1]

        out, err = io.StringIO(), io.StringIO()
        try:
            with (
                mock.patch.object(cli, "_store", store),
                mock.patch("sys.stdin", io.StringIO(stdin or "")),
                contextlib.redirect_stdout(out),
                contextlib.redirect_stderr(err),
            ):
                code = int(parsed.func(settings, parsed))
        finally:
            for opened in stores:
                opened.dispose()
        return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())

    def create_plan(
        self, token: str, title: str = "Joint success plan", customer: str = "Acme"
    ) -> str:
        r = httpx.post(
            f"{self.http}/api/plans",
            json={"title": title, "customer": customer},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201, r.text
        return r.json()["id"]

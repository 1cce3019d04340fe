"""The ``tandem`` command."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import logging
import os
import re
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy.orm import Session

import persistence

from .settings import Settings

if TYPE_CHECKING:  # imported where used: the CLI starts without the server's dependencies
    from .store import Store

# Here, not imported from .auth: that module hashes a password on import, which every command
# would pay for. tests/server/test_cli.py checks the two agree.
DEFAULT_TOKEN_DAYS = 365
MAX_TOKEN_DAYS = 730

log = logging.getLogger("tandem")


# Credentials in URLs never reach the logs: every token we issue starts with "td" and a letter
# (tdm_ API tokens, tdl_ share links, tde_ embeds, tdi_ invitations, and any added later), in a
# path segment or a query value (percent-encoded too, as in ?next=%2Fs%2Ftdl_...); and
# ?token= / ?code= whatever their form.
_TOKEN = re.compile(r"(?:(?<![A-Za-z0-9])|(?<=%2[Ff])|(?<=%3[Dd]))(td[a-z]_)[^/?&#%\s\"']+")
_SECRET_PARAM = re.compile(r"((?:^|[?&])(?:token|code)=)[^&\s\"']*")


def redact(text: str) -> str:
    return _SECRET_PARAM.sub(r"\1[redacted]", _TOKEN.sub(r"\1[redacted]", text))


class RedactingFormatter(logging.Formatter):
    """Redacts the whole written line, arguments and traceback included, whichever logger
    (uvicorn's access and error logs, ours, a library's) wrote it."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=_FORMAT)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # On the root's handlers, which every propagated record reaches (a logger's own filter
    # misses its children's records).
    for handler in logging.getLogger().handlers:
        handler.setFormatter(RedactingFormatter(_FORMAT))


def _store(settings: Settings) -> Store:
    from .store import Store

    return Store.from_url(settings.database_url)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app
    from .http import forwarded_allow_ips, with_header_timeout
    from .serve import serve

    _one_server_per_sqlite_file(settings)
    # Migrations, if any, in a child process: Alembic would stay resident for good.
    persistence.upgrade(settings.database_url, isolated=True)
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    # The worker child reaches this server at the address it really binds.
    settings = dataclasses.replace(settings, host=host, port=port)
    log.info(
        "serving on http://%s:%d (database: %s)", host, port, settings.database_url.split("://")[0]
    )
    if settings.worker == "process":
        _fork_worker(settings)
    # uvicorn re-raises SIGTERM once its graceful shutdown is done, so with the default handler
    # a clean stop (every room flushed and checkpointed) would end as "killed by SIGTERM"
    # (exit -15/143). Exit 0 instead, so supervisors and scripts see a clean stop as one.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level,
        # Frames up to our own limit reach the room (which closes 4413 past it); uvicorn's
        # cap only stops absurd frames before they are buffered whole.
        ws_max_size=settings.max_frame_bytes * 2,
        # Named, not "auto": server/live/connection.py writes broadcast frames to this protocol's
        # transport itself, and relies on its flow control (see Connection). Its shutdown also
        # closes every websocket with 1012, which draining relies on (server/serve.py).
        ws="websockets-sansio",
        workers=1,
        timeout_graceful_shutdown=10,
        http=with_header_timeout(settings.header_timeout_seconds),
        timeout_keep_alive=settings.keep_alive_seconds,
        **forwarded_allow_ips(settings.trusted_proxies),
        # Our logging setup (with the redaction filter), not uvicorn's own.
        log_config=None,
    )
    # SIGTERM drains first (/readyz 503, new sockets sent elsewhere), then shuts down.
    return serve(config, app.state.services.readiness, settings.drain_seconds)


def _fork_worker(settings: Settings) -> None:
    """The worker child, forked now (the server's modules imported, no event loop or thread
    yet) so that it shares their memory with the server: see server/worker/early.py."""
    from sqlalchemy.orm import configure_mappers

    from .settings import server_url
    from .worker import fork_worker

    url = server_url(settings)
    # Both would configure the ORM's mappers on their first query, each in pages of its own:
    # done once here, before the fork, it stays shared (about 1.5 MB of PSS).
    configure_mappers()

    def worker(server: int) -> int:
        _release_serve_lock()  # the server's to hold: a worker outliving it must not keep it
        return cmd_worker(settings, argparse.Namespace(child=server, server_url=url))

    fork_worker(worker)


# The open lock file of a `tandem serve` on SQLite, held for the life of the process.
_serve_lock: int | None = None


def _one_server_per_sqlite_file(settings: Settings) -> None:
    """Refuse a second `tandem serve` on the same SQLite file: each process would hold its
    own copy of a plan's live document, and edits made through one would never reach the
    other's clients. Several processes need PostgreSQL and TANDEM_REDIS_URL. The lock is
    the kernel's (flock), so it goes with the process however the process ends."""
    global _serve_lock
    import fcntl

    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    if not url.get_backend_name().startswith("sqlite") or not url.database:
        return
    if url.database == ":memory:":
        return
    path = Path(url.database).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{path}.serve-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise SystemExit(
            f"error: another `tandem serve` (pid {holder}) already serves {path}. SQLite is one "
            "process's database: stop that one, or run several processes on PostgreSQL with "
            "TANDEM_REDIS_URL set."
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _serve_lock = fd


def _release_serve_lock() -> None:
    global _serve_lock
    if _serve_lock is not None:
        os.close(_serve_lock)
        _serve_lock = None


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from .settings import server_url
    from .worker import die_with_parent, run_worker

    if args.child is None:
        persistence.upgrade(settings.database_url)
    else:
        die_with_parent(args.child)  # the server upgraded the database before starting it
    # Derived work yields the CPU to the server on the same machine: on a busy host the
    # kernel runs the edit path first, and the worker takes what is left.
    if settings.worker_nice:
        os.nice(settings.worker_nice)
    url = args.server_url or server_url(settings)
    asyncio.run(run_worker(settings, server_url=url, child=args.child is not None))
    return 0


def cmd_db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    persistence.upgrade(settings.database_url)
    print("database is at the newest schema")
    return 0


def _read_password(prompt: str) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(prompt)
    if getpass.getpass("Again: ") != first:
        raise SystemExit("the two passwords differ")
    return first


def cmd_users_create(settings: Settings, args: argparse.Namespace) -> int:
    from .identity import MIN_PASSWORD, hash_password, password_too_short, valid_email

    # Checked here because the columns are VARCHAR: PostgreSQL refused longer values with a
    # traceback (and SQLite stored them), and an empty name or a non-address was accepted.
    if not args.name.strip() or len(args.name.strip()) > 200:
        print("error: the name must have 1 to 200 characters", file=sys.stderr)
        return 2
    if valid_email(args.email) is None:
        print("error: the email must be an address of at most 320 characters", file=sys.stderr)
        return 2
    persistence.upgrade(settings.database_url)
    password = _read_password("Password: ")
    if password_too_short(password):
        print(f"error: the password must have at least {MIN_PASSWORD} characters", file=sys.stderr)
        return 2
    store = _store(settings)

    def create(s: Session) -> persistence.UserRecord:
        first = persistence.count_users(session=s) == 0
        return persistence.create_user(
            session=s,
            email=args.email,
            name=args.name.strip(),
            password_hash=hash_password(password),
            is_owner=first,
            # The first account owns the workspace and is always staff.
            is_staff=first or not args.guest,
        )

    try:
        user = asyncio.run(store.run(create))
    except persistence.DuplicateEmail:
        print(f"error: a user with email {args.email} already exists", file=sys.stderr)
        return 1
    kind = " (workspace owner)" if user.is_owner else " (staff)" if user.is_staff else " (guest)"
    print(f"created user {user.id} <{user.email}>{kind}")
    return 0


def _set_active(settings: Settings, email: str, active: bool) -> int:
    persistence.upgrade(settings.database_url)
    store = _store(settings)

    def change(s: Session) -> persistence.UserRecord | Literal[False] | None:
        found = persistence.find_user(session=s, email=email)
        if found is None:
            return None
        if found[0].is_owner and not active:
            return False
        return persistence.set_active(session=s, user_id=found[0].id, active=active)

    user = asyncio.run(store.run(change))
    if user is None:
        print(f"error: no user with email {email}", file=sys.stderr)
        return 1
    if user is False:
        print("error: the workspace owner cannot be deactivated", file=sys.stderr)
        return 1
    if active:
        print(f"reactivated {user.email} (its old API tokens stay revoked)")
    else:
        print(f"deactivated {user.email}: its sessions and API tokens are revoked")
    return 0


def cmd_users_deactivate(settings: Settings, args: argparse.Namespace) -> int:
    return _set_active(settings, args.email, False)


def cmd_users_reactivate(settings: Settings, args: argparse.Namespace) -> int:
    return _set_active(settings, args.email, True)


def _user_id(store: Store, email: str) -> int | None:
    found = asyncio.run(store.run(lambda s: persistence.find_user(session=s, email=email)))
    return found[0].id if found else None


def cmd_tokens_create(settings: Settings, args: argparse.Namespace) -> int:
    from .identity import Auth

    if args.label is not None and len(args.label) > 200:
        # api_tokens.label is VARCHAR(200): PostgreSQL refused a longer one with a traceback.
        print("error: the label must have at most 200 characters", file=sys.stderr)
        return 2
    if not 1 <= args.days <= MAX_TOKEN_DAYS:
        print(f"error: --days must be from 1 to {MAX_TOKEN_DAYS}", file=sys.stderr)
        return 2
    persistence.upgrade(settings.database_url)
    store = _store(settings)
    user_id = _user_id(store, args.email)
    if user_id is None:
        print(f"error: no user with email {args.email}", file=sys.stderr)
        return 1
    auth = Auth(settings.secret_key, store, session_days=settings.session_days)
    token, record = asyncio.run(auth.create_token(user_id, label=args.label, days=args.days))
    print(token)
    print(f"token id {record.id}; revoke with: tandem tokens revoke {record.id}", file=sys.stderr)
    return 0


def cmd_tokens_list(settings: Settings, args: argparse.Namespace) -> int:
    # Like the other commands: on a new database this answered with a "no such table" traceback.
    persistence.upgrade(settings.database_url)
    store = _store(settings)
    user_id = _user_id(store, args.email)
    if user_id is None:
        print(f"error: no user with email {args.email}", file=sys.stderr)
        return 1
    tokens = asyncio.run(store.run(lambda s: persistence.list_tokens(session=s, user_id=user_id)))
    now = datetime.now(UTC)
    for t in tokens:
        expired = t.expires_at is not None and t.expires_at <= now
        state = "revoked" if t.revoked_at else "expired" if expired else "active"
        expiry = t.expires_at.isoformat() if t.expires_at else "never"
        used = t.last_used_at.isoformat() if t.last_used_at else "never"
        print(f"{t.id}\t{state}\texpires {expiry}\tlast used {used}\t{t.label or ''}")
    return 0


def cmd_tokens_revoke(settings: Settings, args: argparse.Namespace) -> int:
    # Like the other commands: on a new database this answered with a "no such table" traceback.
    persistence.upgrade(settings.database_url)
    store = _store(settings)
    if asyncio.run(
        store.run(lambda s: persistence.revoke_token(session=s, token_id=args.token_id))
    ):
        print(f"revoked {args.token_id}")
        return 0
    print(f"error: no active token {args.token_id}", file=sys.stderr)
    return 1


def cmd_plans_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    from .plan import rebuild

    persistence.upgrade(settings.database_url)
    store = _store(settings)
    if args.all:
        ids = [p.id for p in asyncio.run(store.run(lambda s: persistence.list_plans(session=s)))]
    else:
        plan_id = args.plan_id
        found = asyncio.run(store.run(lambda s: persistence.get_plan(session=s, plan_id=plan_id)))
        if found is None:
            print(f"error: no plan with id {plan_id}", file=sys.stderr)
            return 1
        ids = [found.id]
    for plan_id in ids:
        step = asyncio.run(rebuild(store, plan_id))
        print(f"{plan_id}: rebuilt up to log id {step.upto_id}, {len(step.events)} changes")
    return 0


def cmd_notifications_run(settings: Settings, args: argparse.Namespace) -> int:
    """One reminder pass (due soon, overdue, escalation) as if at ``--at``, then send what is
    due."""
    from .identity import Signer
    from .notify import Links, run_pass
    from .notify.setup import dispatcher

    at = datetime.now(UTC)
    if args.at:
        try:
            at = datetime.fromisoformat(args.at)
        except ValueError:
            print("error: --at must be an ISO-8601 date or time", file=sys.stderr)
            return 2
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
    persistence.upgrade(settings.database_url)
    store = _store(settings)
    links = Links(
        Signer(settings.secret_key),
        settings.base_url or f"http://{settings.host}:{settings.port}",
        link_days=settings.notify_link_days,
    )

    async def run() -> int:
        queued = await run_pass(
            store,
            links,
            at,
            soon_days=settings.notify_due_soon_days,
            escalate_days=settings.notify_escalate_days,
        )
        if queued is None:
            print("another process is running the reminders; nothing done")
            return 0
        for q in queued:
            print(f"queued {q.kind} to {q.email}: {q.subject}")
        print(f"{len(queued)} notification(s) queued")
        # Mail (when an SMTP server is configured) and the plans' Slack channels.
        sender = dispatcher(settings, store, links)
        while await sender.pass_once():
            pass
        return 0

    try:
        return asyncio.run(run())
    finally:
        store.dispose()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tandem", description="Live editor for Mutual Success Plans")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web server")
    serve.add_argument("--host", help="address to bind (default TANDEM_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default TANDEM_PORT or 8000)")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser(
        "worker",
        help="keep plans' tasks, tables and commitment history current from the update log "
        "(`serve` runs one itself unless TANDEM_WORKER=off)",
    )
    worker.add_argument(
        "--server-url",
        help="where to reach the server for id assignment (default TANDEM_WORKER_SERVER_URL, "
        "or TANDEM_HOST and TANDEM_PORT)",
    )
    # Internal: started by `serve`, whose pid this is; plan ids to materialise now on stdin.
    worker.add_argument("--child", type=int, metavar="PID", help=argparse.SUPPRESS)
    worker.set_defaults(func=cmd_worker)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="db", required=True)
    db.add_parser("upgrade", help="apply schema migrations").set_defaults(func=cmd_db_upgrade)

    users = sub.add_parser("users", help="manage people").add_subparsers(
        dest="users", required=True
    )
    uc = users.add_parser("create", help="create a user (password from stdin if not a terminal)")
    uc.add_argument("email")
    uc.add_argument("--name", required=True)
    uc.add_argument(
        "--guest",
        action="store_true",
        help="a guest (customer person: only invited plans, always customer side), not staff",
    )
    uc.set_defaults(func=cmd_users_create)
    ud = users.add_parser("deactivate", help="stop EMAIL signing in; end its sessions and tokens")
    ud.add_argument("email")
    ud.set_defaults(func=cmd_users_deactivate)
    ur = users.add_parser("reactivate", help="let a deactivated EMAIL sign in again")
    ur.add_argument("email")
    ur.set_defaults(func=cmd_users_reactivate)

    tokens = sub.add_parser("tokens", help="personal API tokens").add_subparsers(
        dest="tokens", required=True
    )
    tc = tokens.add_parser("create", help="print a new API token for EMAIL on stdout")
    tc.add_argument("email")
    tc.add_argument("--label", help="what the token is for")
    tc.add_argument(
        "--days",
        type=int,
        default=DEFAULT_TOKEN_DAYS,
        help=f"days until it expires, 1 to {MAX_TOKEN_DAYS} (default {DEFAULT_TOKEN_DAYS})",
    )
    tc.set_defaults(func=cmd_tokens_create)
    tl = tokens.add_parser("list", help="list EMAIL's tokens")
    tl.add_argument("email")
    tl.set_defaults(func=cmd_tokens_list)
    tr = tokens.add_parser("revoke", help="revoke a token by id")
    tr.add_argument("token_id")
    tr.set_defaults(func=cmd_tokens_revoke)

    plans = sub.add_parser("plans", help="plan maintenance").add_subparsers(
        dest="plans", required=True
    )
    pr = plans.add_parser(
        "rebuild",
        help="rebuild plans' tasks, tables and commitment history from the update log alone",
    )
    which = pr.add_mutually_exclusive_group(required=True)
    which.add_argument("plan_id", nargs="?", help="the plan to rebuild")
    which.add_argument("--all", action="store_true", help="rebuild every plan")
    pr.set_defaults(func=cmd_plans_rebuild)

    notifications = sub.add_parser("notifications", help="reminders and the outbox")
    nsub = notifications.add_subparsers(dest="notifications", required=True)
    nr = nsub.add_parser(
        "run",
        help="queue due-soon, overdue and escalation reminders once (as if at --at), then send",
    )
    nr.add_argument("--at", help="ISO-8601 date or time to run as of (default: now)")
    nr.set_defaults(func=cmd_notifications_run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    _setup_logging(settings.log_level)
    return int(args.func(settings, args))


if __name__ == "__main__":
    raise SystemExit(main())

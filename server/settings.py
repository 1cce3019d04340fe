"""Settings, read once from ``TANDEM_*`` environment variables into a frozen dataclass."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

# Every variable, its default and what it does; the README's settings table is this list.
DOCUMENTED = {
    "TANDEM_DATA_DIR": ("./data", "Where the SQLite database and the generated secret key live."),
    "TANDEM_DATABASE_URL": (
        "sqlite:///<data dir>/tandem.db",
        "SQLAlchemy URL; postgresql://user@host/db for PostgreSQL.",
    ),
    "TANDEM_SECRET_KEY": (
        "generated once into <data dir>/secret_key",
        "Signs cookies and tokens. Changing it signs everyone out and voids every token.",
    ),
    "TANDEM_HOST": ("127.0.0.1", "Address `tandem serve` binds to."),
    "TANDEM_PORT": ("8000", "Port `tandem serve` listens on."),
    "TANDEM_MAX_FRAME_BYTES": ("8388608", "Largest websocket frame accepted (close 4413 beyond)."),
    "TANDEM_MAX_REQUEST_BYTES": ("1048576", "Largest HTTP request body accepted (413 beyond)."),
    "TANDEM_MAX_QUEUED_BYTES": (
        "33554432",
        "Unsent bytes a websocket client may fall behind by before it is dropped (4408).",
    ),
    "TANDEM_ROOM_IDLE_SECONDS": (
        "30",
        "How long an empty room stays loaded before it is unloaded.",
    ),
    "TANDEM_CHECKPOINT_EVERY": ("500", "Write a checkpoint after this many logged updates."),
    "TANDEM_MATERIALISE_QUIET_SECONDS": (
        "0.6",
        "Tasks and the commitment history are updated this long after the last edit of a plan.",
    ),
    "TANDEM_MATERIALISE_MAX_WAIT_SECONDS": (
        "3",
        "...and at least this often while editing goes on.",
    ),
    "TANDEM_WORKER": (
        "process",
        "`process`: `tandem serve` runs the worker (tables, commitment history) as its child; "
        "`off`: it does not (run `tandem worker` yourself).",
    ),
    "TANDEM_WORKER_SERVER_URL": (
        "http://<TANDEM_HOST>:<TANDEM_PORT>",
        "Where `tandem worker` reaches the server to give new tasks their ids (loopback).",
    ),
    "TANDEM_WORKER_POLL_SECONDS": ("0.1", "How often the worker looks for new log entries."),
    "TANDEM_WORKER_LEASE_SECONDS": (
        "10",
        "PostgreSQL: one worker at a time holds the worker lease; when its holder dies, "
        "another process's worker takes over after at most this long.",
    ),
    "TANDEM_WORKER_NICE": (
        "10",
        "The worker's scheduling priority below the server's (0-19; 0: the same).",
    ),
    "TANDEM_SESSION_DAYS": ("14", "How long a sign-in lasts."),
    "TANDEM_SECURE_COOKIES": ("false", "Mark cookies Secure (set true behind HTTPS)."),
    "TANDEM_LOG_LEVEL": ("info", "Python log level."),
    "TANDEM_BASE_URL": (
        "(from the request)",
        "Public URL of the server, used in links sent by email (e.g. https://tandem.example.com).",
    ),
    "TANDEM_SMTP_HOST": (
        "(unset: mail is kept in the outbox only)",
        "SMTP server for invitations and codes.",
    ),
    "TANDEM_SMTP_PORT": ("25", "SMTP port."),
    "TANDEM_SMTP_FROM": ("tandem@localhost", "Sender address of Tandem's mail."),
    "TANDEM_SMTP_USER": ("(unset: no login)", "User name to log in to the SMTP server with."),
    "TANDEM_SMTP_PASSWORD": ("(unset)", "Password for TANDEM_SMTP_USER."),
    "TANDEM_SMTP_STARTTLS": (
        "false",
        "Upgrade the SMTP connection with STARTTLS (certificate checked) before logging in.",
    ),
    "TANDEM_SMTP_CA_FILE": (
        "(unset: the system's certificate authorities)",
        "PEM file of the certificate authorities to trust for STARTTLS instead (a private relay).",
    ),
    "TANDEM_NOTIFY_RETRY_SECONDS": (
        "30",
        "A notification that could not be sent is tried again after this, doubling each time "
        "(at most an hour apart, 12 tries).",
    ),
    "TANDEM_NOTIFY_LINK_DAYS": (
        "14",
        "How long a notification's links (mark complete, move the due date, I'm blocked) work.",
    ),
    "TANDEM_NOTIFY_DUE_SOON_DAYS": (
        "2",
        "Owners are reminded this many days before a task's due date (and after it, overdue).",
    ),
    "TANDEM_NOTIFY_ESCALATE_DAYS": (
        "3",
        "A task this many days overdue is escalated to the plan's owners; 0: never.",
    ),
    "TANDEM_NOTIFY_SETTLE_SECONDS": (
        "60",
        "A key result's new value or a risk raised to high is sent this long after it is typed, "
        "with the value as it ended.",
    ),
    "TANDEM_NOTIFY_CLOCK_SECONDS": (
        "300",
        "How often the server looks for due-soon and overdue tasks; 0: never (use cron).",
    ),
    "TANDEM_WEBHOOK_ALLOW_HOSTS": (
        "(empty)",
        "Comma-separated hosts a Slack webhook URL may name although they resolve to a private "
        "or loopback address, over http too (internal relays, tests).",
    ),
    "TANDEM_SLACK_SIGNING_SECRET": (
        "(unset: no /slack/interactivity)",
        "Your Slack app's signing secret: turns on POST /slack/interactivity, so the Mark "
        "complete button in Slack completes the task in place.",
    ),
    "TANDEM_EMBED_ALLOWED_ORIGINS": (
        "(empty: embedding refused)",
        "Space-separated origins that may frame the embed view, e.g. https://*.lightning.force.com.",
    ),
    "TANDEM_SIGNIN_PER_MINUTE": (
        "5",
        "Sign-in attempts per minute per address and email (429 beyond).",
    ),
    "TANDEM_CODES_PER_MINUTE": ("5", "One-time codes sent or tried per minute per address."),
    "TANDEM_WS_CONNECTS_PER_MINUTE": (
        "120",
        "Websocket connects per minute per address (close 4429).",
    ),
    "TANDEM_MAX_UNAUTHENTICATED_SOCKETS": (
        "100",
        "Sockets that may be waiting to authenticate at once.",
    ),
    "TANDEM_TRUSTED_PROXIES": (
        "(empty: no proxy trusted)",
        "Space-separated addresses of reverse proxies whose X-Forwarded-For/-Proto are believed.",
    ),
    "TANDEM_HEADER_TIMEOUT_SECONDS": (
        "10",
        "A connection that sends no complete request head in this long is closed.",
    ),
    "TANDEM_BODY_TIMEOUT_SECONDS": (
        "30",
        "A request body must arrive whole within this long of its first byte (408 beyond).",
    ),
    "TANDEM_KEEP_ALIVE_SECONDS": ("5", "An idle keep-alive connection is closed after this long."),
    "TANDEM_MAX_CONCURRENT_HASHES": (
        "2",
        "Password hashes (64 MiB each) computed at once; more sign-ins wait their turn.",
    ),
    "TANDEM_RECHECK_SECONDS": (
        "5",
        "How often open websockets' sessions, tokens and links are checked again (4401 if gone).",
    ),
    "TANDEM_REDIS_URL": (
        "(unset: one process)",
        "redis://host:port/db: several `tandem serve` processes (on PostgreSQL) share each "
        "plan's edits, presence, closings and rate limits through this Redis.",
    ),
    "TANDEM_DRAIN_SECONDS": (
        "0",
        "After SIGTERM, how long /readyz answers 503 (and new websockets are sent elsewhere "
        "with 1012) before the process stops listening and closes its sockets with 1012.",
    ),
    "TANDEM_METRICS_TOKEN": (
        "(unset: no /metrics)",
        "Serves Prometheus metrics at /metrics to requests with `Authorization: Bearer <token>`.",
    ),
}


WORKER_MODES = ("process", "off")


def _choice(env: dict[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, default).strip().lower()
    if value not in choices:
        raise SystemExit(f"error: {name} must be one of {', '.join(choices)}, not {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    secret_key: str
    host: str = "127.0.0.1"
    port: int = 8000
    max_frame_bytes: int = 8 * 1024 * 1024
    max_request_bytes: int = 1024 * 1024
    max_queued_bytes: int = 32 * 1024 * 1024
    room_idle_seconds: float = 30.0
    checkpoint_every: int = 500
    materialise_quiet_seconds: float = 0.6
    materialise_max_wait_seconds: float = 3.0
    worker: str = "process"
    worker_server_url: str = ""
    worker_poll_seconds: float = 0.1
    worker_nice: int = 10
    worker_lease_seconds: float = 10.0
    session_days: int = 14
    secure_cookies: bool = False
    log_level: str = "info"
    base_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "tandem@localhost"
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_ca_file: str = ""
    notify_retry_seconds: float = 30.0
    notify_link_days: int = 14
    notify_due_soon_days: int = 2
    notify_escalate_days: int = 3
    notify_settle_seconds: float = 60.0
    notify_clock_seconds: float = 300.0
    webhook_allow_hosts: tuple[str, ...] = ()
    slack_signing_secret: str = ""
    embed_allowed_origins: tuple[str, ...] = ()
    signin_per_minute: int = 5
    codes_per_minute: int = 5
    ws_connects_per_minute: int = 120
    max_unauthenticated_sockets: int = 100
    trusted_proxies: tuple[str, ...] = ()
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    keep_alive_seconds: int = 5
    max_concurrent_hashes: int = 2
    recheck_seconds: float = 5.0
    drain_seconds: float = 0.0
    metrics_token: str = ""
    redis_url: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("TANDEM_DATA_DIR", "./data")).resolve()
        url = env.get("TANDEM_DATABASE_URL") or f"sqlite:///{data_dir / 'tandem.db'}"
        return cls(
            data_dir=data_dir,
            database_url=url,
            secret_key=env.get("TANDEM_SECRET_KEY") or _stored_secret(data_dir),
            host=env.get("TANDEM_HOST", "127.0.0.1"),
            port=int(env.get("TANDEM_PORT", "8000")),
            max_frame_bytes=int(env.get("TANDEM_MAX_FRAME_BYTES", str(8 * 1024 * 1024))),
            max_request_bytes=int(env.get("TANDEM_MAX_REQUEST_BYTES", str(1024 * 1024))),
            max_queued_bytes=int(env.get("TANDEM_MAX_QUEUED_BYTES", str(32 * 1024 * 1024))),
            room_idle_seconds=float(env.get("TANDEM_ROOM_IDLE_SECONDS", "30")),
            checkpoint_every=int(env.get("TANDEM_CHECKPOINT_EVERY", "500")),
            materialise_quiet_seconds=float(env.get("TANDEM_MATERIALISE_QUIET_SECONDS", "0.6")),
            materialise_max_wait_seconds=float(env.get("TANDEM_MATERIALISE_MAX_WAIT_SECONDS", "3")),
            worker=_choice(env, "TANDEM_WORKER", "process", WORKER_MODES),
            worker_server_url=env.get("TANDEM_WORKER_SERVER_URL", "").rstrip("/"),
            worker_poll_seconds=float(env.get("TANDEM_WORKER_POLL_SECONDS", "0.1")),
            worker_nice=_worker_nice(env.get("TANDEM_WORKER_NICE", "10")),
            worker_lease_seconds=max(1.0, float(env.get("TANDEM_WORKER_LEASE_SECONDS", "10"))),
            session_days=int(env.get("TANDEM_SESSION_DAYS", "14")),
            secure_cookies=env.get("TANDEM_SECURE_COOKIES", "false").lower()
            in ("1", "true", "yes"),
            log_level=env.get("TANDEM_LOG_LEVEL", "info").lower(),
            base_url=env.get("TANDEM_BASE_URL", "").rstrip("/"),
            smtp_host=env.get("TANDEM_SMTP_HOST", ""),
            smtp_port=int(env.get("TANDEM_SMTP_PORT", "25")),
            smtp_from=env.get("TANDEM_SMTP_FROM", "tandem@localhost"),
            smtp_user=env.get("TANDEM_SMTP_USER", ""),
            smtp_password=env.get("TANDEM_SMTP_PASSWORD", ""),
            smtp_starttls=env.get("TANDEM_SMTP_STARTTLS", "false").lower() in ("1", "true", "yes"),
            smtp_ca_file=env.get("TANDEM_SMTP_CA_FILE", ""),
            notify_retry_seconds=float(env.get("TANDEM_NOTIFY_RETRY_SECONDS", "30")),
            notify_link_days=int(env.get("TANDEM_NOTIFY_LINK_DAYS", "14")),
            notify_due_soon_days=int(env.get("TANDEM_NOTIFY_DUE_SOON_DAYS", "2")),
            notify_escalate_days=int(env.get("TANDEM_NOTIFY_ESCALATE_DAYS", "3")),
            notify_settle_seconds=float(env.get("TANDEM_NOTIFY_SETTLE_SECONDS", "60")),
            notify_clock_seconds=float(env.get("TANDEM_NOTIFY_CLOCK_SECONDS", "300")),
            webhook_allow_hosts=tuple(
                h.strip().lower().strip("[]")
                for h in env.get("TANDEM_WEBHOOK_ALLOW_HOSTS", "").split(",")
                if h.strip()
            ),
            slack_signing_secret=env.get("TANDEM_SLACK_SIGNING_SECRET", ""),
            embed_allowed_origins=tuple(env.get("TANDEM_EMBED_ALLOWED_ORIGINS", "").split()),
            signin_per_minute=int(env.get("TANDEM_SIGNIN_PER_MINUTE", "5")),
            codes_per_minute=int(env.get("TANDEM_CODES_PER_MINUTE", "5")),
            ws_connects_per_minute=int(env.get("TANDEM_WS_CONNECTS_PER_MINUTE", "120")),
            max_unauthenticated_sockets=int(env.get("TANDEM_MAX_UNAUTHENTICATED_SOCKETS", "100")),
            trusted_proxies=tuple(env.get("TANDEM_TRUSTED_PROXIES", "").replace(",", " ").split()),
            header_timeout_seconds=float(env.get("TANDEM_HEADER_TIMEOUT_SECONDS", "10")),
            body_timeout_seconds=float(env.get("TANDEM_BODY_TIMEOUT_SECONDS", "30")),
            keep_alive_seconds=int(env.get("TANDEM_KEEP_ALIVE_SECONDS", "5")),
            max_concurrent_hashes=max(1, int(env.get("TANDEM_MAX_CONCURRENT_HASHES", "2"))),
            recheck_seconds=float(env.get("TANDEM_RECHECK_SECONDS", "5")),
            drain_seconds=max(0.0, float(env.get("TANDEM_DRAIN_SECONDS", "0"))),
            metrics_token=env.get("TANDEM_METRICS_TOKEN", ""),
            redis_url=_redis_url(env.get("TANDEM_REDIS_URL", "").strip(), url),
        )


def server_url(settings: Settings) -> str:
    """Where a worker on this machine reaches the server: TANDEM_WORKER_SERVER_URL, or the
    address it binds to (loopback when it binds every address)."""
    if settings.worker_server_url:
        return settings.worker_server_url
    host = settings.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _stored_secret(data_dir: Path) -> str:
    """The data directory's own secret, made on first use and readable by its owner only."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def _worker_nice(value: str) -> int:
    try:
        nice = int(value)
    except ValueError:
        nice = -1
    if not 0 <= nice <= 19:
        raise SystemExit(
            f"error: TANDEM_WORKER_NICE must be a whole number from 0 to 19, not {value!r}"
        )
    return nice


def _redis_url(value: str, database_url: str) -> str:
    """TANDEM_REDIS_URL, refused with SQLite: several processes need one shared database."""
    if not value:
        return ""
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise SystemExit(
            f"error: TANDEM_REDIS_URL must be a redis://, rediss:// or unix:// URL, not {value!r}"
        )
    if database_url.startswith("sqlite"):
        raise SystemExit(
            "error: TANDEM_REDIS_URL is for several server processes, which need one shared "
            "PostgreSQL database; SQLite is one process's file. Set TANDEM_DATABASE_URL to a "
            "postgresql:// URL, or unset TANDEM_REDIS_URL to run one process."
        )
    return value

"""The services every route receives, built once by the composition root (``server.app``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.templating import Jinja2Templates

from .identity import Auth, Limits, Signer
from .live import Applied, LoopLag, RoomManager
from .mail import Mailer
from .notify import Links
from .readiness import Readiness
from .settings import Settings
from .store import Store
from .worker import WorkerTables


@dataclass
class Services:
    settings: Settings
    store: Store
    auth: Auth
    rooms: RoomManager
    # Waits until a plan's tables are current (the worker process keeps them so).
    materialiser: WorkerTables
    templates: Jinja2Templates
    signer: Signer
    limits: Limits
    mailer: Mailer
    links: Links  # signs and reads notifications' action and unsubscribe links
    readiness: Readiness  # /readyz: database and Redis reachable, not draining
    lag: LoopLag = field(default_factory=LoopLag)
    applied: Applied = field(default_factory=Applied)

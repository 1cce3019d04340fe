"""The composition root: builds the services from settings, registers the hook subscribers, and
hands them to the HTTP wing. Nothing imports this but the CLI and the tests' server launcher."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette

from . import notify
from .hooks import Hooks
from .http import make_templates, manifest, web_app
from .identity import Auth, Limits, Signer
from .live import Applied, CredentialRecheck, LoopLag, RoomManager, redis_fanout
from .mail import Mailer
from .readiness import Readiness
from .services import Services
from .settings import Settings, server_url
from .shared import redis_client
from .store import Store
from .worker import WorkerChild, WorkerTables

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> Starlette:
    store = Store.from_url(settings.database_url)
    # With TANDEM_REDIS_URL, the processes serving one database share state through Redis.
    redis = redis_client(settings.redis_url)
    hooks = Hooks()
    rooms = RoomManager(
        store,
        hooks=hooks,
        idle_seconds=settings.room_idle_seconds,
        checkpoint_every=settings.checkpoint_every,
    )
    # The plans' tables and commitment history are kept by the worker process, which follows
    # the update log (server/worker): started here as a child, or run on its own.
    child = WorkerChild(server_url(settings)) if settings.worker == "process" else None
    tables = WorkerTables(store, child)
    # The one list of reactions to what this process's rooms commit (live.Committed), called
    # in this order; reactions to the plan events (plan.TaskCompleted, ...) are the worker's.
    applied = Applied()
    hooks.register(
        [
            applied.on_event,
        ]
    )
    assets = manifest()
    svc = Services(
        settings=settings,
        store=store,
        auth=Auth(
            settings.secret_key,
            store,
            session_days=settings.session_days,
            max_hashes=settings.max_concurrent_hashes,
        ),
        rooms=rooms,
        materialiser=tables,
        templates=make_templates(assets),
        signer=Signer(settings.secret_key),
        limits=Limits(
            signin=settings.signin_per_minute,
            codes=settings.codes_per_minute,
            ws_connects=settings.ws_connects_per_minute,
            redis=redis,  # shared by every process when there is one
        ),
        mailer=Mailer(
            store,
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            user=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            ca_file=settings.smtp_ca_file,
        ),
        links=notify.links(settings, server_url(settings)),
        readiness=Readiness(store, redis),
        lag=LoopLag(),
        applied=applied,
    )

    recheck = CredentialRecheck(store, rooms, interval=settings.recheck_seconds)

    # Several processes share the rooms through Redis (server/live/fanout.py); without it,
    # nothing of Redis is imported.
    fanout = redis_fanout(settings.redis_url, rooms) if settings.redis_url else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Rooms close first; the worker then materialises their last commits and stops.
        async with contextlib.AsyncExitStack() as stack:
            if child is not None:
                await stack.enter_async_context(child)
            if fanout is not None:
                await stack.enter_async_context(fanout)  # stops after the rooms
            await stack.enter_async_context(rooms)
            background = await stack.enter_async_context(anyio.create_task_group())
            background.start_soon(store.keep_wal_short)
            background.start_soon(recheck.run)
            background.start_soon(svc.lag.run)
            # What startup allocated (modules, routes, templates, the ORM's registries) lives
            # as long as the process: keep it out of the collector's full passes, which
            # otherwise walk it all and stall every room for tens of ms (bench/ measures it).
            gc.collect()
            gc.freeze()
            yield
            svc.readiness.drain()  # whatever stops the server, it is not ready from here on
            background.cancel_scope.cancel()
        if redis is not None:
            await redis.aclose()
        store.dispose()
        log.info(
            "shut down cleanly: every room flushed (event loop lag at worst %.1f ms)",
            svc.lag.max_ms,
        )

    return web_app(svc, assets, lifespan)

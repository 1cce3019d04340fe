"""The composition root: builds the services from settings, registers the hook subscribers, and
hands them to the HTTP wing. Nothing imports this but the CLI and the tests' server launcher."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette

from .hooks import Hooks
from .http import make_templates, manifest, web_app
from .identity import Auth, Limits, Signer
from .live import Applied, CredentialRecheck, LoopLag, RoomManager
from .mail import Mailer
from .plan import Materialiser
from .services import Services
from .settings import Settings
from .store import Store

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> Starlette:
    store = Store.from_url(settings.database_url)
    hooks = Hooks()
    rooms = RoomManager(
        store,
        hooks=hooks,
        idle_seconds=settings.room_idle_seconds,
        checkpoint_every=settings.checkpoint_every,
    )
    materialiser = Materialiser(
        store,
        rooms,
        hooks=hooks,
        quiet=settings.materialise_quiet_seconds,
        max_wait=settings.materialise_max_wait_seconds,
    )
    # The one list of reactions to what rooms commit (live.Committed) and to each change the
    # materialiser writes (plan.TaskCompleted, plan.TaskReassigned, ...), called in this order.
    # A new reaction is one more entry here; rooms and the materialiser do not change for it.
    applied = Applied()
    hooks.register(
        [
            materialiser.on_event,
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
        materialiser=materialiser,
        templates=make_templates(assets),
        signer=Signer(settings.secret_key),
        limits=Limits(
            signin=settings.signin_per_minute,
            codes=settings.codes_per_minute,
            ws_connects=settings.ws_connects_per_minute,
        ),
        mailer=Mailer(
            store, host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_from
        ),
        lag=LoopLag(),
        applied=applied,
    )

    recheck = CredentialRecheck(store, rooms, interval=settings.recheck_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Rooms close first; their last commits are then materialised on the way out.
        async with materialiser, rooms, anyio.create_task_group() as background:
            background.start_soon(store.keep_wal_short)
            background.start_soon(recheck.run)
            background.start_soon(svc.lag.run)
            # What startup allocated (modules, routes, templates, the ORM's registries) lives
            # as long as the process: keep it out of the collector's full passes, which
            # otherwise walk it all and stall every room for tens of ms (bench/ measures it).
            gc.collect()
            gc.freeze()
            yield
            background.cancel_scope.cancel()
        store.dispose()
        log.info("shut down cleanly: every room flushed")

    return web_app(svc, assets, lifespan)

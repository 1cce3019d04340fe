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
from .live import CredentialRecheck, RoomManager
from .mail import Mailer
from .notify import Clock, Dispatcher, EmailChannel, Links, Notifier, SmtpConfig, subscribers
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
    signer = Signer(settings.secret_key)
    smtp = SmtpConfig(
        settings.smtp_host,
        settings.smtp_port,
        user=settings.smtp_user,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
    )
    links = Links(
        signer,
        settings.base_url or f"http://{settings.host}:{settings.port}",
        link_days=settings.notify_link_days,
    )
    # Without an SMTP server notifications are queued and kept, and go once one is configured.
    dispatcher = (
        Dispatcher(
            store,
            EmailChannel(smtp, settings.smtp_from).send,
            retry_base=settings.notify_retry_seconds,
        )
        if settings.smtp_host
        else None
    )
    notifier = Notifier(store, links, dispatcher)
    clock = Clock(
        store,
        links,
        dispatcher,
        every=settings.notify_clock_seconds,
        soon_days=settings.notify_due_soon_days,
    )
    hooks.register(
        [
            materialiser.on_event,
            *subscribers(notifier),
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
        signer=signer,
        limits=Limits(
            signin=settings.signin_per_minute,
            codes=settings.codes_per_minute,
            ws_connects=settings.ws_connects_per_minute,
        ),
        mailer=Mailer(
            store,
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            user=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        ),
        notifier=notifier,
        links=links,
    )

    recheck = CredentialRecheck(store, rooms, interval=settings.recheck_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Rooms close first; their last commits are then materialised on the way out, and
        # what that publishes is queued as notifications.
        async with notifier, materialiser, rooms, anyio.create_task_group() as background:
            background.start_soon(store.keep_wal_short)
            background.start_soon(recheck.run)
            if dispatcher is not None:
                background.start_soon(dispatcher.run)
            if settings.notify_clock_seconds > 0:
                background.start_soon(clock.run)
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

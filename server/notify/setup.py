"""Notifications built from settings, once per process: the server signs and reads the links
people act on (``links``); the worker process, where the plan events are published, queues
notifications from them and sends them (``build``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from server.identity import Signer
from server.settings import Settings
from server.store import Store

from .clock import Clock
from .dispatcher import Dispatcher
from .email import EmailChannel, SmtpConfig
from .links import Links
from .service import Notifier


def links(settings: Settings, server_url: str) -> Links:
    """Links under ``TANDEM_BASE_URL``, or the address the server really binds."""
    return Links(
        Signer(settings.secret_key),
        settings.base_url or server_url,
        link_days=settings.notify_link_days,
    )


def smtp(settings: Settings) -> SmtpConfig:
    return SmtpConfig(
        settings.smtp_host,
        settings.smtp_port,
        user=settings.smtp_user,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
    )


@dataclass
class Notifications:
    links: Links
    notifier: Notifier  # a hook subscriber's owner: enter it before the materialiser
    # Sends the outbox; None without an SMTP server (rows wait until one is configured).
    dispatcher: Dispatcher | None
    # Due-soon, overdue and escalation passes under a lease; its ``every`` 0 turns it off.
    clock: Clock


def build(settings: Settings, store: Store, server_url: str) -> Notifications:
    links_ = links(settings, server_url)
    dispatcher = (
        Dispatcher(
            store,
            EmailChannel(smtp(settings), settings.smtp_from).send,
            retry_base=settings.notify_retry_seconds,
        )
        if settings.smtp_host
        else None
    )
    return Notifications(
        links=links_,
        notifier=Notifier(
            store, links_, dispatcher, settle=timedelta(seconds=settings.notify_settle_seconds)
        ),
        dispatcher=dispatcher,
        clock=Clock(
            store,
            links_,
            dispatcher,
            every=settings.notify_clock_seconds,
            soon_days=settings.notify_due_soon_days,
            escalate_days=settings.notify_escalate_days,
        ),
    )

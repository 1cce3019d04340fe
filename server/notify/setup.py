"""Notifications built from settings, once per process: the server signs and reads the links
people act on (``links``); the worker process, where the plan events are published, queues
notifications from them and sends them (``build``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import persistence
from server.identity import Signer
from server.settings import Settings
from server.store import Store

from .clock import Clock
from .dispatcher import Dispatcher, Router, Send
from .email import EmailChannel, SmtpConfig
from .links import Links
from .service import Notifier
from .slack import SlackChannel


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
        ca_file=settings.smtp_ca_file,
    )


def webhooks(store: Store) -> Callable[[str], str | None]:
    """A plan's Slack webhook URL as it is now, for a send (which runs in a thread)."""

    def lookup(plan_id: str) -> str | None:
        with persistence.transaction(store.factory) as s:
            found = persistence.get_slack_webhook(session=s, plan_id=plan_id)
            return found.webhook_url if found else None

    return lookup


def dispatcher(settings: Settings, store: Store, links_: Links) -> Dispatcher:
    """The outbox's sender: Slack always (plans without a webhook queue nothing for it),
    email when an SMTP server is configured (until then mail waits in the outbox)."""
    sends: dict[str, Send] = {
        "slack": SlackChannel(
            webhooks(store),
            links_,
            allowed=settings.webhook_allow_hosts,
            interactive=bool(settings.slack_signing_secret),
        ).send
    }
    closes = []
    if settings.smtp_host:
        email = EmailChannel(smtp(settings), settings.smtp_from)
        sends["email"] = email.send
        closes.append(email.close)
    router = Router(sends, closes=closes)
    return Dispatcher(
        store,
        router,
        retry_base=settings.notify_retry_seconds,
        channels=router.channels,
        per_second=settings.notify_send_per_second,
    )


@dataclass
class Notifications:
    links: Links
    notifier: Notifier  # a hook subscriber's owner: enter it before the materialiser
    # Sends the outbox (email rows wait there until an SMTP server is configured).
    dispatcher: Dispatcher | None
    # Due-soon, overdue and escalation passes under a lease; its ``every`` 0 turns it off.
    clock: Clock


def build(settings: Settings, store: Store, server_url: str) -> Notifications:
    links_ = links(settings, server_url)
    sender = dispatcher(settings, store, links_)
    return Notifications(
        links=links_,
        notifier=Notifier(
            store, links_, sender, settle=timedelta(seconds=settings.notify_settle_seconds)
        ),
        dispatcher=sender,
        clock=Clock(
            store,
            links_,
            sender,
            every=settings.notify_clock_seconds,
            soon_days=settings.notify_due_soon_days,
            escalate_days=settings.notify_escalate_days,
        ),
    )

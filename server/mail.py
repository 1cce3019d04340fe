"""Outgoing mail: every message goes to the outbox table, then out through SMTP when configured."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

import anyio

import persistence

from .store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 25
    user: str = ""
    password: str = ""
    starttls: bool = False
    timeout: float = 15.0
    # PEM file of the certificate authorities trusted for STARTTLS instead of the system's
    # (a private mail relay's own CA); the certificate and its host name are always checked.
    ca_file: str = ""


def deliver(config: SmtpConfig, message: EmailMessage) -> None:
    """Hand ``message`` to the SMTP server; raises OSError or SMTPException when it does not
    take it."""
    with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
        if config.starttls:
            smtp.starttls(context=ssl.create_default_context(cafile=config.ca_file or None))
        if config.user:
            smtp.login(config.user, config.password)
        smtp.send_message(message)


class Mailer:
    def __init__(
        self,
        store: Store,
        *,
        host: str,
        port: int,
        sender: str,
        user: str = "",
        password: str = "",
        starttls: bool = False,
        ca_file: str = "",
    ) -> None:
        self.store = store
        self.host = host
        self.port = port
        self.sender = sender
        self.smtp = SmtpConfig(
            host, port, user=user, password=password, starttls=starttls, ca_file=ca_file
        )
        if not host:
            log.warning("TANDEM_SMTP_HOST is not set: mail is disabled and kept in the outbox only")

    async def send(self, to: str, subject: str, body: str, *, plan_id: str | None = None) -> bool:
        """Queue and send one message; True once an SMTP server accepted it. ``plan_id`` names
        the plan the message is about, so that it goes when the plan is deleted."""
        mail_id = await self.store.run(
            lambda s: persistence.queue_mail(
                session=s, to_addr=to, subject=subject, body=body, plan_id=plan_id
            )
        )
        if not self.host:
            return False
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        error = None
        try:
            await anyio.to_thread.run_sync(self._deliver, message)
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
            # Never the body: it carries a link or a code.
            log.warning("mail %d to %s failed: %s", mail_id, to.rpartition("@")[2], error)
        await self.store.run(
            lambda s: persistence.mark_mail(session=s, mail_id=mail_id, error=error)
        )
        return error is None

    def _deliver(self, message: EmailMessage) -> None:
        deliver(self.smtp, message)

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


def connect(config: SmtpConfig) -> smtplib.SMTP:
    """A connection ready to send: STARTTLS and login done when configured."""
    smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    try:
        if config.starttls:
            smtp.starttls(context=ssl.create_default_context(cafile=config.ca_file or None))
        if config.user:
            smtp.login(config.user, config.password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def deliver(config: SmtpConfig, message: EmailMessage) -> None:
    """Hand ``message`` to the SMTP server; raises OSError or SMTPException when it does not
    take it."""
    with connect(config) as smtp:
        smtp.send_message(message)


class SmtpConnection:
    """One SMTP connection kept open across several messages (the outbox's batches): connected
    (STARTTLS, login) at the first message, reconnected once when the server dropped it since
    the last one, closed by ``close``. Not for concurrent use: one thread at a time."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._smtp: smtplib.SMTP | None = None
        # Connections opened so far (for tests and the benchmark).
        self.opened = 0

    def send(self, message: EmailMessage) -> None:
        """Hand ``message`` to the server; raises OSError or SMTPException when it does not
        take it. A refused message (a recipient refused with 550, say) leaves the connection
        usable: smtplib resets the transaction before raising."""
        reused = self._smtp is not None
        try:
            self._send_on(message)
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            # A kept connection the server closed while idle (or between messages): once more
            # on a new one. Should the drop have come after the server took the message, this
            # repeats that one message, as a crash between sending and recording would.
            if not reused:
                raise
            self._send_on(message)

    def _send_on(self, message: EmailMessage) -> None:
        try:
            self._connection().send_message(message)
        except smtplib.SMTPException as exc:
            # Refused (smtplib has reset the transaction): the connection serves the next one.
            if isinstance(exc, smtplib.SMTPServerDisconnected):
                self._drop()
            raise
        except OSError:
            # Reset, timed out or broken mid-transaction: the next message starts afresh.
            self._drop()
            raise

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = connect(self.config)
            self.opened += 1
        return self._smtp

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


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

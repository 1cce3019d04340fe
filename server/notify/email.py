"""The email channel: a notification row becomes a multipart (plain text and HTML) message from
the templates in ``server/templates/mail/``, with RFC 8058 one-click unsubscribe headers, sent
over SMTP (STARTTLS and login when configured), one connection for the rows of a dispatcher's
batch."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

import persistence
from server.mail import SmtpConfig, SmtpConnection
from server.mail import deliver as deliver

MAIL_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "mail"


def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(MAIL_TEMPLATES),
        # HTML parts are escaped; the plain-text parts are not HTML.
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class EmailChannel:
    def __init__(self, config: SmtpConfig, sender: str) -> None:
        self.config = config
        self.sender = sender
        self.env = environment()
        self.connection = SmtpConnection(config)

    def message(self, n: persistence.NotificationRecord) -> EmailMessage:
        ctx = {**n.payload, "subject": n.subject, "kind": n.kind}
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = formataddr((n.recipient_name, n.recipient_email))
        message["Subject"] = n.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        unsubscribe = n.payload.get("unsubscribe")
        if unsubscribe:
            message["List-Unsubscribe"] = f"<{unsubscribe}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(self.env.get_template(f"{n.kind}.txt").render(ctx))
        message.add_alternative(self.env.get_template(f"{n.kind}.html").render(ctx), subtype="html")
        return message

    def send(self, n: persistence.NotificationRecord) -> None:
        """Send over the kept connection (opened at the first row, see ``close``)."""
        self.connection.send(self.message(n))

    def close(self) -> None:
        """Close the kept connection: the dispatcher calls it after each batch."""
        self.connection.close()

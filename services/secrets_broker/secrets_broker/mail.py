"""Outbound mail over SMTP: the reveal link for a third-party recipient (a link, never a secret)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from mspkit.logging import get_logger
from secrets_broker.errors import MailUnavailable
from secrets_broker.settings import get_settings

log = get_logger("secrets_broker.mail")


class Mailer:
    """Sends one message per call through the relay named by an `smtp://` or `smtps://` URL."""

    def __init__(self, *, smtp_url: str, sender: str, timeout_s: float = 5.0) -> None:
        parts = urlsplit(smtp_url)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError("smtp_url must be smtp://host:port or smtps://host:port")
        self._tls = parts.scheme == "smtps"
        self._host = parts.hostname
        self._port = parts.port or (465 if self._tls else 25)
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout_s = timeout_s

    def send(self, *, to: str, subject: str, body: str) -> None:
        """Hand one plain-text message to the relay; any failure raises MailUnavailable."""
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid(domain="msp.invalid")
        msg.set_content(body)
        try:
            smtp: smtplib.SMTP
            if self._tls:
                smtp = smtplib.SMTP_SSL(
                    self._host, self._port, timeout=self.timeout_s, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(self._host, self._port, timeout=self.timeout_s)
            with smtp:
                if self._user and self._password:
                    smtp.login(self._user, self._password)
                refused = smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            # The message text is not logged: it holds the link.
            log.warning("mail_failed", error=type(exc).__name__)
            raise MailUnavailable("mail relay unavailable") from None
        if refused:
            raise MailUnavailable("mail relay refused the recipient")


@lru_cache
def get_mailer() -> Mailer:
    """The process's SMTP mailer."""
    settings = get_settings()
    return Mailer(smtp_url=settings.smtp_url, sender=settings.mail_from, timeout_s=settings.smtp_timeout_s)


def reveal_mail_body(*, link: str, recipient_name: str, expires_at: str) -> str:
    """The text of the reveal mail: who it is for, the one-time link and when it stops working."""
    return (
        f"Hello {recipient_name},\n\n"
        "With the approval of our client, a credential has been shared with you through our secrets broker.\n"
        "Open this link to view it. It works once and only until "
        f"{expires_at}:\n\n{link}\n\n"
        "The credential itself is never sent by email. If you did not expect this message, ignore it;\n"
        "the link stops working on its own.\n"
    )

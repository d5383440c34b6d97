"""Outbound mail over SMTP: the reveal link for a third-party recipient (a link, never a secret).

Every message passes the one outbound-mail guard (`mspkit.mailguard.guard_message`) just before it
is handed to the relay; a refusal (`MailRefused`) is permanent and is never retried as-is. An
`smtp://` relay is upgraded with STARTTLS when the settings require it (always outside dev); a
relay that does not offer it gets nothing.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from mspkit.logging import get_logger
from mspkit.mailguard import guard_message
from secrets_broker.errors import MailUnavailable
from secrets_broker.settings import get_settings

log = get_logger("secrets_broker.mail")

REVEAL_TEMPLATE = "secrets_broker.reveal_link"


class Mailer:
    """Sends one message per call through the relay named by an `smtp://` or `smtps://` URL."""

    def __init__(
        self,
        *,
        smtp_url: str,
        sender: str,
        timeout_s: float = 5.0,
        starttls: bool = False,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(smtp_url)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError("smtp_url must be smtp://host:port or smtps://host:port")
        self._tls = parts.scheme == "smtps"
        self._starttls = starttls and not self._tls
        self._context = tls_context or ssl.create_default_context()
        self._host = parts.hostname
        self._port = parts.port or (465 if self._tls else 25)
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout_s = timeout_s

    def message(self, *, to: str, subject: str, body: str) -> EmailMessage:
        """The plain-text message as it would be sent."""
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid(domain="msp.invalid")
        msg.set_content(body)
        return msg

    def send(self, *, to: str, subject: str, body: str, template: str) -> None:
        """Guard, then hand one message to the relay; MailRefused (permanent) or MailUnavailable."""
        msg = self.message(to=to, subject=subject, body=body)
        # Last step before SMTP: a refusal raises MailRefused, which the caller must not retry as-is.
        guard_message(msg, template=template)
        try:
            smtp: smtplib.SMTP
            if self._tls:
                smtp = smtplib.SMTP_SSL(self._host, self._port, timeout=self.timeout_s, context=self._context)
            else:
                smtp = smtplib.SMTP(self._host, self._port, timeout=self.timeout_s)
            with smtp:
                if self._starttls:
                    # Raises SMTPNotSupportedError when the relay offers no STARTTLS: never fall back.
                    smtp.starttls(context=self._context)
                if self._user and self._password:
                    smtp.login(self._user, self._password)
                refused = smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            # The message text is not logged: it holds the link.
            log.warning("mail_failed", template=template, error=type(exc).__name__)
            raise MailUnavailable("mail relay unavailable") from None
        if refused:
            raise MailUnavailable("mail relay refused the recipient")


@lru_cache
def get_mailer() -> Mailer:
    """The process's SMTP mailer."""
    settings = get_settings()
    return Mailer(
        smtp_url=settings.smtp_url,
        sender=settings.mail_from,
        timeout_s=settings.smtp_timeout_s,
        starttls=settings.smtp_uses_starttls(),
    )


def reveal_mail_body(*, link: str, recipient_name: str, expires_at: str) -> str:
    """The text of the reveal mail: who it is for, the one-time link and when it stops working."""
    return (
        f"Hello {recipient_name},\n\n"
        "With the approval of our client, a credential has been shared with you through our secrets broker.\n"
        "Open this link to view it. It works once, until "
        f"{expires_at} at the latest:\n\n{link}\n\n"
        "The link stops working earlier if the work it was shared for is finished, put on hold or\n"
        "handed to someone else, or if our client withdraws its approval. The credential itself is\n"
        "never sent by email. If you did not expect this message, ignore it.\n"
    )

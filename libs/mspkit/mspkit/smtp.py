"""Outbound SMTP for every sender: one guarded message per call, failures split into retry or not.

Every message passes the one outbound-mail guard (`mspkit.mailguard.guard_message`) in-process just
before it is handed to the relay; a refusal (`MailRefused`) is permanent and never retried as-is.
Failures are split once, here: `TransientMailError` (connection refused or lost, timeouts, no
STARTTLS offered, 4xx replies) is worth a retry; `PermanentMailError` (5xx replies) is not. An
`smtp://` relay is upgraded with STARTTLS when the caller requires it (always outside dev); a relay
that does not offer it gets nothing.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from mspkit.logging import get_logger
from mspkit.mailguard import guard_message

log = get_logger("mspkit.smtp")


class TransientMailError(Exception):
    """The relay could not take the message now; the same message may go through later."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"mail relay unavailable ({reason})")
        self.reason = reason


class PermanentMailError(Exception):
    """The relay refused the message for good (a 5xx reply); retrying would not help."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"mail relay refused the message ({reason})")
        self.reason = reason


def _by_code(code: int, reason: str) -> Exception:
    return TransientMailError(reason) if 400 <= code < 500 else PermanentMailError(reason)


class SmtpRelay:
    """The relay named by an `smtp://` or `smtps://` URL, and the sender address messages carry."""

    def __init__(
        self,
        *,
        smtp_url: str,
        sender: str,
        timeout_s: float = 10.0,
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

    def deliver(self, msg: EmailMessage, *, template: str) -> None:
        """Guard, then hand one message to the relay: MailRefused, TransientMailError or PermanentMailError."""
        # Last step before SMTP: a refusal raises MailRefused (counted and logged by the guard, without
        # the value), which the caller records and never retries as-is.
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
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise _by_code(min(codes, default=550), "recipient refused") from None
        except smtplib.SMTPResponseException as exc:
            # The reply text is not logged: a relay may echo the message back.
            raise _by_code(exc.smtp_code, f"reply {exc.smtp_code}") from None
        except (OSError, smtplib.SMTPException) as exc:
            # Connection refused or lost, timeouts, no STARTTLS offered: the relay may be back later.
            log.warning("mail_failed", template=template, error=type(exc).__name__)
            raise TransientMailError(type(exc).__name__) from None
        if refused:
            code = min(code for code, _ in refused.values())
            raise _by_code(code, "recipient refused")

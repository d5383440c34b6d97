"""Outbound mail for notifications: one multipart (text + HTML) message per recipient.

Guarding, STARTTLS and the split of failures into `TransientMailError` (retry) and
`PermanentMailError` (do not) are `mspkit.smtp`'s, shared with the broker's reveal mail.
"""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import formatdate
from functools import lru_cache

from intake.notifications.render import Rendered
from intake.settings import get_settings
from mspkit.smtp import PermanentMailError, SmtpRelay, TransientMailError

__all__ = ["Mailer", "PermanentMailError", "TransientMailError", "get_mailer", "message_id"]


def message_id(event_id: uuid.UUID, recipient: str) -> str:
    """The same Message-ID for the same (event, recipient), so even a relay can see a duplicate."""
    return f"<{uuid.uuid5(event_id, recipient.lower())}@msp.invalid>"


class Mailer(SmtpRelay):
    """The relay, and the multipart (text + HTML) message notifications send through it."""

    def message(self, *, to: str, rendered: Rendered, msgid: str) -> EmailMessage:
        """The multipart/alternative message as it would be sent."""
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = rendered.subject
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = msgid
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(rendered.text)
        msg.add_alternative(rendered.html, subtype="html")
        return msg

    def send(self, msg: EmailMessage, *, template: str) -> None:
        """Guard and send one message (`SmtpRelay.deliver`)."""
        self.deliver(msg, template=template)


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

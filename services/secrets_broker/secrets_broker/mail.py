"""Outbound mail over SMTP: the reveal link for a third-party recipient (a link, never a secret).

Guarding (a `MailRefused` is permanent and never retried as-is) and STARTTLS (always outside dev;
a relay that does not offer it gets nothing) are `mspkit.smtp`'s, shared with intake's notifications.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache

from mspkit.smtp import PermanentMailError, SmtpRelay, TransientMailError
from secrets_broker.errors import MailUnavailable
from secrets_broker.settings import get_settings

REVEAL_TEMPLATE = "secrets_broker.reveal_link"


class Mailer(SmtpRelay):
    """The relay, and the plain-text reveal-link message the broker sends through it."""

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
        try:
            self.deliver(self.message(to=to, subject=subject, body=body), template=template)
        except (TransientMailError, PermanentMailError):
            # Either way the reveal cannot be mailed now; the caller revokes the release it made.
            raise MailUnavailable("mail relay unavailable") from None


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

"""What intake needs from a PSA (ConnectWise today; Autotask and HaloPSA later), as one Protocol.

Adapters are synchronous (they run in intake's Celery worker, and in a thread for the webhook) and
raise `mspkit.http` errors for the PSA's failures. Outbound, a ticket carries only the task id, type,
status, the assignee's PSA member and a portal link: never addresses, contacts, domains or names.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

# A callback body larger than this is refused unread by the adapter (and should be by the route).
MAX_CALLBACK_BYTES = 256 * 1024


@dataclass(frozen=True)
class TicketFields:
    """What a ticket says about its task: everything intake ever sends to the PSA."""

    task_id: uuid.UUID
    task_type: str
    task_status: str
    company_id: str
    portal_url: str
    assignee_member_id: str | None


@dataclass(frozen=True)
class Ticket:
    """A ticket as the PSA holds it now (re-fetched, never taken from a callback)."""

    ticket_id: str
    status: str
    closed: bool
    owner_member_id: str | None
    url: str
    external_ref: str | None


@dataclass(frozen=True)
class Callback:
    """A parsed PSA callback: which ticket it is about, and the PSA's own action word."""

    ticket_id: str
    action: str
    # The key the signature must be checked with, as the payload names it (ConnectWise: Metadata.key_url);
    # the adapter decides whether it may be fetched at all.
    key_ref: str | None


def callback_fingerprint(raw: bytes) -> str:
    """The sha256 (hex) of a callback's raw body: the key the webhook route dedupes replays on."""
    return hashlib.sha256(raw).hexdigest()


class CallbackRejected(Exception):
    """A callback that must change nothing: malformed, unsigned, badly signed or naming a foreign key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PsaAdapter(Protocol):
    """One PSA's API, as intake uses it."""

    provider: str

    def create_ticket(self, fields: TicketFields) -> Ticket:
        """Create the task's ticket, or return the one already made for it (found by the task id)."""
        ...

    def update_ticket(self, ticket_id: str, fields: TicketFields) -> Ticket:
        """Set the ticket's status and owner from the task; returns the ticket as updated."""
        ...

    def add_note(self, ticket_id: str, text: str) -> None:
        """Add an internal note to the ticket."""
        ...

    def get_ticket(self, ticket_id: str) -> Ticket:
        """Read the ticket as the PSA holds it now."""
        ...

    def parse_callback(self, raw: bytes) -> Callback:
        """Parse a callback body; raises CallbackRejected when it is not one."""
        ...

    def verify_callback(self, raw: bytes, headers: Mapping[str, str], callback: Callback) -> None:
        """Check the callback's signature over the raw body; raises CallbackRejected when it fails."""
        ...

    def register_callback(self, url: str) -> None:
        """Make sure the PSA calls `url` when a ticket changes (idempotent: one registration per url)."""
        ...

    def close(self) -> None:
        """Release the adapter's HTTP connections (worker shutdown, or after a fork)."""
        ...

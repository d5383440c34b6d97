"""Disclosure ledger API shapes (the same column names as the CSV)."""

from __future__ import annotations

import uuid

from secrets_broker.common.types import Output, UtcDatetime


class DisclosurePublic(Output):
    """One ledger row."""

    disclosure_id: uuid.UUID
    created_at: UtcDatetime
    client_id: uuid.UUID
    task_id: uuid.UUID
    release_id: uuid.UUID
    credential_id: uuid.UUID
    party_category: str
    recipient_name: str
    recipient_contact_email: str | None
    approval_id: uuid.UUID | None
    legal_reference: str | None
    information_categories: list[str]
    disclosed_by: str

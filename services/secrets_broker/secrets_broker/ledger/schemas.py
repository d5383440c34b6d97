"""Disclosure ledger API shapes (the same column names as the CSV)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field

from secrets_broker.common.types import NO_CONTROLS, Input, Output, UtcDatetime

DisclosureKind = Literal["credential", "information"]
# What `POST /internal/disclosures` records: every information category but `credentials`, which
# leave only through a release (decided per credential, on an approval naming it).
DisclosedInformation = Literal["contact_info", "service_address", "billing", "domain", "mail_routing"]
IdempotencyKey = Annotated[str, Field(min_length=1, max_length=128, pattern=NO_CONTROLS)]


class DisclosurePublic(Output):
    """One ledger row: a credential released to a third party, or client information sent to a vendor."""

    disclosure_id: uuid.UUID
    created_at: UtcDatetime
    client_id: uuid.UUID
    task_id: uuid.UUID
    # Set for a credential, null for information.
    release_id: uuid.UUID | None
    credential_id: uuid.UUID | None
    party_category: str
    recipient_name: str
    recipient_contact_email: str | None
    approval_id: uuid.UUID | None
    legal_reference: str | None
    information_categories: list[str]
    disclosed_by: str
    kind: DisclosureKind
    # The recipient vendor: always set for information, for a credential when its approval named one.
    vendor_id: uuid.UUID | None


class InformationDisclosureCreate(Input):
    """`POST /internal/disclosures`: client information about to leave for a vendor, on an approval."""

    approval_id: uuid.UUID
    task_id: uuid.UUID
    vendor_id: uuid.UUID
    information_categories: Annotated[list[DisclosedInformation], Field(min_length=1, max_length=5)]
    # Per caller: a retry with the same key (and the same body) gets the first row back.
    idempotency_key: IdempotencyKey


class InformationDisclosurePublic(DisclosurePublic):
    """201 (recorded) or 200 (a retry) of `POST /internal/disclosures`: the ledger row, and its `id`."""

    id: uuid.UUID

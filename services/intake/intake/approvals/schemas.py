"""Approval bodies and views."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field, Strict

from intake.common.types import JSON_INTEGER, Email, Input, LongText, Name, Output, UtcDatetime
from mspkit.vocabulary import ApprovalStatus, InformationCategory, OrdinaryPartyCategory, PartyCategory

ExpiresIn = Annotated[int, Strict(), Field(ge=60, le=30 * 24 * 3600), JSON_INTEGER]


class GovernmentRecipient(Input):
    """A government body acting under subpoena or legal process: the legal reference is required."""

    name: Name
    contact_email: Email
    party_category: Literal["government_legal_process"]
    legal_reference: Name


class PartyRecipient(Input):
    """Any other permitted third party; `vendor_id` when it is a vendor of the registry (vendor_sync's)."""

    name: Name
    contact_email: Email
    party_category: OrdinaryPartyCategory
    legal_reference: Name | None = None
    vendor_id: uuid.UUID | None = None


RecipientIn = Annotated[GovernmentRecipient | PartyRecipient, Field(discriminator="party_category")]


class ApprovalCreate(Input):
    """POST /v1/tasks/{id}/approvals: ask the client to approve a disclosure."""

    recipient: RecipientIn
    information_categories: Annotated[list[InformationCategory], Field(min_length=1, max_length=6)]
    credential_ids: Annotated[list[uuid.UUID], Field(max_length=100)] = []
    expires_in_s: ExpiresIn


class ApprovalDecision(Input):
    """POST /v1/approvals/{id}/decision."""

    decision: Literal["approved", "rejected"]
    comment: LongText | None = None


class Recipient(Output):
    """Who would receive the information."""

    name: str
    contact_email: str | None
    party_category: PartyCategory
    legal_reference: str | None
    # The registry's vendor the information goes to (the broker ledgers a disclosure to a vendor only
    # against an approval naming it); null for a recipient that is not a vendor.
    vendor_id: uuid.UUID | None


class ApprovalPublic(Output):
    """An approval; `status` is `expired` once `expires_at` has passed, whatever was decided."""

    id: uuid.UUID
    task_id: uuid.UUID
    client_id: uuid.UUID
    status: ApprovalStatus
    recipient: Recipient
    information_categories: list[InformationCategory]
    credential_ids: list[uuid.UUID]
    expires_at: UtcDatetime
    decided_by: str | None
    decided_at: UtcDatetime | None
    comment: str | None
    created_at: UtcDatetime

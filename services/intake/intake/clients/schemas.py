"""Client bodies and views."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field

from intake.common.types import Cents, Email, Hostname, Input, Name, Output, UtcDatetime
from mspkit.vocabulary import ClientStatus

ApproverEmails = Annotated[list[Email], Field(min_length=1, max_length=20)]


class ClientCreate(Input):
    """POST /v1/clients."""

    name: Name
    primary_domain: Hostname
    approver_emails: ApproverEmails
    purchase_approval_threshold_cents: Cents


class ClientUpdate(Input):
    """PATCH /v1/clients/{id}: every field optional; a null means "leave as is"."""

    name: Name | None = None
    primary_domain: Hostname | None = None
    approver_emails: ApproverEmails | None = None
    purchase_approval_threshold_cents: Cents | None = None
    status: ClientStatus | None = None


class ClientPublic(Output):
    """A client."""

    id: uuid.UUID
    name: str
    primary_domain: str
    approver_emails: list[str]
    purchase_approval_threshold_cents: int
    status: ClientStatus
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ClientStatusView(Output):
    """`GET /internal/clients/{id}`: only what other services need to decide."""

    id: uuid.UUID
    status: ClientStatus

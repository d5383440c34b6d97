"""Client bodies and views."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, Strict, StringConstraints

from intake.common.types import Cents, Email, Hostname, Input, Name, Output, UtcDatetime
from mspkit.patterns import TOKEN_CHARS
from mspkit.vocabulary import ClientStatus, PsaProvider

ApproverEmails = Annotated[list[Email], Field(min_length=1, max_length=20)]
# Empty in a PATCH: back to the default (the approvers get the access alerts).
AlertEmails = Annotated[list[Email], Field(max_length=20)]
# true or false only (not "yes" or 1).
Switch = Annotated[bool, Strict()]
# The shape every PSA adapter can send (ConnectWise: a record id or an identifier; Autotask, Halo: numbers).
PsaCompanyId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=TOKEN_CHARS)]
PsaCompanyIds = Annotated[dict[PsaProvider, PsaCompanyId], Field(max_length=3)]


class ClientCreate(Input):
    """POST /v1/clients."""

    name: Name
    primary_domain: Hostname
    approver_emails: ApproverEmails
    purchase_approval_threshold_cents: Cents
    # Access alerts (a credential released to a person); absent or empty: the approver_emails.
    alert_emails: AlertEmails | None = None
    # Mail to requesters (with a verified address) when one of their tasks changes status.
    status_mail: Switch = True
    # The client's company in each PSA; a provider left out gets no ticket for this client.
    psa_company_ids: PsaCompanyIds = Field(default_factory=dict)


class ClientUpdate(Input):
    """PATCH /v1/clients/{id}: every field optional; a null means "leave as is"."""

    name: Name | None = None
    primary_domain: Hostname | None = None
    approver_emails: ApproverEmails | None = None
    purchase_approval_threshold_cents: Cents | None = None
    alert_emails: AlertEmails | None = None
    status_mail: Switch | None = None
    # Replaced as a whole; `{}` unmaps every PSA.
    psa_company_ids: PsaCompanyIds | None = None
    status: ClientStatus | None = None


class ClientPublic(Output):
    """A client."""

    id: uuid.UUID
    name: str
    primary_domain: str
    approver_emails: list[str]
    purchase_approval_threshold_cents: int
    # Null: access alerts go to the approver_emails.
    alert_emails: list[str] | None
    status_mail: bool
    psa_company_ids: dict[str, str]
    status: ClientStatus
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ClientStatusView(Output):
    """`GET /internal/clients/{id}`: only what other services need to decide."""

    id: uuid.UUID
    status: ClientStatus

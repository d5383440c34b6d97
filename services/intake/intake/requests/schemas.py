"""Request bodies (a discriminated union on `type`) and views."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field, Strict, StringConstraints

from intake.common.types import (
    JSON_INTEGER,
    NO_NUL,
    Email,
    Hostname,
    Input,
    LongText,
    Name,
    Output,
    Phone,
    ShortText,
    Slug,
    UtcDatetime,
)
from mspkit.patterns import described

RequestType = Literal["purchase", "isp_account_setup", "spam_filter_setup", "vendor_contact_update"]
RequestStatus = Literal["open", "done", "rejected", "cancelled"]

Quantity = Annotated[int, Strict(), Field(ge=1, le=1_000_000), JSON_INTEGER]
UnitPriceCents = Annotated[int, Strict(), Field(ge=0, le=10_000_000_000), JSON_INTEGER]
PostalCode = Annotated[str, StringConstraints(min_length=1, max_length=20, pattern=NO_NUL)]
Country = Annotated[str, StringConstraints(min_length=2, max_length=56, pattern=NO_NUL)]
# A downstream mail host: a host name or an IPv4 address.
MailHost = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=253,
        pattern=described(
            r"^(?:(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))$",
            "must be a host name such as mail.example.com or an IPv4 address such as 192.0.2.10",
        ),
    ),
]
ClientIdField = Annotated[
    uuid.UUID | None,
    Field(description="Required for admins; a client role must not send it (its own client is implied)."),
]


class PurchaseItem(Input):
    """One line of a purchase."""

    description: Name
    quantity: Quantity
    unit_price_cents: UnitPriceCents


class Supplier(Input):
    """Who sells it."""

    name: Name
    contact_email: Email | None = None


class ServiceAddress(Input):
    """Where the ISP service goes."""

    line1: Name
    line2: Name | None = None
    city: Name
    region: Name
    postal_code: PostalCode
    country: Country


class SiteContact(Input):
    """Who the ISP meets on site."""

    name: Name
    email: Email
    phone: Phone


class NewContact(Input):
    """A contact to add at the vendor."""

    name: Name
    role: ShortText
    email: Email | None = None
    phone: Phone | None = None


class ContactChange(Input):
    """A change to an existing contact at the vendor."""

    id: uuid.UUID
    name: Name | None = None
    role: ShortText | None = None
    email: Email | None = None
    phone: Phone | None = None


class ContactChanges(Input):
    """Contacts to add, update and remove."""

    add: Annotated[list[NewContact], Field(max_length=50)] = []
    update: Annotated[list[ContactChange], Field(max_length=50)] = []
    remove: Annotated[list[uuid.UUID], Field(max_length=50)] = []


class PurchaseBody(Input):
    """A purchase to make for the client."""

    type: Literal["purchase"]
    items: Annotated[list[PurchaseItem], Field(min_length=1, max_length=100)]
    justification: LongText
    supplier: Supplier


class IspAccountSetupBody(Input):
    """An account to open with an ISP."""

    type: Literal["isp_account_setup"]
    isp_name: Name
    isp_contact_email: Email | None = None
    service_address: ServiceAddress
    service_tier: Name
    site_contact: SiteContact


class SpamFilterSetupBody(Input):
    """Inbound spam filtering for a domain."""

    type: Literal["spam_filter_setup"]
    domain: Hostname
    downstream_hosts: Annotated[list[MailHost], Field(min_length=1, max_length=10)]
    provider: Slug = "mailchannels"


class VendorContactUpdateBody(Input):
    """Changes to the contacts held by a vendor for one of the client's vendor accounts."""

    type: Literal["vendor_contact_update"]
    vendor_account_id: uuid.UUID
    contacts: ContactChanges


class PurchaseCreate(PurchaseBody):
    """POST /v1/requests, type `purchase`."""

    client_id: ClientIdField = None


class IspAccountSetupCreate(IspAccountSetupBody):
    """POST /v1/requests, type `isp_account_setup`."""

    client_id: ClientIdField = None


class SpamFilterSetupCreate(SpamFilterSetupBody):
    """POST /v1/requests, type `spam_filter_setup`."""

    client_id: ClientIdField = None


class VendorContactUpdateCreate(VendorContactUpdateBody):
    """POST /v1/requests, type `vendor_contact_update`."""

    client_id: ClientIdField = None


RequestCreate = Annotated[
    PurchaseCreate | IspAccountSetupCreate | SpamFilterSetupCreate | VendorContactUpdateCreate,
    Field(discriminator="type"),
]
RequestBody = Annotated[
    PurchaseBody | IspAccountSetupBody | SpamFilterSetupBody | VendorContactUpdateBody,
    Field(discriminator="type"),
]
BODY_TYPES = {
    m.model_fields["type"].annotation.__args__[0]: m
    for m in (  # type: ignore[union-attr]
        PurchaseBody,
        IspAccountSetupBody,
        SpamFilterSetupBody,
        VendorContactUpdateBody,
    )
}


class RequestPublic(Output):
    """A request, its status and the tasks it became."""

    id: uuid.UUID
    type: RequestType
    client_id: uuid.UUID
    status: RequestStatus
    task_ids: list[uuid.UUID]
    created_at: UtcDatetime


class RequestDetail(RequestPublic):
    """A request with its typed body, for workers (GET /internal/requests/{id})."""

    created_by: str
    body: RequestBody

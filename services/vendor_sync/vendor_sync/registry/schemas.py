"""Request and response bodies of the registry routes (every constraint is in the model)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, StringConstraints

from mspkit.patterns import described
from mspkit.schemas import Email, Input, Output, Phone, UtcDatetime
from mspkit.vocabulary import VendorKind

# Every constraint is a pattern the schema shows, written with explicit ASCII classes (no `\s`): the
# server (Rust regex), the schema (ECMA) and schema-driven clients (Python re) disagree on what `\s` is.
# Text: no control characters, and no blank at either end (refused, not silently stripped).
_TEXT = described(
    r"^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$",
    "must not contain control characters or start or end with a blank",
)
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_TEXT)]
Role = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_TEXT)]
AccountNumber = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_TEXT)]
_URL = described(
    r"^https?://[^\x00-\x20\x7f/?#@]+(?:[/?#][^\x00-\x20\x7f]*)?$",
    "must be an http or https address without a user name, password or blanks",
)
_ADAPTER = described(
    r"^[a-z][a-z0-9_]{0,39}$", "may contain only lowercase letters, digits and '_', and starts with a letter"
)
HttpUrlText = Annotated[str, StringConstraints(max_length=2048, pattern=_URL)]
AdapterName = Annotated[str, StringConstraints(max_length=40, pattern=_ADAPTER)]


class VendorCreate(Input):
    """A new vendor."""

    name: Name
    kind: VendorKind
    website: HttpUrlText | None = None
    support_email: Email | None = None
    support_phone: Phone | None = None
    adapter: AdapterName | None = None


class VendorPublic(Output):
    """A vendor as returned by the API."""

    id: uuid.UUID
    name: str
    kind: str
    website: str | None
    support_email: str | None
    support_phone: str | None
    adapter: str | None
    created_at: UtcDatetime


class ContactCreate(Input):
    """A contact at the vendor for one account."""

    name: Name
    role: Role
    email: Email | None = None
    phone: Phone | None = None


class ContactPublic(Output):
    """A contact as returned by the API."""

    id: uuid.UUID
    name: str
    role: str
    email: str | None
    phone: str | None


class VendorAccountCreate(Input):
    """A client's account at a vendor; the API key stays in the broker, only its credential id here."""

    vendor_id: uuid.UUID
    account_number: AccountNumber
    portal_url: HttpUrlText | None = None
    api_key_credential_id: uuid.UUID | None = None
    contacts: list[ContactCreate] = Field(default_factory=list, max_length=50)


class VendorAccountPublic(Output):
    """A vendor account with its vendor's kind and its contacts."""

    id: uuid.UUID
    client_id: uuid.UUID
    vendor_id: uuid.UUID
    vendor_kind: str
    account_number: str
    portal_url: str | None
    api_key_credential_id: uuid.UUID | None
    contacts: list[ContactPublic]
    created_at: UtcDatetime

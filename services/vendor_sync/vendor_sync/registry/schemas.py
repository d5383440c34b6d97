"""Request and response bodies of the registry routes (every constraint is in the model)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, ClassVar, cast

from pydantic import Field, StringConstraints, ValidationInfo, field_validator
from pydantic.json_schema import JsonDict, SkipJsonSchema

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


def _no_default(schema: JsonDict) -> None:
    # A field that may be left out but never cleared: the schema says "a string", with no null default.
    schema.pop("default", None)


def _kept_unless_given() -> Any:
    """An optional, non-clearable field of a PATCH body: absent keeps the value, null is refused.

    Typed as the value itself (not `X | None`): a union would report a bad value once per member.
    """
    return Field(default=cast(Any, None), json_schema_extra=_no_default)


class _Patch(Input):
    """A PATCH body with JSON merge-patch semantics: an absent field is kept, null clears an optional one."""

    # Fields the object cannot be without: leaving them out keeps them, null is a 422 naming them.
    required: ClassVar[tuple[str, ...]] = ()

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name in cls.required:
            raise ValueError("cannot be cleared; leave it out to keep the current value")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the body names, with their new values (None: cleared)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class VendorUpdate(_Patch):
    """`PATCH /v1/vendors/{id}`: any field of a new vendor but `kind`; null clears an optional field."""

    required = ("name",)

    name: Name = _kept_unless_given()
    website: HttpUrlText | None = None
    support_email: Email | None = None
    support_phone: Phone | None = None
    adapter: AdapterName | None = None
    # Not in the schema (unknown there, like any other field): named here only to say why it is refused.
    kind: SkipJsonSchema[Any] = None

    @field_validator("kind", mode="before")
    @classmethod
    def _kind_is_fixed(cls, value: Any) -> Any:
        raise ValueError("cannot be changed; a vendor of another kind is another vendor")


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


class ContactUpdate(_Patch):
    """`PATCH /v1/vendor-accounts/{id}/contacts/{contact_id}`; null clears `email` or `phone`."""

    required = ("name", "role")

    name: Name = _kept_unless_given()
    role: Role = _kept_unless_given()
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


class VendorAccountUpdate(_Patch):
    """`PATCH /v1/vendor-accounts/{id}`; null clears `portal_url` or `api_key_credential_id`.

    `api_key_credential_id` must name a broker credential of kind `api_key` whose own
    `vendor_account_id` is this account (checked at the broker).
    """

    required = ("account_number",)

    account_number: AccountNumber = _kept_unless_given()
    portal_url: HttpUrlText | None = None
    api_key_credential_id: uuid.UUID | None = None


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
    # Null while the account is live; once set, the account is read-only and sync skips it.
    archived_at: UtcDatetime | None

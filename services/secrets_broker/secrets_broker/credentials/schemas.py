"""Credential API shapes: `secret` and `notes` are write-only and never appear in a response."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Final

from pydantic import AfterValidator, Field, SecretStr, StringConstraints, WithJsonSchema

from mspkit.patterns import described, words_for
from mspkit.vocabulary import CredentialCategory, CredentialKind, CredentialOwner
from secrets_broker.common.types import Input, Output, Reason, SafeName, SafeUsername, UtcDatetime

Secret = Annotated[SecretStr, Field(min_length=1, max_length=8192)]
Notes = Annotated[SecretStr, Field(max_length=16384)]

# http(s), a host name, an optional port and path; no user name or password (the host part cannot
# hold `@`) and no query string: both are where secrets hide (`?token=`, `user:pw@`), and this
# metadata is stored in PostgreSQL, listed and shown, while secrets live only in Vault.
URL_PATTERN: Final = described(
    r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[^\s\x00-\x1f\x7f?]*)?$",
    "must be an http or https address without a user name, password or query string",
)
_URL: Final = re.compile(URL_PATTERN)


def _check_url(value: str) -> str:
    if not _URL.fullmatch(value):
        raise ValueError(words_for(URL_PATTERN))
    return value


CredentialUrl = Annotated[
    str,
    StringConstraints(min_length=8, max_length=2048),
    AfterValidator(_check_url),
    WithJsonSchema({"type": "string", "minLength": 8, "maxLength": 2048, "pattern": URL_PATTERN}),
]


class CredentialCreate(Input):
    """`POST /v1/credentials`."""

    client_id: uuid.UUID
    vendor_account_id: uuid.UUID | None = None
    kind: CredentialKind
    owner: CredentialOwner
    category: CredentialCategory
    name: SafeName
    username: SafeUsername
    secret: Secret
    url: CredentialUrl | None = None
    notes: Notes | None = None
    # Required of vendor_sync (the provisioning task it created the credential for, checked live at
    # intake); nobody else names one.
    task_id: uuid.UUID | None = None


class SecretRotate(Input):
    """`PUT /v1/credentials/{id}/secret`: decided like a release for `task_id`."""

    # Without `notes`, the new version keeps the current version's notes.

    task_id: uuid.UUID
    reason: Reason
    secret: Secret
    notes: Notes | None = None


class CredentialPublic(Output):
    """Credential metadata."""

    id: uuid.UUID
    client_id: uuid.UUID
    vendor_account_id: uuid.UUID | None
    kind: str
    owner: str
    category: str
    name: str
    username: str
    url: str | None
    status: str
    created_by: str
    # The provisioning task vendor_sync created it for; null for every other credential.
    task_id: uuid.UUID | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime

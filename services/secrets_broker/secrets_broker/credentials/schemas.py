"""Credential API shapes: `secret` and `notes` are write-only and never appear in a response."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, SecretStr

from mspkit.vocabulary import CredentialCategory, CredentialKind, CredentialOwner
from secrets_broker.common.types import HttpUrl, Input, Output, Reason, SafeName, SafeUsername, UtcDatetime

Secret = Annotated[SecretStr, Field(min_length=1, max_length=8192)]
Notes = Annotated[SecretStr, Field(max_length=16384)]


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
    url: HttpUrl | None = None
    notes: Notes | None = None


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
    created_at: UtcDatetime
    updated_at: UtcDatetime

"""Request and response bodies of the domain, sync-run and drift-event routes."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field, field_validator

from mspkit.schemas import Input, Output, UtcDatetime
from vendor_sync.domains.names import MAX_INPUT_CHARS, NAME_PATTERN, InvalidDomainName, normalize_domain_name

RunStatus = Literal["queued", "running", "succeeded", "failed"]
DriftKind = Literal["change", "expiry_warning"]


class DomainCreate(Input):
    """A client domain to watch, in any spelling (Unicode or A-label, any case)."""

    name: str = Field(min_length=3, max_length=MAX_INPUT_CHARS + 1, pattern=NAME_PATTERN, examples=["example.com"])

    @field_validator("name")
    @classmethod
    def _idna(cls, value: str) -> str:
        try:
            normalize_domain_name(value)
        except InvalidDomainName as exc:
            raise ValueError(f"not a valid domain name: {exc}") from None
        return value

    def normalized(self) -> tuple[str, str]:
        """(A-label, Unicode name) of the validated name."""
        return normalize_domain_name(self.name)


class AbuseContactPublic(Output):
    """The registrar's abuse contact."""

    email: str | None = None
    phone: str | None = None


class DomainPublic(Output):
    """A domain and its registration data (the `created_at` here is the registration date)."""

    id: uuid.UUID
    client_id: uuid.UUID
    name: str
    unicode_name: str
    registrar: str | None
    registrar_iana_id: int | None
    created_at: UtcDatetime | None
    expires_at: UtcDatetime | None
    last_changed_at: UtcDatetime | None
    statuses: list[str]
    nameservers: list[str]
    dnssec: bool | None
    abuse_contact: AbuseContactPublic | None
    last_checked_at: UtcDatetime | None
    dns_host_account_id: uuid.UUID | None = Field(description="The client's DNS-host account serving the zone")
    registrar_account_id: uuid.UUID | None = Field(description="The client's registrar account holding the domain")
    mx: list[str] = Field(description='The zone\'s MX targets at its DNS host, as "priority host", lowest first')
    transfer_lock: bool | None = Field(description="Whether the registration is locked against transfer")


class RecordPublic(Output):
    """One DNS record of a zone, as its DNS host last reported it."""

    type: str
    name: str
    content: str
    ttl: int
    priority: int | None


class RecordList(Output):
    """Every record of a zone (a zone is small enough to be listed whole)."""

    items: list[RecordPublic]


class RefreshAccepted(Output):
    """The sync run that will refresh the domain (the one already in flight, if any)."""

    sync_run_id: uuid.UUID


class AccountSyncRequest(Input):
    """`POST /v1/vendor-accounts/{id}/sync`: a dry run applies nothing; force passes the delete threshold."""

    dry_run: bool = False
    force: bool = False


class PlanCounts(Output):
    """How many registry objects an account sync creates, updates and deletes."""

    create: int
    update: int
    delete: int


class ChangePublic(Output):
    """One planned or applied change of a zone, record or domain (at most 1000 are shown per run)."""

    action: Literal["create", "update", "delete"]
    object: Literal["zone", "record", "domain"]
    id: uuid.UUID | None = Field(description="The registry's domain the change is about, when it exists")
    name: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class SyncRunPublic(Output):
    """A domain's refresh or an account's sync: counts are of objects (or, for a refresh, registration
    fields) set, changed and cleared; `failed` is 0 or 1; `plan` and `changes` are an account sync's."""

    id: uuid.UUID
    status: RunStatus
    created: int
    updated: int
    deleted: int
    failed: int
    error: str | None
    domain_id: uuid.UUID | None
    vendor_account_id: uuid.UUID | None
    client_id: uuid.UUID
    dry_run: bool
    force: bool
    plan: PlanCounts | None
    changes: list[ChangePublic] | None
    attempts: int
    not_before: UtcDatetime | None
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None


class DriftEventPublic(Output):
    """A change between two refreshes, or an expiry warning."""

    id: uuid.UUID
    client_id: uuid.UUID
    domain_id: uuid.UUID | None
    vendor_account_id: uuid.UUID | None
    sync_run_id: uuid.UUID | None
    kind: DriftKind
    field: str
    old: Any
    new: Any
    detected_at: UtcDatetime

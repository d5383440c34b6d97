"""Intake's authorization view of a task (`GET /internal/tasks/{id}/authorization`), parsed strictly.

The release policy decides on these types, the intake client builds them and the ledger copies an
approval's recipient from them; they are immutable, so a decision cannot change what it was shown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, ValidationError, model_validator

from mspkit.vocabulary import (
    ApprovalStatus,
    ClientStatus,
    CredentialCategory,
    InformationCategory,
    PartyCategory,
    TaskStatus,
)


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Naive times are refused: comparing an expiry without an offset would silently assume local time.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class MalformedAuthorization(Exception):
    """Intake's authorization view did not match the expected shape; the service answers 503."""


class Frozen(BaseModel):
    """Base of the policy's inputs: immutable, strictly typed, tolerant of fields it does not know."""

    # strict: constructing these in code needs real UUIDs/datetimes/frozensets, no silent coercion;
    # extra="ignore": intake may add fields (e.g. an approval's decided_by) without breaking releases.
    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")


class Scope(Frozen):
    """What a task may touch."""

    credential_categories: frozenset[CredentialCategory] = frozenset()
    vendor_account_ids: frozenset[UUID] = frozenset()
    credential_ids: frozenset[UUID] = frozenset()


class Recipient(Frozen):
    """The third party an approval lets the MSP disclose to."""

    name: str
    contact_email: str | None = None
    party_category: PartyCategory
    legal_reference: str | None = None
    # The vendor the approval discloses to (request expansion makes one approval per recipient
    # vendor); None for recipients that are not a vendor, and in views from before intake sent it.
    vendor_id: UUID | None = None

    @model_validator(mode="after")
    def _legal_process_needs_reference(self) -> Recipient:
        # The ledger must name the subpoena or order; a view without it is not trustworthy.
        if self.party_category == "government_legal_process" and not self.legal_reference:
            raise ValueError("government_legal_process needs legal_reference")
        return self


class Approval(Frozen):
    """A client's recorded decision on one disclosure, as intake reports it."""

    id: UUID
    task_id: UUID
    client_id: UUID
    status: ApprovalStatus
    recipient: Recipient
    information_categories: frozenset[InformationCategory]
    credential_ids: frozenset[UUID]
    expires_at: UtcDatetime


class TaskAuth(Frozen):
    """Intake's `GET /internal/tasks/{id}/authorization` view of one task."""

    task_id: UUID
    status: TaskStatus
    assignee: str | None
    assigned_by: str | None
    client_id: UUID
    client_status: ClientStatus
    scope: Scope
    approvals: tuple[Approval, ...]
    updated_at: UtcDatetime

    @model_validator(mode="after")
    def _unique_approval_ids(self) -> TaskAuth:
        # Lookup by id must be unambiguous, or a stale copy could shadow the live one.
        ids = [approval.id for approval in self.approvals]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate approval id")
        return self

    def approval(self, approval_id: UUID) -> Approval | None:
        """The live approval with this id, or None."""
        return next((a for a in self.approvals if a.id == approval_id), None)

    def moved_since(self, earlier: TaskAuth) -> bool:
        """Whether intake changed the task's status or assignee, or touched it at all, after `earlier`."""
        return (self.status, self.assignee, self.updated_at) != (earlier.status, earlier.assignee, earlier.updated_at)


def parse_task_auth(data: Mapping[str, Any] | str | bytes) -> TaskAuth:
    """Parse intake's JSON authorization view strictly; any mismatch raises MalformedAuthorization."""
    try:
        # Validating the JSON text (not the dict) in strict mode accepts UUIDs and RFC 3339 times
        # only as strings and refuses numbers, naive times and other coercions.
        raw = data if isinstance(data, str | bytes) else json.dumps(dict(data), allow_nan=False)
        return TaskAuth.model_validate_json(raw, strict=True)
    except (ValidationError, TypeError, ValueError) as exc:
        # Only field locations go into the message: the view holds recipient names and emails.
        raise MalformedAuthorization(_locations(exc)) from None


def _locations(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        locs = sorted({".".join(str(part) for part in err["loc"]) or "<root>" for err in exc.errors()})
        return "malformed authorization view at: " + ", ".join(locs)
    return "authorization view is not JSON"

"""The release decision: pure functions over intake's live authorization view, with no I/O.

`decide` answers `POST /v1/releases` (and rotation); `decide_service` answers
`POST /internal/service-releases`. Both return the first failing rule id, in a fixed order, so a
denial always names one rule and the tests can pin that order.

The service resolves the credential before calling either function and answers 404 for a missing,
other-tenant or non-`active` credential (a `pending` row has no secret yet), so `decide` never sees
the credential's `status` as a rule: the eight rule ids of the contract stay exactly eight.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, ValidationError, model_validator

# --- rule ids ---------------------------------------------------------------------------------

CALLER_NOT_ASSIGNEE: Final = "caller_not_assignee"
TASK_NOT_IN_PROGRESS: Final = "task_not_in_progress"
CLIENT_MISMATCH: Final = "client_mismatch"
CLIENT_NOT_ACTIVE: Final = "client_not_active"
OUT_OF_SCOPE: Final = "out_of_scope"
REASON_TOO_SHORT: Final = "reason_too_short"
THIRD_PARTY_NOT_APPROVED: Final = "third_party_not_approved"
QUOTA_EXCEEDED: Final = "quota_exceeded"

RULES_IN_ORDER: Final[tuple[str, ...]] = (
    CALLER_NOT_ASSIGNEE,
    TASK_NOT_IN_PROGRESS,
    CLIENT_MISMATCH,
    CLIENT_NOT_ACTIVE,
    OUT_OF_SCOPE,
    REASON_TOO_SHORT,
    THIRD_PARTY_NOT_APPROVED,
    QUOTA_EXCEEDED,
)

# Not in the contract (which only names the three conditions); chosen here and used in the
# `service_release.denied` audit entry and the 403 body of `/internal/service-releases`.
NOT_API_KEY: Final = "not_api_key"
VENDOR_ACCOUNT_MISMATCH: Final = "vendor_account_mismatch"

SERVICE_RULES_IN_ORDER: Final[tuple[str, ...]] = (NOT_API_KEY, VENDOR_ACCOUNT_MISMATCH, CLIENT_NOT_ACTIVE)

MIN_REASON_LENGTH: Final = 10
DEFAULT_QUOTA_PER_HOUR: Final = 10
CREDENTIALS_CATEGORY: Final = "credentials"

TaskStatus = Literal["new", "awaiting_approval", "ready", "in_progress", "on_hold", "done", "rejected", "cancelled"]
ClientStatus = Literal["active", "inactive", "closed"]
ApprovalStatus = Literal["pending", "approved", "rejected", "expired"]
PartyCategory = Literal[
    "provider_for_msp",
    "provider_for_client",
    "client_legal_representative",
    "msp_professional_adviser",
    "government_legal_process",
]
CredentialKind = Literal["password", "api_key"]
CredentialOwner = Literal["client", "msp"]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Naive times are refused: comparing an expiry without an offset would silently assume local time.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class MalformedAuthorization(Exception):
    """Intake's authorization view did not match the expected shape; the service answers 503."""


class _Frozen(BaseModel):
    # strict: constructing these in code needs real UUIDs/datetimes/frozensets, no silent coercion;
    # extra="ignore": intake may add fields (e.g. an approval's decided_by) without breaking releases.
    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")


class Scope(_Frozen):
    """What a task may touch."""

    credential_categories: frozenset[str] = frozenset()
    vendor_account_ids: frozenset[UUID] = frozenset()
    credential_ids: frozenset[UUID] = frozenset()


class Recipient(_Frozen):
    """The third party an approval lets the MSP disclose to."""

    name: str
    contact_email: str | None = None
    party_category: PartyCategory
    legal_reference: str | None = None

    @model_validator(mode="after")
    def _legal_process_needs_reference(self) -> Recipient:
        # The ledger must name the subpoena or order; a view without it is not trustworthy.
        if self.party_category == "government_legal_process" and not self.legal_reference:
            raise ValueError("government_legal_process needs legal_reference")
        return self


class Approval(_Frozen):
    """A client's recorded decision on one disclosure, as intake reports it."""

    id: UUID
    task_id: UUID
    client_id: UUID
    status: ApprovalStatus
    recipient: Recipient
    information_categories: frozenset[str]
    credential_ids: frozenset[UUID]
    expires_at: UtcDatetime


class TaskAuth(_Frozen):
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

    @classmethod
    def from_view(cls, data: Mapping[str, Any] | str | bytes) -> TaskAuth:
        """Parse intake's JSON view strictly, raising MalformedAuthorization on any mismatch."""
        return parse_task_auth(data)

    def approval(self, approval_id: UUID) -> Approval | None:
        """The live approval with this id, or None."""
        return next((a for a in self.approvals if a.id == approval_id), None)


class CredentialMeta(_Frozen):
    """A credential's metadata row (never the secret)."""

    id: UUID
    client_id: UUID
    vendor_account_id: UUID | None
    kind: CredentialKind
    owner: CredentialOwner
    category: str
    status: str


class Caller(_Frozen):
    """The verified identity behind the request."""

    sub: str
    role: str
    client_id: UUID | None = None


class Decision(_Frozen):
    """The outcome: allowed, or the id of the first failing rule."""

    allowed: bool
    rule: str | None = None

    @model_validator(mode="after")
    def _rule_iff_denied(self) -> Decision:
        if self.allowed == (self.rule is not None):
            raise ValueError("a denial names exactly one rule; an allow names none")
        return self

    @classmethod
    def allow(cls) -> Decision:
        """An allow."""
        return cls(allowed=True)

    @classmethod
    def deny(cls, rule: str) -> Decision:
        """A denial naming its rule."""
        return cls(allowed=False, rule=rule)


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


def in_scope(scope: Scope, credential: CredentialMeta) -> bool:
    """Whether the scope names the credential, or its vendor account together with its category."""
    if credential.id in scope.credential_ids:
        return True
    # A category alone never suffices: it would open every client credential of that category.
    return (
        credential.vendor_account_id is not None
        and credential.vendor_account_id in scope.vendor_account_ids
        and credential.category in scope.credential_categories
    )


def approval_permits(task_auth: TaskAuth, approval: Approval, credential: CredentialMeta, now: datetime) -> bool:
    """Whether a live approval lets this credential go to its recipient now."""
    return (
        approval.status == "approved"
        and now < approval.expires_at
        and approval.task_id == task_auth.task_id
        # Defence in depth: intake only lists the task's own approvals, which share its client.
        and approval.client_id == task_auth.client_id
        and CREDENTIALS_CATEGORY in approval.information_categories
        and credential.id in approval.credential_ids
    )


def decide(
    task_auth: TaskAuth,
    credential: CredentialMeta,
    caller: Caller,
    approval: UUID | Approval | None,
    releases_last_hour: int,
    now: datetime,
    *,
    reason: str,
    quota_per_hour: int = DEFAULT_QUOTA_PER_HOUR,
) -> Decision:
    """Decide a release to a person; the first failing rule of RULES_IN_ORDER is returned."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    # Only the approval's id is trusted: its state is always read from the live view, so a copy
    # fetched earlier (or supplied by the caller) cannot carry a stale `approved`.
    approval_id = approval.id if isinstance(approval, Approval) else approval

    if caller.role != "technician" or task_auth.assignee is None or caller.sub != task_auth.assignee:
        return Decision.deny(CALLER_NOT_ASSIGNEE)
    if task_auth.status != "in_progress":
        return Decision.deny(TASK_NOT_IN_PROGRESS)
    if credential.client_id != task_auth.client_id:
        return Decision.deny(CLIENT_MISMATCH)
    if task_auth.client_status != "active":
        return Decision.deny(CLIENT_NOT_ACTIVE)
    if not in_scope(task_auth.scope, credential):
        return Decision.deny(OUT_OF_SCOPE)
    if len(reason.strip()) < MIN_REASON_LENGTH:
        return Decision.deny(REASON_TOO_SHORT)
    if approval_id is not None:
        live = task_auth.approval(approval_id)
        if live is None or not approval_permits(task_auth, live, credential, now):
            return Decision.deny(THIRD_PARTY_NOT_APPROVED)
    if releases_last_hour >= quota_per_hour:
        return Decision.deny(QUOTA_EXCEEDED)
    return Decision.allow()


def decide_service(credential: CredentialMeta, vendor_account_id: UUID, client_status: str) -> Decision:
    """Decide a release to vendor_sync; the first failing rule of SERVICE_RULES_IN_ORDER is returned."""
    if credential.kind != "api_key":
        return Decision.deny(NOT_API_KEY)
    if credential.vendor_account_id is None or credential.vendor_account_id != vendor_account_id:
        return Decision.deny(VENDOR_ACCOUNT_MISMATCH)
    if client_status != "active":
        return Decision.deny(CLIENT_NOT_ACTIVE)
    return Decision.allow()

"""Task bodies and views."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictBool, StringConstraints
from pydantic_core import PydanticCustomError

from intake.approvals.schemas import ApprovalPublic
from intake.common.types import Input, LongText, Name, Output, UtcDatetime
from mspkit.patterns import described, words_for
from mspkit.vocabulary import ClientStatus, CredentialCategory, TaskStatus

SystemTaskType = Literal["drift_review", "provisioning", "renewal", "sync_failure"]
TaskType = Literal[
    "purchase",
    "isp_account_setup",
    "spam_filter_setup",
    "vendor_contact_update",
    "drift_review",
    "provisioning",
    "renewal",
    "sync_failure",
]


class Scope(Output):
    """What a task may touch: a credential is in scope by id, or by vendor account and category together."""

    credential_categories: list[CredentialCategory]
    vendor_account_ids: list[uuid.UUID]
    credential_ids: list[uuid.UUID]


StepStatus = Literal["pending", "succeeded", "failed"]


class StepPublic(Output):
    """A step: a worker's result, or a `human` step that a person decides."""

    id: uuid.UUID
    name: str
    status: StepStatus
    human: bool
    detail: str | None
    created_at: UtcDatetime


class NotePublic(Output):
    """An internal note."""

    id: uuid.UUID
    kind: str
    author: str
    body: str
    created_at: UtcDatetime


class PsaTicket(Output):
    """The task's ticket in the PSA."""

    provider: str
    ticket_id: str
    ticket_url: str


class TaskPublic(Output):
    """A task as client roles see it (no internal notes)."""

    id: uuid.UUID
    request_id: uuid.UUID | None
    client_id: uuid.UUID
    type: TaskType
    title: str
    status: TaskStatus
    assignee: str | None
    assigned_by: str | None
    scope: Scope
    approvals: list[ApprovalPublic]
    steps: list[StepPublic]
    psa: PsaTicket | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class TaskStaffView(TaskPublic):
    """A task as technicians and admins see it: with its internal notes."""

    internal_notes: list[NotePublic]


TaskView = TaskStaffView | TaskPublic


# OpenID Connect Core §2: a `sub` is at most 255 ASCII characters. Visible ones only: a space or a
# control character in an assignee is a typo or an injection, never a person's subject.
SUBJECT_PATTERN = described(r"^[!-~]+$", "must be a person's subject: visible ASCII, no spaces or control characters")
_SUBJECT = re.compile(SUBJECT_PATTERN)
SERVICE_PREFIX = "svc:"
UNASSIGNED = "none"  # `GET /v1/tasks?assignee=none` lists the tasks nobody holds, so no person may be "none"


def _person_subject(value: str) -> str:
    """A person's `sub`: refused in plain words (the default message would quote the pattern)."""
    if not _SUBJECT.fullmatch(value):
        raise PydanticCustomError("subject", words_for(SUBJECT_PATTERN))
    if value.startswith(SERVICE_PREFIX):
        # Services act on tasks through their own routes (the claim), never as an assignee given here.
        raise PydanticCustomError("service_subject", "a service subject cannot be assigned")
    if value == UNASSIGNED:
        raise PydanticCustomError("reserved_subject", f"'{UNASSIGNED}' is reserved: it means unassigned")
    return value


# Until the staff directory exists the shape is all intake can check; then the service also refuses a
# subject that is not a known technician. The schema states the same rules, so generated clients agree.
Assignee = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255),
    AfterValidator(_person_subject),
    Field(
        json_schema_extra={
            "pattern": SUBJECT_PATTERN,
            "not": {"anyOf": [{"pattern": f"^{SERVICE_PREFIX}"}, {"const": UNASSIGNED}]},
        }
    ),
]


class TaskAssign(Input):
    """POST /v1/tasks/{id}/assign."""

    assignee: Assignee


class TaskTransition(Input):
    """POST /v1/tasks/{id}/transition; the note is kept as an internal note."""

    to: TaskStatus
    note: LongText | None = None


def _no_assets(value: list[uuid.UUID]) -> list[uuid.UUID]:
    if value:
        raise PydanticCustomError("assets_not_available", "assets do not exist yet, so none can be named")
    return value


# Until the inventory exists (DESIGN.md § Contract: inventory) no asset can be named; the schema says so too.
NoAssets = Annotated[list[uuid.UUID], AfterValidator(_no_assets), Field(json_schema_extra={"maxItems": 0})]


class ScopeItems(Input):
    """What to add to or remove from a task's scope."""

    credential_ids: Annotated[list[uuid.UUID], Field(max_length=100)] = []
    vendor_account_ids: Annotated[list[uuid.UUID], Field(max_length=50)] = []
    asset_ids: NoAssets = []
    credential_categories: Annotated[list[CredentialCategory], Field(max_length=12)] = []


class ScopeChange(Input):
    """POST /v1/tasks/{id}/scope (admin only)."""

    add: ScopeItems = Field(default_factory=ScopeItems)
    remove: ScopeItems = Field(default_factory=ScopeItems)


class ProvisionedItems(Input):
    """The credentials to add: provisioning adds only credentials, and only those it stored for the task."""

    credential_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=100)]


class ProvisionedCredentials(Input):
    """POST /internal/tasks/{id}/scope (svc:vendor_sync): the admin route's body, narrowed to adding credentials."""

    add: ProvisionedItems


class SystemTaskCreate(Input):
    """POST /internal/tasks: a system task (e.g. a drift review), starting in `new`.

    `dedupe_key` makes a retried call return the task it already created (200) instead of a second one.
    """

    client_id: uuid.UUID
    type: SystemTaskType
    title: Name
    vendor_account_ids: Annotated[list[uuid.UUID], Field(max_length=50)] = []
    credential_categories: Annotated[list[CredentialCategory], Field(max_length=12)] = []
    # No `credential_ids`: a system task never names credentials (an admin adds them to its scope).
    dedupe_key: Name | None = None


class StepCreate(Input):
    """POST /internal/tasks/{id}/steps: a repeated `idempotency_key` (per task) returns the first step, 200."""

    name: Name
    status: StepStatus
    human: StrictBool
    detail: LongText | None = None
    idempotency_key: Name


class StepDecision(Input):
    """POST /v1/tasks/{id}/steps/{step_id}: a person's outcome of a pending human step."""

    status: Literal["succeeded", "failed"]
    detail: LongText | None = None


# Python's `\s` is what `str.strip` removes, so this pattern and the check below agree on "blank".
NOTE_PATTERN = described(
    r"^[^\x00]*[^\s\x00][^\x00]*$", "must contain something other than white space, and no NUL character"
)


def _note_text(value: str) -> str:
    """A note's body without its surrounding whitespace, refused in plain words when blank or holding NUL."""
    if "\x00" in value:
        raise PydanticCustomError("nul", "must not contain a NUL character")
    value = value.strip()
    if not value:
        raise PydanticCustomError("blank", "must not be blank")
    return value


# The length counts what was sent (so the schema's maxLength holds); what is stored is stripped.
NoteText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=10_000),
    AfterValidator(_note_text),
    Field(json_schema_extra={"pattern": NOTE_PATTERN}),
]


class NoteCreate(Input):
    """POST /v1/tasks/{id}/notes: an internal note, staff only."""

    body: NoteText


class TaskAuthorization(Output):
    """The live authorization view the broker decides releases on."""

    task_id: uuid.UUID
    status: TaskStatus
    assignee: str | None
    assigned_by: str | None
    client_id: uuid.UUID
    client_status: ClientStatus
    scope: Scope
    approvals: list[ApprovalPublic]
    updated_at: UtcDatetime

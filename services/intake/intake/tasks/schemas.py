"""Task bodies and views."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field

from intake.approvals.schemas import ApprovalPublic
from intake.common.types import Input, LongText, Name, Output, Subject, UtcDatetime
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


class StepPublic(Output):
    """A step result reported by a worker."""

    id: uuid.UUID
    name: str
    status: Literal["succeeded", "failed"]
    detail: str | None
    created_at: UtcDatetime


class NotePublic(Output):
    """An internal note."""

    id: uuid.UUID
    kind: str
    author: str
    body: str
    created_at: UtcDatetime


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
    created_at: UtcDatetime
    updated_at: UtcDatetime


class TaskStaffView(TaskPublic):
    """A task as technicians and admins see it: with its internal notes."""

    internal_notes: list[NotePublic]


TaskView = TaskStaffView | TaskPublic


class TaskAssign(Input):
    """POST /v1/tasks/{id}/assign."""

    assignee: Subject


class TaskTransition(Input):
    """POST /v1/tasks/{id}/transition; the note is kept as an internal note."""

    to: TaskStatus
    note: LongText | None = None


class SystemTaskCreate(Input):
    """POST /internal/tasks: a system task (e.g. a drift review), starting in `new`.

    `dedupe_key` makes a retried call return the task it already created (200) instead of a second one.
    """

    client_id: uuid.UUID
    type: SystemTaskType
    title: Name
    vendor_account_ids: Annotated[list[uuid.UUID], Field(max_length=50)] = []
    credential_categories: Annotated[list[CredentialCategory], Field(max_length=12)] = []
    credential_ids: Annotated[list[uuid.UUID], Field(max_length=100)] = []
    dedupe_key: Name | None = None


class StepCreate(Input):
    """POST /internal/tasks/{id}/steps."""

    name: Name
    status: Literal["succeeded", "failed"]
    detail: LongText | None = None


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

"""Task routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from intake.approvals import service as approvals
from intake.approvals.schemas import ApprovalCreate, ApprovalPublic
from intake.common.types import NO_NUL
from intake.deps import Reader, SessionDep, StaffUser
from intake.tasks import notes, provisioning, scope, service, steps, views
from intake.tasks.schemas import (
    NoteCreate,
    NotePublic,
    ScopeChange,
    StepDecision,
    StepPublic,
    TaskAssign,
    TaskTransition,
    TaskType,
    TaskView,
)
from mspkit.pagination import Cursor, Limit, Page
from mspkit.patterns import TOKEN_CHARS
from mspkit.vocabulary import TaskStatus

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

AssigneeFilter = Annotated[str | None, Query(min_length=1, max_length=255, pattern=NO_NUL)]
# The configured PSA's ticket number (ConnectWise: a positive integer; other PSAs: their own ids).
PsaTicketFilter = Annotated[str | None, Query(min_length=1, max_length=64, pattern=TOKEN_CHARS)]


@router.get("", response_model=Page[TaskView])
def list_tasks(
    user: Reader,
    session: SessionDep,
    client_id: uuid.UUID | None = None,
    status: TaskStatus | None = None,
    type: TaskType | None = None,
    assignee: AssigneeFilter = None,
    psa_ticket_id: PsaTicketFilter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TaskView]:
    """Tasks the caller may see (client roles: their own client's, without internal notes)."""
    items, next_cursor = service.list_tasks(
        session,
        user=user,
        client_id=client_id,
        status=status,
        type=type,
        assignee=assignee,
        psa_ticket_id=psa_ticket_id,
        limit=limit,
        cursor=cursor,
    )
    return Page[TaskView](items=items, next_cursor=next_cursor)  # type: ignore[arg-type]


@router.get("/{task_id}", response_model=TaskView)
def get_task(task_id: uuid.UUID, user: Reader, session: SessionDep) -> TaskView:
    """Read a task."""
    return views.task_view(session, task=service.get_task(session, user=user, task_id=task_id), user=user)


@router.post("/{task_id}/assign", response_model=TaskView)
def assign_task(task_id: uuid.UUID, body: TaskAssign, user: StaffUser, session: SessionDep) -> TaskView:
    """Assign a task: an admin (re)assigns; a technician takes an unassigned ready task for themselves."""
    task = service.assign(session, user=user, task_id=task_id, assignee=body.assignee)
    return views.task_view(session, task=task, user=user)


@router.post("/{task_id}/transition", response_model=TaskView)
def transition_task(task_id: uuid.UUID, body: TaskTransition, user: StaffUser, session: SessionDep) -> TaskView:
    """Move a task through the workflow (its assignee or an admin)."""
    task = service.transition(session, user=user, task_id=task_id, target=body.to, note=body.note)
    return views.task_view(session, task=task, user=user)


@router.post("/{task_id}/notes", status_code=201)
def write_note(task_id: uuid.UUID, body: NoteCreate, user: Reader, session: SessionDep) -> NotePublic:
    """Add an internal note, open or closed task (its assignee or an admin; client roles: 404)."""
    return NotePublic.model_validate(notes.write_note(session, user=user, task_id=task_id, body=body.body))


@router.post("/{task_id}/steps/{step_id}")
def decide_step(
    task_id: uuid.UUID, step_id: uuid.UUID, body: StepDecision, user: Reader, session: SessionDep
) -> StepPublic:
    """Decide a pending human step of an open task (its assignee or an admin; client roles: 404)."""
    return StepPublic.model_validate(steps.decide_step(session, user=user, task_id=task_id, step_id=step_id, body=body))


@router.post("/{task_id}/scope", response_model=TaskView)
def change_scope(task_id: uuid.UUID, body: ScopeChange, user: Reader, session: SessionDep) -> TaskView:
    """Add to or remove from a task's scope (admin only: nobody widens their own access)."""
    task = scope.change_scope(session, user=user, task_id=task_id, change=body)
    return views.task_view(session, task=task, user=user)


@router.post("/{task_id}/provisioning/retry", status_code=202, response_model=TaskView)
def retry_provisioning(task_id: uuid.UUID, user: StaffUser, session: SessionDep) -> TaskView:
    """Hand an on_hold provisioning task back to provisioning: `ready`, unassigned (admin; a technician of its client).

    `task.status_changed` to `ready` starts provisioning again, which re-runs the unfinished steps.
    A task another person holds: 403. Any status but `on_hold`: 409 `invalid_transition`; a type
    not provisioned at vendors: 409 `conflict` naming `type`.
    """
    task = provisioning.retry(session, user=user, task_id=task_id)
    return views.task_view(session, task=task, user=user)


@router.post("/{task_id}/approvals", status_code=201)
def request_approval(task_id: uuid.UUID, body: ApprovalCreate, user: StaffUser, session: SessionDep) -> ApprovalPublic:
    """Ask the client to approve disclosing named information to a named third party (assignee or admin)."""
    return approvals.view(approvals.request_approval(session, user=user, task_id=task_id, body=body))

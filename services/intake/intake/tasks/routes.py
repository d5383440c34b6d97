"""Task routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from intake.approvals import service as approvals
from intake.approvals.schemas import ApprovalCreate, ApprovalPublic
from intake.common.types import NO_NUL
from intake.deps import Reader, SessionDep, StaffUser
from intake.tasks import service, views
from intake.tasks.schemas import TaskAssign, TaskTransition, TaskType, TaskView
from mspkit.pagination import Cursor, Limit, Page
from mspkit.vocabulary import TaskStatus

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

AssigneeFilter = Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL)]


@router.get("", response_model=Page[TaskView])
def list_tasks(
    user: Reader,
    session: SessionDep,
    client_id: uuid.UUID | None = None,
    status: TaskStatus | None = None,
    type: TaskType | None = None,
    assignee: AssigneeFilter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TaskView]:
    """Tasks the caller may see (client roles: their own client's, without internal notes)."""
    items, next_cursor = service.list_tasks(
        session, user=user, client_id=client_id, status=status, type=type, assignee=assignee, limit=limit, cursor=cursor
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


@router.post("/{task_id}/approvals", status_code=201)
def request_approval(task_id: uuid.UUID, body: ApprovalCreate, user: StaffUser, session: SessionDep) -> ApprovalPublic:
    """Ask the client to approve disclosing named information to a named third party (assignee or admin)."""
    return approvals.view(approvals.request_approval(session, user=user, task_id=task_id, body=body))

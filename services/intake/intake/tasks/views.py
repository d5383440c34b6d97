"""Task views: the contract's task shapes (with approvals, steps and staff notes) and the broker's view."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlmodel import Session, col, select

from intake.approvals.schemas import ApprovalPublic
from intake.approvals.views import approvals_by_task
from intake.clients.models import Client
from intake.common.types import utcnow
from intake.psa.models import PsaLink
from intake.tasks.models import Task, TaskNote, TaskStep
from intake.tasks.schemas import (
    NotePublic,
    PsaTicket,
    Scope,
    StepPublic,
    TaskAuthorization,
    TaskPublic,
    TaskStaffView,
)
from mspkit.auth import Principal

STAFF_ROLES = ("admin", "technician")


def scope_of(task: Task) -> Scope:
    """The task's scope."""
    return Scope(
        credential_categories=task.credential_categories,  # type: ignore[arg-type]
        vendor_account_ids=[uuid.UUID(v) for v in task.vendor_account_ids],
        credential_ids=[uuid.UUID(c) for c in task.credential_ids],
    )


def task_views(session: Session, *, tasks: Sequence[Task], staff: bool) -> list[TaskPublic]:
    """Views of these tasks with approvals, steps and PSA tickets (and internal notes for staff), in four queries."""
    ids = [t.id for t in tasks]
    now = utcnow()
    approvals = approvals_by_task(session, task_ids=ids, now=now)
    steps: dict[uuid.UUID, list[StepPublic]] = defaultdict(list)
    notes: dict[uuid.UUID, list[NotePublic]] = defaultdict(list)
    tickets: dict[uuid.UUID, PsaTicket] = {}
    if ids:
        for link in session.exec(select(PsaLink).where(col(PsaLink.task_id).in_(ids))).all():
            tickets[link.task_id] = PsaTicket(
                provider=link.provider, ticket_id=link.ticket_id, ticket_url=link.ticket_url
            )
        for step in session.exec(
            select(TaskStep).where(col(TaskStep.task_id).in_(ids)).order_by(col(TaskStep.created_at), col(TaskStep.id))
        ).all():
            steps[step.task_id].append(StepPublic.model_validate(step))
        if staff:
            for note in session.exec(
                select(TaskNote)
                .where(col(TaskNote.task_id).in_(ids))
                .order_by(col(TaskNote.created_at), col(TaskNote.id))
            ).all():
                notes[note.task_id].append(NotePublic.model_validate(note))
    views: list[TaskPublic] = []
    for task in tasks:
        fields = dict(
            id=task.id,
            request_id=task.request_id,
            client_id=task.client_id,
            type=task.type,
            title=task.title,
            status=task.status,
            assignee=task.assignee,
            assigned_by=task.assigned_by,
            scope=scope_of(task),
            approvals=approvals.get(task.id, []),
            steps=steps.get(task.id, []),
            psa=tickets.get(task.id),
            created_at=task.created_at,
            updated_at=task.updated_at,
        )
        if staff:
            views.append(TaskStaffView(**fields, internal_notes=notes.get(task.id, [])))
        else:
            views.append(TaskPublic(**fields))
    return views


def task_view(session: Session, *, task: Task, user: Principal) -> TaskPublic:
    """One task's view for this caller (internal notes only for staff)."""
    return task_views(session, tasks=[task], staff=user.role in STAFF_ROLES)[0]


def authorization_view(task: Task, client_status: str | None, approvals: list[ApprovalPublic]) -> TaskAuthorization:
    """The broker's view of one task, from its row, its client's status and its approvals."""
    return TaskAuthorization(
        task_id=task.id,
        status=task.status,  # type: ignore[arg-type]
        assignee=task.assignee,
        assigned_by=task.assigned_by,
        client_id=task.client_id,
        # A task whose client row is gone is treated as a closed client's: fail closed.
        client_status=client_status or "closed",  # type: ignore[arg-type]
        scope=scope_of(task),
        approvals=approvals,
        updated_at=task.updated_at,
    )


def authorization_views(session: Session, *, tasks: Sequence[Task]) -> list[TaskAuthorization]:
    """The broker's views of these tasks, in two more statements (client statuses, approvals)."""
    approvals = approvals_by_task(session, task_ids=[t.id for t in tasks], now=utcnow())
    client_ids = {t.client_id for t in tasks}
    statuses = dict(
        session.exec(select(Client.id, Client.status).where(col(Client.id).in_(client_ids))).all() if client_ids else []
    )
    return [authorization_view(t, statuses.get(t.client_id), approvals.get(t.id, [])) for t in tasks]

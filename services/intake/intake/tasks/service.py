"""Tasks: the object-level check, views, assignment, transitions, system tasks and steps."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from intake.approvals.views import approvals_by_task
from intake.clients.models import Client
from intake.common.pages import page_query, split_page
from intake.common.types import new_id, utcnow
from intake.deps import sees_client
from intake.events import emit
from intake.requests.status import refresh_request_status
from intake.tasks import workflow
from intake.tasks.models import Task, TaskNote, TaskStep
from intake.tasks.schemas import (
    NotePublic,
    Scope,
    StepCreate,
    StepPublic,
    SystemTaskCreate,
    TaskAuthorization,
    TaskPublic,
    TaskStaffView,
)
from intake.tasks.workflow import Actor
from mspkit.auth import Principal
from mspkit.errors import Conflict, Forbidden, NotFound

STAFF_ROLES = ("admin", "technician")


def _not_found() -> NotFound:
    # Never echo the id: another tenant's task and a missing one must give the same bytes.
    return NotFound("task not found")


def get_task(session: Session, user: Principal, task_id: uuid.UUID, *, for_update: bool = False) -> Task:
    """The task if the caller may see it, else 404 (a missing task and another tenant's look the same)."""
    query = select(Task).where(Task.id == task_id)
    if for_update:
        query = query.with_for_update()
    task = session.exec(query).first()
    if task is None or not sees_client(user, task.client_id):
        raise _not_found()
    return task


def next_updated_at(previous: datetime) -> datetime:
    """A strictly later `updated_at`: the broker compares it to detect any change."""
    return max(utcnow(), previous + timedelta(microseconds=1))


def scope_of(task: Task) -> Scope:
    """The task's scope."""
    return Scope(
        credential_categories=task.credential_categories,  # type: ignore[arg-type]
        vendor_account_ids=[uuid.UUID(v) for v in task.vendor_account_ids],
        credential_ids=[uuid.UUID(c) for c in task.credential_ids],
    )


def task_views(session: Session, tasks: Sequence[Task], *, staff: bool) -> list[TaskPublic]:
    """Views of these tasks with approvals and steps (and internal notes for staff), in three queries."""
    ids = [t.id for t in tasks]
    now = utcnow()
    approvals = approvals_by_task(session, ids, now)
    steps: dict[uuid.UUID, list[StepPublic]] = defaultdict(list)
    notes: dict[uuid.UUID, list[NotePublic]] = defaultdict(list)
    if ids:
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
            created_at=task.created_at,
            updated_at=task.updated_at,
        )
        if staff:
            views.append(TaskStaffView(**fields, internal_notes=notes.get(task.id, [])))
        else:
            views.append(TaskPublic(**fields))
    return views


def task_view(session: Session, task: Task, user: Principal) -> TaskPublic:
    """One task's view for this caller (internal notes only for staff)."""
    return task_views(session, [task], staff=user.role in STAFF_ROLES)[0]


def list_tasks(
    session: Session,
    user: Principal,
    *,
    client_id: uuid.UUID | None,
    status: str | None,
    type: str | None,
    assignee: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[TaskPublic], str | None]:
    """A page of tasks the caller may see, filtered."""
    query = select(Task)
    if user.is_client:
        if client_id is not None and client_id != user.client_id:
            return [], None
        client_id = user.client_id
    if client_id is not None:
        query = query.where(Task.client_id == client_id)
    if status is not None:
        query = query.where(Task.status == status)
    if type is not None:
        query = query.where(Task.type == type)
    if assignee is not None:
        query = query.where(Task.assignee == assignee)
    rows = session.exec(page_query(query, Task, limit=limit, cursor=cursor)).all()
    items, next_cursor = split_page(rows, limit)
    return task_views(session, items, staff=user.role in STAFF_ROLES), next_cursor


def _client_status(session: Session, client_id: uuid.UUID) -> str:
    status = session.exec(select(Client.status).where(Client.id == client_id)).first()
    return status or "closed"


def apply_status(session: Session, task: Task, target: str, *, actor: Actor) -> None:
    """Move a task through the workflow table, write `task.status_changed`, and refresh its request."""
    workflow.check(task.status, target, actor)
    previous = task.status
    task.status = target
    task.updated_at = next_updated_at(task.updated_at)
    session.add(task)
    emit(
        session,
        "task.status_changed",
        client_id=task.client_id,
        aggregate_id=task.id,
        data={"task_id": str(task.id), "from": previous, "to": target, "assignee": task.assignee},
    )
    if task.request_id is not None:
        refresh_request_status(session, task.request_id)


def add_note(session: Session, task: Task, *, kind: str, author: str, body: str) -> None:
    """Add an internal note."""
    session.add(TaskNote(id=new_id(), task_id=task.id, kind=kind, author=author, body=body, created_at=utcnow()))


def assign(session: Session, user: Principal, task_id: uuid.UUID, assignee: str) -> Task:
    """Assign a task: an admin assigns or reassigns any open task; a technician takes an unassigned ready one."""
    task = get_task(session, user, task_id, for_update=True)
    if user.role != "admin":
        if assignee != user.sub:
            raise Forbidden("a technician may only take a task for themselves")
        if task.assignee == user.sub:
            return task
        if task.assignee is not None:
            raise Forbidden("reassigning is admin-only")
        if task.status != "ready":
            raise Conflict("only a ready task can be taken", current_status=task.status)
    if not workflow.is_open(task.status):
        raise Conflict("a closed task cannot be assigned", current_status=task.status)
    if task.assignee == assignee:
        return task
    previous = task.assignee
    task.assignee = assignee
    task.assigned_by = user.sub
    task.updated_at = next_updated_at(task.updated_at)
    session.add(task)
    emit(
        session,
        "task.assigned",
        client_id=task.client_id,
        aggregate_id=task.id,
        data={
            "task_id": str(task.id),
            "assignee": assignee,
            "previous_assignee": previous,
            "assigned_by": user.sub,
            "status": task.status,
        },
    )
    return task


def transition(session: Session, user: Principal, task_id: uuid.UUID, target: str, note: str | None) -> Task:
    """Move a task on behalf of its assignee or an admin (anyone else: 403 before the table is consulted)."""
    task = get_task(session, user, task_id, for_update=True)
    is_admin = user.role == "admin"
    if not is_admin and (task.assignee is None or task.assignee != user.sub):
        raise Forbidden("only the assignee or an admin may move this task")
    actor = Actor.ADMIN if is_admin else Actor.ASSIGNEE
    workflow.check(task.status, target, actor)
    if target == "in_progress" and task.assignee is None:
        raise Conflict("assign the task before starting it", current_status=task.status)
    if workflow.is_open(target) and _client_status(session, task.client_id) != "active":
        raise Conflict("the client is not active", current_status=task.status)
    apply_status(session, task, target, actor=actor)
    if note:
        add_note(session, task, kind="transition", author=user.sub, body=f"{target}: {note}")
    return task


def create_system_task(session: Session, service: Principal, body: SystemTaskCreate) -> tuple[Task, bool]:
    """Create a system task in `new` (request_id NULL); with a known dedupe_key return that task instead."""
    if body.dedupe_key is not None:
        existing = session.exec(select(Task).where(Task.dedupe_key == body.dedupe_key)).first()
        if existing is not None:
            return existing, False
    client = session.exec(select(Client).where(Client.id == body.client_id).with_for_update(read=True)).first()
    if client is None:
        raise NotFound("client not found", field="client_id")
    if client.status != "active":
        raise Conflict("the client is not active", field="client_id")
    now = utcnow()
    task = Task(
        id=new_id(),
        request_id=None,
        client_id=client.id,
        type=body.type,
        title=body.title,
        status="new",
        credential_categories=list(dict.fromkeys(body.credential_categories)),
        vendor_account_ids=list(dict.fromkeys(str(v) for v in body.vendor_account_ids)),
        credential_ids=list(dict.fromkeys(str(c) for c in body.credential_ids)),
        dedupe_key=body.dedupe_key,
        created_by=service.sub,
        created_at=now,
        updated_at=now,
    )
    session.add(task)
    emit(
        session,
        "task.created",
        client_id=task.client_id,
        aggregate_id=task.id,
        data={"task_id": str(task.id), "request_id": None, "status": task.status},
    )
    try:
        session.flush()
    except IntegrityError:
        # A concurrent retry with the same dedupe_key won the race: answer with its task.
        session.rollback()
        existing = session.exec(select(Task).where(Task.dedupe_key == body.dedupe_key)).first()
        if existing is None:
            raise
        return existing, False
    return task, True


def add_step(session: Session, service: Principal, task_id: uuid.UUID, body: StepCreate) -> TaskStep:
    """Append a worker's step result to a task (open or closed: a late report is still a record)."""
    task = get_task(session, service, task_id)
    step = TaskStep(
        id=new_id(),
        task_id=task.id,
        name=body.name,
        status=body.status,
        detail=body.detail,
        reported_by=service.sub,
        created_at=utcnow(),
    )
    session.add(step)
    return step


def authorization_views(session: Session, tasks: Sequence[Task]) -> list[TaskAuthorization]:
    """The broker's view of these tasks: status, assignee, client status, scope, approvals."""
    now = utcnow()
    approvals = approvals_by_task(session, [t.id for t in tasks], now)
    client_ids = {t.client_id for t in tasks}
    statuses = dict(
        session.exec(select(Client.id, Client.status).where(col(Client.id).in_(client_ids))).all() if client_ids else []
    )
    return [
        TaskAuthorization(
            task_id=t.id,
            status=t.status,  # type: ignore[arg-type]
            assignee=t.assignee,
            assigned_by=t.assigned_by,
            client_id=t.client_id,
            client_status=statuses.get(t.client_id, "closed"),
            scope=scope_of(t),
            approvals=approvals.get(t.id, []),
            updated_at=t.updated_at,
        )
        for t in tasks
    ]


def list_authorizations(
    session: Session, *, assignee: str | None, status: str | None, limit: int, cursor: str | None
) -> tuple[list[TaskAuthorization], str | None]:
    """A page of authorization views, filtered by assignee and status."""
    query = select(Task)
    if assignee is not None:
        query = query.where(Task.assignee == assignee)
    if status is not None:
        query = query.where(Task.status == status)
    rows = session.exec(page_query(query, Task, limit=limit, cursor=cursor)).all()
    items, next_cursor = split_page(rows, limit)
    return authorization_views(session, items), next_cursor

"""Tasks: the object-level check, views, assignment, transitions and system tasks (steps: `steps.py`)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from intake.approvals.models import Approval
from intake.approvals.views import approval_view
from intake.clients.models import Client
from intake.common.queries import get_visible, keyset_page, tenant_page, where_equal
from intake.common.types import new_id, utcnow
from intake.events import emit
from intake.psa.models import PsaLink
from intake.requests.status import refresh_request_status
from intake.settings import get_settings
from intake.staff.directory import ensure_assignable
from intake.tasks import workflow
from intake.tasks.models import Task, TaskNote
from intake.tasks.schemas import UNASSIGNED, SystemTaskCreate, TaskAuthorization, TaskPublic
from intake.tasks.views import STAFF_ROLES, authorization_view, authorization_views, task_views
from intake.tasks.workflow import Actor
from mspkit.auth import Principal
from mspkit.errors import Conflict, Forbidden, NotFound
from mspkit.tenancy import sees_client


def get_task(session: Session, *, user: Principal, task_id: uuid.UUID, for_update: bool = False) -> Task:
    """The task if the caller may see it, else 404 (a missing task and another tenant's look the same)."""
    return get_visible(session, Task, task_id, user=user, what="task", for_update=for_update)


def next_updated_at(previous: datetime) -> datetime:
    """A strictly later `updated_at`: the broker compares it to detect any change."""
    return max(utcnow(), previous + timedelta(microseconds=1))


def list_tasks(
    session: Session,
    *,
    user: Principal,
    client_id: uuid.UUID | None,
    status: str | None,
    type: str | None,
    assignee: str | None,
    limit: int,
    cursor: str | None,
    psa_ticket_id: str | None = None,
) -> tuple[list[TaskPublic], str | None]:
    """A page of tasks the caller may see, filtered (`assignee="none"`: the tasks nobody holds)."""
    unassigned = assignee == UNASSIGNED
    filters = {"status": status, "type": type, "assignee": None if unassigned else assignee}
    where: tuple[Any, ...] = (col(Task.assignee).is_(None),) if unassigned else ()
    if psa_ticket_id is not None:
        # The configured PSA's ticket: a ticket number means nothing without its provider.
        linked = select(PsaLink.task_id).where(
            PsaLink.provider == get_settings().psa_provider, PsaLink.ticket_id == psa_ticket_id
        )
        where = (*where, col(Task.id).in_(linked))
    items, next_cursor = tenant_page(
        session, Task, user=user, client_id=client_id, limit=limit, cursor=cursor, where=where, **filters
    )
    return task_views(session, tasks=items, staff=user.role in STAFF_ROLES), next_cursor


def client_status(session: Session, *, client_id: uuid.UUID) -> str:
    """The client's status (`closed` for a client that does not exist)."""
    status = session.exec(select(Client.status).where(Client.id == client_id)).first()
    return status or "closed"


def apply_status(session: Session, *, task: Task, target: str, actor: Actor) -> None:
    """Move a task through the workflow table, write `task.status_changed`, and refresh its request."""
    workflow.check(task.status, target, actor)
    previous = task.status
    task.status = target
    _record_change(session, task, "task.status_changed", {"from": previous, "to": target, "assignee": task.assignee})
    if task.request_id is not None:
        refresh_request_status(session, request_id=task.request_id)


def _record_change(session: Session, task: Task, event: str, data: dict[str, object]) -> None:
    """Move the task's `updated_at` strictly forward and write its event in the same transaction."""
    task.updated_at = next_updated_at(task.updated_at)
    session.add(task)
    # The task's own `updated_at` travels with the event: the broker's tombstones compare views by it.
    data = {"task_id": str(task.id), **data, "updated_at": task.updated_at.isoformat()}
    emit(session, event, client_id=task.client_id, aggregate_id=task.id, data=data)


def add_note(session: Session, *, task: Task, kind: str, author: str, body: str) -> TaskNote:
    """Add an internal note."""
    note = TaskNote(id=new_id(), task_id=task.id, kind=kind, author=author, body=body, created_at=utcnow())
    session.add(note)
    return note


def assign(session: Session, *, user: Principal, task_id: uuid.UUID, assignee: str) -> Task:
    """Assign a task: an admin assigns or reassigns any open task; a technician takes an unassigned ready one."""
    task = get_task(session, user=user, task_id=task_id, for_update=True)
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
    ensure_assignable(session, assignee=assignee, client_id=task.client_id)
    record_assignment(session, task=task, assignee=assignee, by=user.sub)
    session.commit()
    return task


def record_assignment(session: Session, *, task: Task, assignee: str | None, by: str) -> None:
    """Set (or clear) the task's assignee and write `task.assigned` (the broker revokes the previous one's releases)."""
    previous = task.assignee
    task.assignee = assignee
    task.assigned_by = by
    change = {"assignee": assignee, "previous_assignee": previous, "assigned_by": by, "status": task.status}
    _record_change(session, task, "task.assigned", change)


def transition(session: Session, *, user: Principal, task_id: uuid.UUID, target: str, note: str | None) -> Task:
    """Move a task on behalf of its assignee or an admin (anyone else: 403 before the table is consulted)."""
    task = get_task(session, user=user, task_id=task_id, for_update=True)
    is_admin = user.role == "admin"
    if not is_admin and (task.assignee is None or task.assignee != user.sub):
        raise Forbidden("only the assignee or an admin may move this task")
    actor = Actor.ADMIN if is_admin else Actor.ASSIGNEE
    workflow.check(task.status, target, actor)
    if target == "in_progress" and task.assignee is None:
        raise Conflict("assign the task before starting it", current_status=task.status)
    if workflow.is_open(target) and client_status(session, client_id=task.client_id) != "active":
        raise Conflict("the client is not active", field="client_id", current_status=task.status)
    apply_status(session, task=task, target=target, actor=actor)
    if note:
        add_note(session, task=task, kind="transition", author=user.sub, body=f"{target}: {note}")
    session.commit()
    return task


def create_system_task(session: Session, *, service: Principal, body: SystemTaskCreate) -> tuple[Task, bool]:
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
        credential_ids=[],
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
        session.commit()
    except IntegrityError:
        # A concurrent retry with the same dedupe_key won the race: answer with its task.
        session.rollback()
        existing = session.exec(select(Task).where(Task.dedupe_key == body.dedupe_key)).first()
        if existing is None:
            raise
        return existing, False
    return task, True


def task_authorization(session: Session, *, caller: Principal, task_id: uuid.UUID) -> TaskAuthorization:
    """The broker's live view of one task, in one indexed statement; 404 for a task the caller may not see."""
    rows = session.exec(
        select(Task, Client.status, Approval)
        .join(Client, col(Client.id) == col(Task.client_id))
        .outerjoin(Approval, col(Approval.task_id) == col(Task.id))
        .where(col(Task.id) == task_id)
        .order_by(col(Approval.created_at), col(Approval.id))
    ).all()
    if not rows or not sees_client(caller, rows[0][0].client_id):
        raise NotFound("task not found")
    now = utcnow()
    task, status, _ = rows[0]
    view = authorization_view(task, status, [approval_view(a, now) for _, _, a in rows if a is not None])
    # The broker reads this twice per release: ending the read here, in the route's worker thread,
    # lets the session close without a second threadpool hop (docs/benchmarks.md). It writes nothing.
    session.commit()
    return view


def list_authorizations(
    session: Session, *, assignee: str | None, status: str | None, limit: int, cursor: str | None
) -> tuple[list[TaskAuthorization], str | None]:
    """A page of authorization views, filtered by assignee and status."""
    query = where_equal(select(Task), Task, assignee=assignee, status=status)
    items, next_cursor = keyset_page(session, query, Task, limit=limit, cursor=cursor)
    return authorization_views(session, tasks=items), next_cursor

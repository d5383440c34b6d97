"""Provisioning's moves of a task: vendor_sync's claim, what its step reports do, and a person's retry.

Provisioning holds a task while it is `in_progress` with `assignee: "svc:vendor_sync"`. Every move
goes through the workflow table (`Actor.PROVISIONING`), writes the usual task events in the same
transaction, and never takes a task from a person:

- **claim** (`POST /internal/tasks/{id}/claim`, vendor_sync before its first vendor call): `ready` or
  `on_hold` → `in_progress`, assigned to vendor_sync without the staff directory's checks (a service
  is no staff member). Claiming what it already holds answers with the task and writes nothing.
- **step reports** (`steps.py` calls `after_report`): on a task provisioning holds, a failed worker
  step puts it `on_hold`, unassigned, with an internal note naming the step and its error; the
  success that leaves every worker step succeeded moves it to `done`. Human steps never move it.
- **retry** (`POST /v1/tasks/{id}/provisioning/retry`): `on_hold` → `ready`, unassigned, so
  `task.status_changed` to `ready` starts provisioning again; vendor_sync re-runs the unfinished steps.
"""

from __future__ import annotations

import uuid
from typing import Final

from sqlmodel import Session, col, select

from intake.tasks import workflow
from intake.tasks.models import Task, TaskStep
from intake.tasks.service import add_note, apply_status, client_status, get_task, record_assignment
from intake.tasks.workflow import Actor
from mspkit.auth import Principal
from mspkit.errors import Conflict, Forbidden, InvalidTransition

VENDOR_SYNC: Final = "svc:vendor_sync"
# The request types vendor_sync carries out at vendors (DESIGN.md § Contract: vendor adapters, sync
# and provisioning). An `isp_account_setup` is a checklist of human steps: a technician works it.
PROVISIONABLE_TYPES: Final = frozenset({"spam_filter_setup", "vendor_contact_update"})
NOTE_KIND: Final = "provisioning"


def held_by_provisioning(task: Task) -> bool:
    """Whether provisioning is working on the task now."""
    return task.status == "in_progress" and task.assignee == VENDOR_SYNC


def _provisionable(task: Task) -> None:
    if task.type not in PROVISIONABLE_TYPES:
        raise Conflict(f"a {task.type} task is not provisioned at vendors", field="type", current_status=task.status)


def _client_active(session: Session, task: Task) -> None:
    if client_status(session, client_id=task.client_id) != "active":
        raise Conflict("the client is not active", field="client_id", current_status=task.status)


def claim(session: Session, *, service: Principal, task_id: uuid.UUID) -> tuple[Task, bool]:
    """vendor_sync takes a ready or on_hold provisioning task (True) or already holds it (False).

    Refused with 409: a type that is not provisioned (`field: type`), a task a person holds
    (`field: assignee`: reassigning is admin-only), any other status (`invalid_transition`), an
    inactive client (`field: client_id`). A refusal writes nothing.
    """
    task = get_task(session, user=service, task_id=task_id, for_update=True)
    if held_by_provisioning(task):
        session.commit()  # nothing to do: release the row lock
        return task, False
    _provisionable(task)
    workflow.check(task.status, "in_progress", Actor.PROVISIONING)
    if task.assignee not in (None, service.sub):
        raise Conflict(
            f"the task is held by {task.assignee}; only an admin may reassign it",
            field="assignee",
            current_status=task.status,
        )
    _client_active(session, task)
    # As a technician starts work: take the task, then move it (the status event names the holder).
    if task.assignee != service.sub:
        record_assignment(session, task=task, assignee=service.sub, by=service.sub)
    apply_status(session, task=task, target="in_progress", actor=Actor.PROVISIONING)
    session.commit()
    return task, True


def _worker_steps_succeeded(session: Session, task: Task) -> bool:
    statuses = session.exec(
        select(TaskStep.status).where(TaskStep.task_id == task.id, col(TaskStep.human).is_(False))
    ).all()
    return bool(statuses) and all(status == "succeeded" for status in statuses)


def after_report(session: Session, *, task: Task, step: TaskStep) -> None:
    """Move a task provisioning holds after one of its worker steps was reported (in the report's transaction)."""
    if step.human or not held_by_provisioning(task):
        return  # a person's checklist, or a late report: recorded, and nothing moves
    if step.status == "failed":
        apply_status(session, task=task, target="on_hold", actor=Actor.PROVISIONING)
        record_assignment(session, task=task, assignee=None, by=VENDOR_SYNC)
        error = step.detail or "no detail was reported"
        add_note(
            session,
            task=task,
            kind=NOTE_KIND,
            author=VENDOR_SYNC,
            body=(
                f"Provisioning stopped: step '{step.name}' failed: {error}. The task is on hold and unassigned; "
                "POST /v1/tasks/{id}/provisioning/retry runs its unfinished steps again."
            ),
        )
    elif step.status == "succeeded":
        session.flush()  # the step just recorded is one of those read back
        if _worker_steps_succeeded(session, task):
            apply_status(session, task=task, target="done", actor=Actor.PROVISIONING)


def retry(session: Session, *, user: Principal, task_id: uuid.UUID) -> Task:
    """Hand an on_hold provisioning task back to provisioning: `ready`, unassigned (admin, or a technician).

    A technician who may see the task's client may retry it unless another person holds it (403).
    Refused with 409: a type that is not provisioned (`field: type`), any status but `on_hold`
    (`invalid_transition`, offering what this caller may do from there), an inactive client.
    """
    task = get_task(session, user=user, task_id=task_id, for_update=True)
    is_admin = user.role == "admin"
    if not is_admin and task.assignee is not None and task.assignee != user.sub:
        raise Forbidden("only the assignee or an admin may retry provisioning of this task")
    _provisionable(task)
    if task.status != "on_hold":
        caller = Actor.ADMIN if is_admin else Actor.ASSIGNEE
        raise InvalidTransition(
            f"only an on_hold task can be retried; this one is {task.status}",
            current_status=task.status,
            allowed=workflow.reachable(task.status, caller),
        )
    _client_active(session, task)
    if task.assignee is not None:
        record_assignment(session, task=task, assignee=None, by=user.sub)
    apply_status(session, task=task, target="ready", actor=Actor.PROVISIONING)
    add_note(
        session,
        task=task,
        kind=NOTE_KIND,
        author=user.sub,
        body=f"Provisioning retried by {user.sub}: the task is ready again and its unfinished steps run again.",
    )
    session.commit()
    return task

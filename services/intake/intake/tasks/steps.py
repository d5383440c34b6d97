"""Steps of a task: a worker reports them (once per idempotency key); a person decides the `human` ones."""

from __future__ import annotations

import uuid

from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from intake.common.types import new_id, utcnow
from intake.events import emit
from intake.tasks import provisioning, workflow
from intake.tasks.access import task_for_hand_work
from intake.tasks.models import Task, TaskStep
from intake.tasks.schemas import StepCreate, StepDecision
from intake.tasks.service import get_task
from mspkit.auth import Principal
from mspkit.errors import Conflict, NotFound


def _by_key(session: Session, task_id: uuid.UUID, key: str) -> TaskStep | None:
    """The step a report with this key already created or changed."""
    return session.exec(
        select(TaskStep).where(
            TaskStep.task_id == task_id,
            or_(col(TaskStep.idempotency_key) == key, col(TaskStep.later_report_keys).contains([key])),
        )
    ).first()


def _worker_step(session: Session, task_id: uuid.UUID, name: str) -> TaskStep | None:
    """The task's worker step of this name (the latest, for tasks whose reports predate naming a step)."""
    return session.exec(
        select(TaskStep)
        .where(TaskStep.task_id == task_id, TaskStep.name == name, col(TaskStep.human).is_(False))
        .order_by(col(TaskStep.created_at).desc(), col(TaskStep.id).desc())
    ).first()


def _reported(session: Session, task: Task, step: TaskStep) -> None:
    """Write `provisioning.step_reported` (ids and statuses only: a step's name and detail may say anything)."""
    data = {"task_id": str(task.id), "step_id": str(step.id), "status": step.status, "human": step.human}
    emit(session, "provisioning.step_reported", client_id=task.client_id, aggregate_id=task.id, data=data)


def report_step(session: Session, *, service: Principal, task_id: uuid.UUID, body: StepCreate) -> tuple[TaskStep, bool]:
    """Record a worker's step report on an open or closed task (a late report is still a record); True when applied.

    A worker step is known by its name within its task: a report naming one the task has records
    its new outcome on it (a plan reported `pending`, then its outcome; a failed step, then its
    retry's), so the task shows each step once. A step that succeeded stays succeeded: a stale or
    repeated run cannot undo it (answered as a known report: the step as it stands, not applied).
    A human step is always a new step of the checklist. On a task provisioning holds, the report
    may move the task (`provisioning.after_report`).

    A repeated `idempotency_key` of the same task returns the step that report created or changed,
    as it stands, whatever the body says now, and writes no second event: a worker that retries
    after a lost answer is safe. The task row is locked, so reports of one task apply one at a time.
    """
    task = get_task(session, user=service, task_id=task_id, for_update=True)
    existing = _by_key(session, task.id, body.idempotency_key)
    if existing is not None:
        return existing, False
    now = utcnow()
    step = None if body.human else _worker_step(session, task.id, body.name)
    if step is not None:
        if step.status == "succeeded":
            return step, False
        step.status = body.status
        if body.detail is not None:
            step.detail = body.detail
        step.later_report_keys = [*step.later_report_keys, body.idempotency_key]
        step.updated_at = max(now, step.updated_at)
    else:
        step = TaskStep(
            id=new_id(),
            task_id=task.id,
            name=body.name,
            status=body.status,
            human=body.human,
            detail=body.detail,
            idempotency_key=body.idempotency_key,
            reported_by=service.sub,
            created_at=now,
            updated_at=now,
        )
    session.add(step)
    try:
        # Flushed here, not by the event's insert: the unique index answers a concurrent retry now.
        session.flush()
    except IntegrityError:
        # A concurrent retry with the same key won the race: its step (and its one event) stand.
        session.rollback()
        existing = _by_key(session, task.id, body.idempotency_key)
        if existing is None:
            raise
        return existing, False
    _reported(session, task, step)
    provisioning.after_report(session, task=task, step=step)
    session.commit()
    return step, True


def decide_step(
    session: Session, *, user: Principal, task_id: uuid.UUID, step_id: uuid.UUID, body: StepDecision
) -> TaskStep:
    """Record a person's outcome of a pending human step of an open task (its assignee or an admin).

    A `detail` given replaces the step's; without one the step keeps the detail it was reported with.
    """
    # The task row is locked so the decision and a concurrent close cannot both win.
    task = task_for_hand_work(session, user=user, task_id=task_id, action="decide a step of this task", for_update=True)
    step = session.exec(
        select(TaskStep).where(TaskStep.id == step_id, TaskStep.task_id == task.id).with_for_update()
    ).first()
    if step is None:
        raise NotFound("step not found")
    if not workflow.is_open(task.status):
        raise Conflict("the steps of a closed task cannot be decided", current_status=task.status)
    if not step.human:
        raise Conflict("this step is reported by its worker; only a human step can be decided by a person")
    if step.status != "pending":
        raise Conflict(f"this step was already decided: it {step.status}")
    step.status = body.status
    if body.detail is not None:
        step.detail = body.detail
    step.decided_by = user.sub
    step.updated_at = max(utcnow(), step.updated_at)
    session.add(step)
    session.commit()
    return step

"""A request's status follows its tasks."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import update
from sqlmodel import Session, col, select

from intake.common.types import utcnow
from intake.requests.models import ServiceRequest
from intake.tasks.models import Task
from mspkit.vocabulary import OPEN_TASK_STATUSES


def request_status(task_statuses: Iterable[str]) -> str:
    """`open` while any task is open; then `done` if any task was done, else `rejected`, else `cancelled`."""
    statuses = set(task_statuses)
    if not statuses or statuses & set(OPEN_TASK_STATUSES):
        return "open"
    for closed in ("done", "rejected"):
        if closed in statuses:
            return closed
    return "cancelled"


def refresh_request_status(session: Session, *, request_id: uuid.UUID) -> str:
    """Recompute and store one request's status from its tasks (in the caller's transaction)."""
    session.flush()
    statuses = session.exec(select(Task.status).where(Task.request_id == request_id)).all()
    status = request_status(statuses)
    session.execute(
        update(ServiceRequest)
        .where(col(ServiceRequest.id) == request_id, col(ServiceRequest.status) != status)
        .values(status=status, updated_at=utcnow())
    )
    return status

"""intake's event routing table: event type → [(Celery task name, queue)], and `emit`."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from intake.db import KIT
from mspkit.outbox import write_event

# intake's own worker: the notifications (tasks in `intake.jobs`, queue `intake`).
NOTIFY_APPROVAL_CREATED = "intake.notifications.approval_created"
NOTIFY_TASK_CREATED = "intake.notifications.task_created"
NOTIFY_TASK_STATUS_CHANGED = "intake.notifications.task_status_changed"
# The broker's `release.granted` and `release.denied` reach these (secrets_broker/events.py names them).
NOTIFY_RELEASE_GRANTED = "intake.notifications.release_granted"
NOTIFY_RELEASE_DENIED = "intake.notifications.release_denied"
QUEUE = "intake"
# The PSA push (tasks in `intake.psa.jobs`, queue `intake`): a task's ticket follows its status and assignee;
# the broker's `release.*` add a note to it (secrets_broker/events.py names that one).
PSA_PUSH = "intake.psa.push_task"
PSA_RELEASE_NOTE = "intake.psa.release_note"
# vendor_sync's provisioning: it starts on a provisionable task created in `ready` or changed to `ready`
# (the consumer filters; intake routes every creation and status change there).
VENDOR_SYNC_TASK_READY = ("vendor_sync.events.task_ready", "vendor_sync")

ROUTES: dict[str, list[tuple[str, str]]] = {
    "client.status_changed": [("secrets_broker.events.client_status_changed", "secrets_broker")],
    "staff.changed": [
        ("secrets_broker.events.staff_changed", "secrets_broker"),
        ("vendor_sync.events.staff_changed", "vendor_sync"),
    ],
    "task.created": [(NOTIFY_TASK_CREATED, QUEUE), VENDOR_SYNC_TASK_READY, (PSA_PUSH, QUEUE)],
    "task.assigned": [("secrets_broker.events.task_assigned", "secrets_broker"), (PSA_PUSH, QUEUE)],
    "task.status_changed": [
        ("secrets_broker.events.task_status_changed", "secrets_broker"),
        (NOTIFY_TASK_STATUS_CHANGED, QUEUE),
        VENDOR_SYNC_TASK_READY,
        (PSA_PUSH, QUEUE),
    ],
    "task.scope_changed": [("secrets_broker.events.task_scope_changed", "secrets_broker")],
    "approval.decided": [("vendor_sync.events.approval_decided", "vendor_sync")],
    "approval.created": [(NOTIFY_APPROVAL_CREATED, QUEUE)],
    # Notifications and the PSA note will consume it; until they exist the relay marks it sent, unpublished.
    "provisioning.step_reported": [],
}


def approval_created_data(approval_id: uuid.UUID, *, task_id: uuid.UUID, origin: str) -> dict[str, Any]:
    """The `data` of `approval.created` (ids and the origin only: the mail reads the rest)."""
    return {"approval_id": str(approval_id), "task_id": str(task_id), "status": "pending", "origin": origin}


def emit(
    session: Session,
    type: str,
    *,
    client_id: uuid.UUID | None,
    aggregate_id: uuid.UUID | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    """Write an event to intake's outbox in the caller's transaction (data: ids and statuses only)."""
    if type not in ROUTES:
        raise ValueError(f"unrouted event type {type}")
    return write_event(session, KIT, type=type, client_id=client_id, aggregate_id=aggregate_id, data=data)

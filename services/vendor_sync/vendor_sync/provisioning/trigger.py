"""The consumer of intake's task events: a task that became `ready` (so its approvals are decided) gets a run.

Exactly once through the inbox: the run row and the inbox row commit together, and the run's message
is published only after that commit. `task.status_changed` carries no request id, so the request a task
came from is kept when its `task.created` arrives (a `waiting` run row: ids only); when two workers apply
the two events out of order, both fill in that one row and whichever comes second queues it. A duplicate
event, or one for a task whose run is in flight, adds nothing; it only republishes a run whose publish failed.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from mspkit.inbox import apply_once
from vendor_sync.db import KIT
from vendor_sync.provisioning import runs
from vendor_sync.provisioning.metrics import log
from vendor_sync.provisioning.plans import PROVISIONABLE

CONSUMER = "vendor_sync.task_ready"
TASK_CREATED = "task.created"
STATUS_CHANGED = "task.status_changed"
# intake's retry (POST /v1/tasks/{id}/provisioning/retry) moves an on_hold task back to `ready`: the same event.
EVENT_TYPES = frozenset({TASK_CREATED, STATUS_CHANGED})


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value is not None else None
    except ValueError:
        return None


def _apply(session: Session, envelope: dict[str, Any], queued: list[uuid.UUID]) -> None:
    conn = session.connection()
    kind, data = envelope["type"], envelope["data"]
    task_id = _uuid(data.get("task_id")) or _uuid(envelope.get("aggregate_id"))
    client_id = _uuid(envelope.get("client_id"))
    request_id = _uuid(data.get("request_id"))
    if task_id is None or client_id is None:
        log.warning("task_ready_malformed", reason="no task or client id", event_id=str(envelope["event_id"]))
        return
    if data.get("type") is not None and data.get("type") not in PROVISIONABLE:
        return
    run_id: uuid.UUID | None = None
    if kind == TASK_CREATED:
        if request_id is None:
            return  # a system task (drift review, renewal) is never provisioned
        if data.get("status") == "ready":
            run_id = runs.queue(conn, task_id=task_id, client_id=client_id, request_id=request_id, trigger=kind)
        else:
            run_id = runs.remember(conn, task_id=task_id, client_id=client_id, request_id=request_id, trigger=kind)
    elif data.get("to") == "ready":
        request_id = request_id or runs.request_of(conn, task_id)
        if request_id is not None:
            run_id = runs.queue(conn, task_id=task_id, client_id=client_id, request_id=request_id, trigger=kind)
        else:
            # Its task.created (the request id) has not been applied yet: the two meet in one waiting row.
            run_id = runs.ready_without_request(conn, task_id=task_id, client_id=client_id, trigger=kind)
    if run_id is not None:
        queued.append(run_id)


def task_ready(envelope: dict[str, Any], *, engine: Engine) -> list[uuid.UUID]:
    """Consume one task event; the runs queued (published by the caller after this commit)."""
    if not isinstance(envelope, dict) or envelope.get("type") not in EVENT_TYPES:
        log.warning("task_ready_malformed", reason="not a task event vendor_sync consumes")
        return []
    if _uuid(envelope.get("event_id")) is None or not isinstance(envelope.get("data"), dict):
        log.warning("task_ready_malformed", reason="event_id is not a UUID or data is not an object")
        return []
    queued: list[uuid.UUID] = []
    applied = apply_once(engine, KIT, CONSUMER, envelope, lambda session, env: _apply(session, env, queued))
    if applied:
        return queued
    # A duplicate: its run may have been made while publishing failed; hand that one out again.
    task_id = _uuid(envelope["data"].get("task_id")) or _uuid(envelope.get("aggregate_id"))
    if task_id is None:
        return []
    with engine.begin() as conn:
        return runs.unsent(conn, task_id)

"""Internal routes: each checks an allowlist of service `sub`s, not just the role."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from intake.clients import service as clients
from intake.clients.schemas import ClientStatusView
from intake.common.types import NO_NUL
from intake.deps import BrokerService, ClientStatusReader, SessionDep, VendorSyncService
from intake.requests import service as requests
from intake.requests.schemas import RequestDetail
from intake.tasks import provisioning, scope, steps, views
from intake.tasks import service as tasks
from intake.tasks.schemas import (
    ProvisionedCredentials,
    StepCreate,
    StepPublic,
    SystemTaskCreate,
    TaskAuthorization,
    TaskStaffView,
)
from mspkit.pagination import Cursor, Limit, Page
from mspkit.vocabulary import TaskStatus

router = APIRouter(prefix="/internal", tags=["internal"])

AssigneeFilter = Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL)]


@router.get("/tasks/{task_id}/authorization")
def task_authorization(task_id: uuid.UUID, service: BrokerService, session: SessionDep) -> TaskAuthorization:
    """The live authorization view of one task (svc:secrets_broker)."""
    return tasks.task_authorization(session, caller=service, task_id=task_id)


@router.get("/tasks")
def list_task_authorizations(
    service: BrokerService,
    session: SessionDep,
    assignee: AssigneeFilter = None,
    status: TaskStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TaskAuthorization]:
    """Authorization views filtered by assignee and status (svc:secrets_broker)."""
    items, next_cursor = tasks.list_authorizations(
        session, assignee=assignee, status=status, limit=limit, cursor=cursor
    )
    return Page[TaskAuthorization](items=items, next_cursor=next_cursor)


@router.get("/clients/{client_id}")
def client_status(client_id: uuid.UUID, service: ClientStatusReader, session: SessionDep) -> ClientStatusView:
    """A client's id and status, read live (svc:secrets_broker, svc:vendor_sync); 404 when unknown."""
    return clients.client_status(session, client_id=client_id)


@router.get("/requests/{request_id}")
def request_detail(request_id: uuid.UUID, service: VendorSyncService, session: SessionDep) -> RequestDetail:
    """A request with its typed body, for workers (svc:vendor_sync)."""
    request = requests.get_request(session, user=service, request_id=request_id)
    return requests.request_detail(session, request=request)


@router.post("/tasks", status_code=201, responses={200: {"model": TaskStaffView, "description": "Already created"}})
def create_system_task(
    body: SystemTaskCreate, service: VendorSyncService, session: SessionDep, response: Response
) -> TaskStaffView:
    """Create a system task in `new` with no request (svc:vendor_sync); a known dedupe_key answers 200."""
    task, created = tasks.create_system_task(session, service=service, body=body)
    if not created:
        response.status_code = 200
    return views.task_views(session, tasks=[task], staff=True)[0]  # type: ignore[return-value]


@router.post(
    "/tasks/{task_id}/steps", status_code=201, responses={200: {"model": StepPublic, "description": "Already reported"}}
)
def add_step(
    task_id: uuid.UUID, body: StepCreate, service: VendorSyncService, session: SessionDep, response: Response
) -> StepPublic:
    """Record a step reported by a worker (svc:vendor_sync); a known idempotency_key answers 200 with its step.

    A worker step is known by its name: a later report of it records its new outcome (201), except
    on a step that succeeded, which stands (200). On a task provisioning holds, a failed worker step
    puts the task `on_hold`, unassigned; the success that leaves every worker step succeeded, `done`.
    """
    step, created = steps.report_step(session, service=service, task_id=task_id, body=body)
    if not created:
        response.status_code = 200
    return StepPublic.model_validate(step)


@router.post("/tasks/{task_id}/claim")
def claim_task(task_id: uuid.UUID, service: VendorSyncService, session: SessionDep) -> TaskStaffView:
    """Take a ready or on_hold provisioning task: `in_progress`, assigned to svc:vendor_sync (svc:vendor_sync).

    Claiming a task vendor_sync already holds answers with it and writes nothing. A task of a type not
    provisioned at vendors, or one a person holds, is 409 `conflict` naming the field; any other
    status is 409 `invalid_transition`.
    """
    task, _ = provisioning.claim(session, service=service, task_id=task_id)
    return views.task_views(session, tasks=[task], staff=True)[0]  # type: ignore[return-value]


@router.post("/tasks/{task_id}/scope")
def add_provisioned_credentials(
    task_id: uuid.UUID, body: ProvisionedCredentials, service: VendorSyncService, session: SessionDep
) -> TaskStaffView:
    """Add credentials vendor_sync stored for this task to its scope (svc:vendor_sync).

    Each must be, at the broker, the task's client's, stored by svc:vendor_sync, and, when the broker
    records a task for it, stored for this one; else 422 `add.credential_ids` and nothing changes.
    """
    task = scope.add_provisioned_credentials(session, service=service, task_id=task_id, change=body)
    return views.task_views(session, tasks=[task], staff=True)[0]  # type: ignore[return-value]

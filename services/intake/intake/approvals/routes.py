"""Approval routes."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from intake.approvals import service
from intake.approvals.schemas import ApprovalDecision, ApprovalPublic
from intake.deps import ApprovalDecider, Reader, SessionDep
from mspkit.pagination import Cursor, Limit, Page
from mspkit.vocabulary import ApprovalStatus

router = APIRouter(prefix="/v1/approvals", tags=["approvals"])


@router.get("")
def list_approvals(
    user: Reader,
    session: SessionDep,
    client_id: uuid.UUID | None = None,
    status: ApprovalStatus | None = None,
    task_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ApprovalPublic]:
    """Approvals the caller may see, filtered by client, status and task."""
    items, next_cursor = service.list_approvals(
        session, user=user, client_id=client_id, status=status, task_id=task_id, limit=limit, cursor=cursor
    )
    return Page[ApprovalPublic](items=items, next_cursor=next_cursor)


@router.get("/{approval_id}")
def get_approval(approval_id: uuid.UUID, user: Reader, session: SessionDep) -> ApprovalPublic:
    """Read an approval."""
    return service.view(service.get_approval(session, user=user, approval_id=approval_id))


@router.post("/{approval_id}/decision")
def decide_approval(
    approval_id: uuid.UUID, body: ApprovalDecision, user: ApprovalDecider, session: SessionDep
) -> ApprovalPublic:
    """Approve or reject (a client_admin of the approval's client); a decided or expired approval is 409."""
    return service.view(service.decide(session, user=user, approval_id=approval_id, body=body))

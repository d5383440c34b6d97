"""Approvals: asking for one on a task, reading them, and the client_admin's decision."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlmodel import Session, select

from intake.approvals.models import Approval
from intake.approvals.schemas import ApprovalCreate, ApprovalDecision, ApprovalPublic
from intake.approvals.views import approval_view, effective_status, status_clause
from intake.clients.models import Client
from intake.common.queries import get_visible, keyset_page, where_equal
from intake.common.types import new_id, utcnow
from intake.events import emit
from intake.tasks import workflow
from intake.tasks.models import Task
from intake.tasks.service import apply_status, get_task
from intake.tasks.workflow import Actor
from mspkit.auth import Principal
from mspkit.errors import Conflict, Forbidden


def get_approval(session: Session, *, user: Principal, approval_id: uuid.UUID, for_update: bool = False) -> Approval:
    """The approval if the caller may see it, else 404."""
    return get_visible(session, Approval, approval_id, user=user, what="approval", for_update=for_update)


def list_approvals(
    session: Session,
    *,
    user: Principal,
    status: str | None,
    task_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[ApprovalPublic], str | None]:
    """A page of approvals the caller may see."""
    now = utcnow()
    own = user.client_id if user.is_client else None
    query = where_equal(select(Approval), Approval, client_id=own, task_id=task_id)
    if status is not None:
        query = query.where(status_clause(status, now))
    items, next_cursor = keyset_page(session, query, Approval, limit=limit, cursor=cursor)
    return [approval_view(a, now) for a in items], next_cursor


def request_approval(session: Session, *, user: Principal, task_id: uuid.UUID, body: ApprovalCreate) -> Approval:
    """The assignee (or an admin) asks the client to approve disclosing named credentials to a named party."""
    task = get_task(session, user=user, task_id=task_id, for_update=True)
    if user.role != "admin" and (task.assignee is None or task.assignee != user.sub):
        raise Forbidden("only the assignee or an admin may ask for an approval")
    if not workflow.is_open(task.status):
        raise Conflict("the task is closed", current_status=task.status)
    client_status = session.exec(select(Client.status).where(Client.id == task.client_id)).first()
    if client_status != "active":
        raise Conflict("the client is not active")
    now = utcnow()
    recipient = body.recipient
    approval = Approval(
        id=new_id(),
        task_id=task.id,
        client_id=task.client_id,
        status="pending",
        recipient_name=recipient.name,
        recipient_contact_email=recipient.contact_email,
        party_category=recipient.party_category,
        legal_reference=recipient.legal_reference,
        information_categories=list(dict.fromkeys(body.information_categories)),
        credential_ids=list(dict.fromkeys(str(c) for c in body.credential_ids)),
        expires_at=now + timedelta(seconds=body.expires_in_s),
        created_by=user.sub,
        created_at=now,
        updated_at=now,
    )
    session.add(approval)
    session.commit()
    return approval


def decide(session: Session, *, user: Principal, approval_id: uuid.UUID, body: ApprovalDecision) -> Approval:
    """A client_admin of the approval's client decides it; a waiting task moves to ready or rejected."""
    approval = get_approval(session, user=user, approval_id=approval_id)
    # Lock the task, then the approval: the same order as every other writer of both.
    task = session.exec(select(Task).where(Task.id == approval.task_id).with_for_update()).one()
    approval = get_approval(session, user=user, approval_id=approval_id, for_update=True)
    now = utcnow()
    status = effective_status(approval, now)
    if status == "expired":
        raise Conflict("the approval has expired", current_status=status)
    if status != "pending":
        raise Conflict("the approval is already decided", current_status=status)
    client_status = session.exec(select(Client.status).where(Client.id == approval.client_id)).first()
    if client_status != "active":
        raise Conflict("the client is not active")
    approval.status = body.decision
    approval.decided_by = user.sub
    approval.decided_at = now
    approval.comment = body.comment
    approval.updated_at = now
    session.add(approval)
    emit(
        session,
        "approval.decided",
        client_id=approval.client_id,
        aggregate_id=approval.id,
        data={"approval_id": str(approval.id), "task_id": str(approval.task_id), "decision": body.decision},
    )
    # Only a task waiting for approval moves; a refused disclosure during the work does not end the task.
    if task.status == "awaiting_approval":
        target = "ready" if body.decision == "approved" else "rejected"
        apply_status(session, task=task, target=target, actor=Actor.APPROVAL)
    session.commit()
    return approval


def view(approval: Approval) -> ApprovalPublic:
    """The approval's view now."""
    return approval_view(approval, utcnow())

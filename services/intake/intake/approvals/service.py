"""Approvals: asking for one on a task, reading them, and the client_admin's decision."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta

from sqlmodel import Session, select

from intake.approvals.models import Approval
from intake.approvals.schemas import ApprovalCreate, ApprovalDecision, ApprovalPublic, PartyRecipient
from intake.approvals.views import approval_view, effective_status, status_clause
from intake.clients.models import Client
from intake.common.queries import get_visible, keyset_page, where_equal, where_visible
from intake.common.types import new_id, utcnow
from intake.events import approval_created_data, emit
from intake.tasks import workflow
from intake.tasks.models import Task
from intake.tasks.service import apply_status, get_task
from intake.tasks.workflow import Actor
from intake.vendors import VendorRegistry, get_registry
from mspkit.auth import Principal
from mspkit.errors import Conflict, Forbidden, ValidationFailed


def get_approval(session: Session, *, user: Principal, approval_id: uuid.UUID, for_update: bool = False) -> Approval:
    """The approval if the caller may see it, else 404."""
    return get_visible(session, Approval, approval_id, user=user, what="approval", for_update=for_update)


def list_approvals(
    session: Session,
    *,
    user: Principal,
    client_id: uuid.UUID | None,
    status: str | None,
    task_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[ApprovalPublic], str | None]:
    """A page of approvals the caller may see (another client's id from a client role: 404)."""
    now = utcnow()
    query = where_visible(
        where_equal(select(Approval), Approval, task_id=task_id), Approval, user=user, client_id=client_id
    )
    if status is not None:
        query = query.where(status_clause(status, now))
    items, next_cursor = keyset_page(session, query, Approval, limit=limit, cursor=cursor)
    return [approval_view(a, now) for a in items], next_cursor


def _client_status(session: Session, *, client_id: uuid.UUID) -> str | None:
    """The client's status, held FOR SHARE: a concurrent status change waits for this transaction to end.

    Taken before the task's lock, in the order `clients.service.update_client` takes them (the client,
    then its tasks), so the two never deadlock.
    """
    return session.exec(select(Client.status).where(Client.id == client_id).with_for_update(read=True)).first()


def _ensure_active(status: str | None) -> None:
    """Acting on an inactive or closed client's approvals is 409 naming `client_id` (the contract)."""
    if status != "active":
        raise Conflict("the client is not active", field="client_id")


def _ensure_may_ask(user: Principal, task: Task) -> None:
    if user.role != "admin" and (task.assignee is None or task.assignee != user.sub):
        raise Forbidden("only the assignee or an admin may ask for an approval")


def _check_vendor(
    session: Session, *, user: Principal, task_id: uuid.UUID, vendor_id: uuid.UUID, registry: VendorRegistry | None
) -> None:
    """A named vendor must be one the registry knows (422 naming `recipient.vendor_id`; 503 when it does not answer).

    Asked only after the caller is shown to be allowed to ask, and with no transaction open.
    """
    _ensure_may_ask(user, get_task(session, user=user, task_id=task_id))
    session.rollback()
    if not (registry or get_registry()).vendor_exists(vendor_id):
        raise ValidationFailed.listing([("recipient.vendor_id", "is not a vendor of the registry")])


def request_approval(
    session: Session,
    *,
    user: Principal,
    task_id: uuid.UUID,
    body: ApprovalCreate,
    registry: VendorRegistry | None = None,
) -> Approval:
    """The assignee (or an admin) asks the client to approve disclosing named credentials to a named party."""
    recipient = body.recipient
    vendor_id = recipient.vendor_id if isinstance(recipient, PartyRecipient) else None
    if vendor_id is not None:
        _check_vendor(session, user=user, task_id=task_id, vendor_id=vendor_id, registry=registry)
    task = get_task(session, user=user, task_id=task_id)
    client_status = _client_status(session, client_id=task.client_id)
    session.refresh(task, with_for_update=True)
    _ensure_may_ask(user, task)
    _ensure_active(client_status)
    if not workflow.is_open(task.status):
        raise Conflict("the task is closed", current_status=task.status)
    now = utcnow()
    approval = Approval(
        id=new_id(),
        task_id=task.id,
        client_id=task.client_id,
        # Asked during the work: deciding it never moves the task (only its request's approvals do).
        origin="task",
        status="pending",
        recipient_name=recipient.name,
        recipient_contact_email=recipient.contact_email,
        party_category=recipient.party_category,
        legal_reference=recipient.legal_reference,
        recipient_vendor_id=vendor_id,
        information_categories=list(dict.fromkeys(body.information_categories)),
        credential_ids=list(dict.fromkeys(str(c) for c in body.credential_ids)),
        expires_at=now + timedelta(seconds=body.expires_in_s),
        created_by=user.sub,
        created_at=now,
        updated_at=now,
    )
    session.add(approval)
    emit(
        session,
        "approval.created",
        client_id=approval.client_id,
        aggregate_id=approval.id,
        data=approval_created_data(approval.id, task_id=approval.task_id, origin="task"),
    )
    session.commit()
    return approval


def gate_outcome(decisions: Iterable[str]) -> str | None:
    """Where a waiting task goes, from the stored statuses of its request's approvals; None while any is undecided.

    The task leaves `awaiting_approval` only once every one is decided: all approved → `ready`, any
    rejected → `rejected`. A pending approval past its expiry was never decided, so the task waits
    (staff may cancel it).
    """
    statuses = list(decisions)
    if not statuses or any(s not in ("approved", "rejected") for s in statuses):
        return None
    return "rejected" if "rejected" in statuses else "ready"


def decide(session: Session, *, user: Principal, approval_id: uuid.UUID, body: ApprovalDecision) -> Approval:
    """A client_admin of the client decides it; the last of its request's approvals to be decided moves the task."""
    approval = get_approval(session, user=user, approval_id=approval_id)
    # Lock the client (shared), then the task, then the approval: the order of every other writer.
    client_status = _client_status(session, client_id=approval.client_id)
    task = session.exec(select(Task).where(Task.id == approval.task_id).with_for_update()).one()
    # Re-read under the lock: the first read may predate a concurrent decision that has since committed.
    session.refresh(approval, with_for_update=True)
    _ensure_active(client_status)
    now = utcnow()
    status = effective_status(approval, now)
    if status == "expired":
        raise Conflict("the approval has expired", current_status=status)
    if status != "pending":
        raise Conflict("the approval is already decided", current_status=status)
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
    # Only the approvals the request's expansion made gate a waiting task; one asked later on the task
    # (a disclosure during the work) never moves it, whatever the decision.
    if task.status == "awaiting_approval" and approval.origin == "request":
        session.flush()  # the decision just made is one of those read back
        gating = session.exec(
            select(Approval.status).where(Approval.task_id == task.id, Approval.origin == "request")
        ).all()
        target = gate_outcome(gating)
        if target is not None:
            apply_status(session, task=task, target=target, actor=Actor.APPROVAL)
    session.commit()
    return approval


def view(approval: Approval) -> ApprovalPublic:
    """The approval's view now."""
    return approval_view(approval, utcnow())

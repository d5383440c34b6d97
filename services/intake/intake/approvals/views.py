"""Approval views: the effective status (expiry computed on read) and batch loading by task."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from intake.approvals.models import Approval
from intake.approvals.schemas import ApprovalPublic, Recipient

# Statuses that lapse at `expires_at`: an approval past it is never reported (or used) as approved.
LAPSING = ("pending", "approved")


def effective_status(approval: Approval, now: datetime) -> str:
    """The status to report and act on: `expired` once `expires_at` has passed, unless rejected."""
    if approval.status in LAPSING and approval.expires_at <= now:
        return "expired"
    return approval.status


def status_clause(status: str, now: datetime) -> Any:
    """SQL filter matching the effective status."""
    if status in LAPSING:
        return and_(col(Approval.status) == status, col(Approval.expires_at) > now)
    if status == "expired":
        return or_(
            col(Approval.status) == "expired",
            and_(col(Approval.status).in_(LAPSING), col(Approval.expires_at) <= now),
        )
    return col(Approval.status) == status


def approval_view(approval: Approval, now: datetime) -> ApprovalPublic:
    """The contract's approval shape."""
    return ApprovalPublic(
        id=approval.id,
        task_id=approval.task_id,
        client_id=approval.client_id,
        status=effective_status(approval, now),  # type: ignore[arg-type]
        recipient=Recipient(
            name=approval.recipient_name,
            contact_email=approval.recipient_contact_email,
            party_category=approval.party_category,  # type: ignore[arg-type]
            legal_reference=approval.legal_reference,
            vendor_id=approval.recipient_vendor_id,
        ),
        information_categories=approval.information_categories,  # type: ignore[arg-type]
        credential_ids=[uuid.UUID(c) for c in approval.credential_ids],
        expires_at=approval.expires_at,
        decided_by=approval.decided_by,
        decided_at=approval.decided_at,
        comment=approval.comment,
        created_at=approval.created_at,
    )


def approvals_by_task(
    session: Session, *, task_ids: Iterable[uuid.UUID], now: datetime
) -> dict[uuid.UUID, list[ApprovalPublic]]:
    """Every approval of these tasks, oldest first, grouped by task."""
    ids = list(task_ids)
    out: dict[uuid.UUID, list[ApprovalPublic]] = defaultdict(list)
    if not ids:
        return out
    rows = session.exec(
        select(Approval).where(col(Approval.task_id).in_(ids)).order_by(col(Approval.created_at), col(Approval.id))
    ).all()
    for row in rows:
        out[row.task_id].append(approval_view(row, now))
    return out

"""Recording and reading the disclosure ledger."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlmodel import Session, col

from mspkit.pagination import decode_cursor, encode_cursor
from secrets_broker.ledger.models import Disclosure
from secrets_broker.release.policy import Approval


def record(
    session: Session,
    *,
    release_id: uuid.UUID,
    task_id: uuid.UUID,
    client_id: uuid.UUID,
    credential_id: uuid.UUID,
    approval: Approval,
    disclosed_by: str,
    now: datetime,
) -> Disclosure:
    """Add the ledger row of one third-party release, in the caller's transaction."""
    row = Disclosure(
        id=uuid.uuid4(),
        client_id=client_id,
        task_id=task_id,
        release_id=release_id,
        credential_id=credential_id,
        party_category=approval.recipient.party_category,
        recipient_name=approval.recipient.name,
        recipient_contact_email=approval.recipient.contact_email,
        approval_id=approval.id,
        legal_reference=approval.recipient.legal_reference,
        information_categories=sorted(approval.information_categories),
        disclosed_by=disclosed_by,
        created_at=now,
    )
    session.add(row)
    return row


def _filtered(client_id: uuid.UUID | None) -> Any:
    stmt = select(Disclosure).order_by(col(Disclosure.created_at), col(Disclosure.id))
    if client_id is not None:
        stmt = stmt.where(col(Disclosure.client_id) == client_id)
    return stmt


def list_page(
    session: Session, *, client_id: uuid.UUID | None, limit: int, cursor: str | None
) -> tuple[list[Disclosure], str | None]:
    """A page of ledger rows, oldest first, with the next cursor."""
    stmt = _filtered(client_id)
    if cursor:
        created, row_id = decode_cursor(cursor)
        stmt = stmt.where(
            or_(
                col(Disclosure.created_at) > created,
                and_(col(Disclosure.created_at) == created, col(Disclosure.id) > row_id),
            )
        )
    rows = list(session.execute(stmt.limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None


def iter_all(session: Session, *, client_id: uuid.UUID | None) -> Iterator[Disclosure]:
    """Every ledger row (for the CSV export), oldest first."""
    yield from session.execute(_filtered(client_id).execution_options(yield_per=500)).scalars()


def as_row(row: Disclosure) -> dict[str, Any]:
    """The ledger row with the CSV/JSON column names."""
    return {
        "disclosure_id": row.id,
        "created_at": row.created_at,
        "client_id": row.client_id,
        "task_id": row.task_id,
        "release_id": row.release_id,
        "credential_id": row.credential_id,
        "party_category": row.party_category,
        "recipient_name": row.recipient_name,
        "recipient_contact_email": row.recipient_contact_email,
        "approval_id": row.approval_id,
        "legal_reference": row.legal_reference,
        "information_categories": list(row.information_categories),
        "disclosed_by": row.disclosed_by,
    }

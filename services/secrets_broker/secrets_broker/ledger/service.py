"""Recording and reading the disclosure ledger."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, select
from sqlmodel import Session, col

from mspkit.pagination import keyset, page_of
from secrets_broker.ledger.models import Disclosure
from secrets_broker.release.models import Release
from secrets_broker.task_auth import Approval


def record(session: Session, *, release: Release, approval: Approval, disclosed_by: str) -> Disclosure:
    """Add the ledger row of one third-party release (made on `approval`), in the caller's transaction."""
    row = Disclosure(
        **release.model_dump(include={"client_id", "task_id", "credential_id", "approval_id", "created_at"}),
        id=uuid.uuid4(),
        release_id=release.id,
        party_category=approval.recipient.party_category,
        recipient_name=approval.recipient.name,
        recipient_contact_email=approval.recipient.contact_email,
        legal_reference=approval.recipient.legal_reference,
        information_categories=sorted(approval.information_categories),
        disclosed_by=disclosed_by,
    )
    session.add(row)
    return row


def _filtered(client_id: uuid.UUID | None) -> Select[Any]:
    stmt = select(Disclosure)
    return stmt if client_id is None else stmt.where(col(Disclosure.client_id) == client_id)


def list_page(
    session: Session, *, client_id: uuid.UUID | None, limit: int, cursor: str | None
) -> tuple[list[Disclosure], str | None]:
    """A page of ledger rows, oldest first, with the next cursor."""
    stmt = keyset(
        _filtered(client_id), at=col(Disclosure.created_at), id_=col(Disclosure.id), limit=limit, cursor=cursor
    )
    rows = session.execute(stmt).scalars().all()
    return page_of(rows, limit=limit, key=lambda d: (d.created_at, d.id))


def iter_all(session: Session, *, client_id: uuid.UUID | None) -> Iterator[Disclosure]:
    """Every ledger row (for the CSV export), oldest first."""
    stmt = _filtered(client_id).order_by(col(Disclosure.created_at), col(Disclosure.id))
    yield from session.execute(stmt.execution_options(yield_per=500)).scalars()


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

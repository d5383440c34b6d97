"""Audit routes: `GET /v1/audit` and `GET /v1/audit/verify`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from mspkit.pagination import Limit, Page
from mspkit.patterns import described
from secrets_broker.audit import service
from secrets_broker.audit.schemas import AuditEntryPublic, VerifyPublic
from secrets_broker.deps import AuditClient, AuditReader, Gateway, SessionDep

router = APIRouter(tags=["audit"])

ACTION = described(r"^[a-z_]+\.[a-z_]+$", "must be an audit action such as release.granted")
Action = Annotated[str | None, Query(max_length=64, pattern=ACTION)]
# The chain is keyed by its index, not (timestamp, id): the cursor is the last index seen. Every
# string the pattern admits decodes, so a schema-valid cursor never fails later.
AuditCursor = Annotated[
    str | None, Query(max_length=18, pattern=service.INDEX_CURSOR_PATTERN, description="A page's next_cursor")
]


@router.get("/v1/audit", response_model=Page[AuditEntryPublic])
def list_audit(
    session: SessionDep,
    client_id: AuditClient,
    limit: Limit = 50,
    cursor: AuditCursor = None,
    task_id: uuid.UUID | None = None,
    credential_id: uuid.UUID | None = None,
    action: Action = None,
) -> Page[AuditEntryPublic]:
    """Entries in chain order; a client_admin sees only entries of their own client."""
    filters = {"client_id": client_id, "task_id": task_id, "credential_id": credential_id, "action": action}
    rows, next_cursor = service.list_entries(session, filters=filters, limit=limit, cursor=cursor)
    return Page[AuditEntryPublic](items=[AuditEntryPublic.of(r) for r in rows], next_cursor=next_cursor)


@router.get("/v1/audit/verify", response_model=VerifyPublic)
def verify_audit(session: SessionDep, gateway: Gateway, user: AuditReader) -> VerifyPublic:
    """Check the whole audit chain: every entry's hash, and the chain against its anchors in the secret store."""
    # Integrity is a property of the whole chain, so a client_admin gets the same answer as an
    # admin: counts and a position, never another client's entry.
    result = service.verify(session, gateway=gateway)
    return VerifyPublic(ok=result.ok, entries=result.entries, first_bad_index=result.first_bad_index)

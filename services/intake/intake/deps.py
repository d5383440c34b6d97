"""Dependency aliases: the request's session, the caller by role, and the internal-route service allowlists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from intake.db import get_engine
from mspkit.auth import CurrentUser, Principal, require_roles, require_service

__all__ = [
    "REQUESTER_ROLES",
    "AdminUser",
    "ApprovalDecider",
    "BrokerService",
    "CurrentUser",
    "Reader",
    "Requester",
    "SessionDep",
    "StaffUser",
    "VendorSyncService",
    "get_session",
]


async def get_session() -> AsyncIterator[Session]:
    """The request's session: the use case in a `service.py` commits; anything unhandled rolls back at close."""
    # Created on the event loop: a Session does no I/O until first used (in the route's worker thread).
    # As a sync generator this dependency would cost two more threadpool hops per request
    # (docs/benchmarks.md); only a close that still has a transaction to roll back needs one.
    session = Session(get_engine(), expire_on_commit=False)
    try:
        yield session
    finally:
        if session.in_transaction():
            with anyio.CancelScope(shield=True):  # a cancelled request still returns its connection
                await run_in_threadpool(session.close)
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]

STAFF = ("admin", "technician")
CLIENT = ("client_user", "client_admin")

AdminUser = Annotated[Principal, Depends(require_roles("admin"))]
StaffUser = Annotated[Principal, Depends(require_roles(*STAFF))]
# Everyone but services: the object-level check then narrows client roles to their own client.
Reader = Annotated[Principal, Depends(require_roles(*STAFF, *CLIENT))]
REQUESTER_ROLES = ("admin", *CLIENT)
Requester = Annotated[Principal, Depends(require_roles(*REQUESTER_ROLES))]
ApprovalDecider = Annotated[Principal, Depends(require_roles("client_admin"))]
BrokerService = Annotated[Principal, Depends(require_service("svc:secrets_broker"))]
VendorSyncService = Annotated[Principal, Depends(require_service("svc:vendor_sync"))]

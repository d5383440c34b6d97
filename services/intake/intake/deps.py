"""Dependency aliases: the request's session, the caller by role, and the internal-route service allowlists."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

import anyio
from fastapi import Depends
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from intake.db import get_engine
from intake.staff.directory import staff_view
from mspkit.auth import Principal, require_roles, require_service, with_staff

__all__ = [
    "REQUESTER_ROLES",
    "AdminUser",
    "ApprovalDecider",
    "BrokerService",
    "ClientStatusReader",
    "Reader",
    "Requester",
    "SessionDep",
    "StaffUser",
    "StaffViewReader",
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


def staff_aware(*roles: str) -> Callable[[Principal, Session], Awaitable[Principal]]:
    """Dependency factory: one of `roles`, a technician with their staff view read through the request's session."""
    check = require_roles(*roles)

    # Defaults, not `Annotated`: with postponed annotations FastAPI could not resolve the local `check`.
    async def _caller(user: Principal = Depends(check), session: Session = Depends(get_session)) -> Principal:
        # The request's own session: the view is read in the same database state as the route's reads.
        return await with_staff(user, lambda sub: run_in_threadpool(staff_view, session, sub))

    return _caller


AdminUser = Annotated[Principal, Depends(require_roles("admin"))]
StaffUser = Annotated[Principal, Depends(staff_aware(*STAFF))]
# Everyone but services: the object-level check then narrows client roles to their own client, and
# technicians to their clients (need-to-know, mspkit.tenancy).
Reader = Annotated[Principal, Depends(staff_aware(*STAFF, *CLIENT))]
REQUESTER_ROLES = ("admin", *CLIENT)
Requester = Annotated[Principal, Depends(require_roles(*REQUESTER_ROLES))]
ApprovalDecider = Annotated[Principal, Depends(require_roles("client_admin"))]
BrokerService = Annotated[Principal, Depends(require_service("svc:secrets_broker"))]
VendorSyncService = Annotated[Principal, Depends(require_service("svc:vendor_sync"))]
# A client's status, read live by the services that must fail closed on a closed client.
ClientStatusReader = Annotated[Principal, Depends(require_service("svc:secrets_broker", "svc:vendor_sync"))]
# A technician's staff view, read by the services that enforce need-to-know on their own data.
StaffViewReader = Annotated[Principal, Depends(require_service("svc:secrets_broker", "svc:vendor_sync"))]

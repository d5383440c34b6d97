"""Dependency aliases: the session, the caller by role, and the internal-route service allowlists."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from intake.db import SessionDep
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
    "sees_client",
]

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


def sees_client(user: Principal, client_id: uuid.UUID) -> bool:
    """Object-level tenancy: client roles see only their own client; staff and services see all."""
    return not user.is_client or user.client_id == client_id

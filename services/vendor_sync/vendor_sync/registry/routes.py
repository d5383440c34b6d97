"""Registry routes: vendors and client vendor accounts (thin: the service does the work)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query

from mspkit.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from mspkit.tenancy import visible
from vendor_sync.db import SessionDep
from vendor_sync.deps import AccountReader, AdminOnly, Staff, VendorReader
from vendor_sync.intake_client import get_intake_clients
from vendor_sync.registry import service
from vendor_sync.registry.schemas import (
    VendorAccountCreate,
    VendorAccountPublic,
    VendorCreate,
    VendorKind,
    VendorPublic,
)

router = APIRouter(prefix="/v1", tags=["registry"])


@router.post("/vendors", status_code=201, response_model=VendorPublic)
def create_vendor(body: VendorCreate, session: SessionDep, _: AdminOnly) -> VendorPublic:
    """Add a vendor (admin)."""
    return service.vendor_public(service.create_vendor(session, data=body))


@router.get("/vendors", response_model=Page[VendorPublic])
def list_vendors(
    session: SessionDep,
    _: VendorReader,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    kind: VendorKind | None = Query(None, description="Only vendors of this kind"),
) -> Page[VendorPublic]:
    """List vendors, oldest first."""
    items, next_cursor = service.list_vendors(session, limit=limit, cursor=cursor, kind=kind)
    return Page[VendorPublic](items=[service.vendor_public(v) for v in items], next_cursor=next_cursor)


@router.get("/vendors/{vendor_id}", response_model=VendorPublic)
def get_vendor(vendor_id: uuid.UUID, session: SessionDep, _: VendorReader) -> VendorPublic:
    """One vendor."""
    return service.vendor_public(service.get_vendor(session, vendor_id=vendor_id))


@router.post("/clients/{client_id}/vendor-accounts", status_code=201, response_model=VendorAccountPublic)
def create_vendor_account(
    client_id: uuid.UUID, body: VendorAccountCreate, session: SessionDep, user: Staff
) -> VendorAccountPublic:
    """Add a client's vendor account with its contacts (admin, technician); an unknown client is 404."""
    get_intake_clients().ensure_exists(client_id, viewer=user)
    return service.create_vendor_account(session, client_id=client_id, data=body)


@router.get("/clients/{client_id}/vendor-accounts", response_model=Page[VendorAccountPublic])
def list_vendor_accounts(
    client_id: uuid.UUID,
    session: SessionDep,
    user: AccountReader,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[VendorAccountPublic]:
    """List one client's vendor accounts, oldest first; an unknown client is 404."""
    get_intake_clients().ensure_exists(client_id, viewer=user)
    items, next_cursor = service.list_vendor_accounts(
        session, client_id=client_id, visible=visible(user, client_id), limit=limit, cursor=cursor
    )
    return Page[VendorAccountPublic](items=items, next_cursor=next_cursor)


@router.get("/vendor-accounts/{account_id}", response_model=VendorAccountPublic)
def get_vendor_account(account_id: uuid.UUID, session: SessionDep, user: AccountReader) -> VendorAccountPublic:
    """One vendor account, with its contacts."""
    return service.get_vendor_account(session, account_id=account_id, viewer=user)

"""Registry routes: vendors, client vendor accounts and their contacts (thin: the service does the work)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Response

from mspkit.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from mspkit.tenancy import visible
from vendor_sync.db import SessionDep
from vendor_sync.deps import AccountReader, AdminOnly, Staff, VendorReader
from vendor_sync.intake_client import get_intake_clients
from vendor_sync.registry import service
from vendor_sync.registry.credential_check import get_credential_checker
from vendor_sync.registry.schemas import (
    ContactCreate,
    ContactPublic,
    ContactUpdate,
    VendorAccountCreate,
    VendorAccountPublic,
    VendorAccountUpdate,
    VendorCreate,
    VendorKind,
    VendorPublic,
    VendorUpdate,
)

router = APIRouter(prefix="/v1", tags=["registry"])


@router.post("/vendors", status_code=201, response_model=VendorPublic)
def create_vendor(body: VendorCreate, session: SessionDep, user: AdminOnly) -> VendorPublic:
    """Add a vendor (admin; audited)."""
    return service.vendor_public(service.create_vendor(session, data=body, actor=user.sub))


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


@router.patch("/vendors/{vendor_id}", response_model=VendorPublic)
def update_vendor(vendor_id: uuid.UUID, body: VendorUpdate, session: SessionDep, user: AdminOnly) -> VendorPublic:
    """Change a vendor (admin; audited): any field but `kind`; an absent field is kept, null clears it."""
    return service.vendor_public(service.update_vendor(session, vendor_id=vendor_id, data=body, actor=user.sub))


@router.post("/clients/{client_id}/vendor-accounts", status_code=201, response_model=VendorAccountPublic)
def create_vendor_account(
    client_id: uuid.UUID, body: VendorAccountCreate, session: SessionDep, user: Staff
) -> VendorAccountPublic:
    """Add a client's vendor account with its contacts (admin, technician); an unknown client is 404."""
    get_intake_clients().ensure_exists(client_id, viewer=user)
    return service.create_vendor_account(session, client_id=client_id, data=body, actor=user.sub)


@router.get("/clients/{client_id}/vendor-accounts", response_model=Page[VendorAccountPublic])
def list_vendor_accounts(
    client_id: uuid.UUID,
    session: SessionDep,
    user: AccountReader,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    archived: bool | None = Query(
        None, description="true: only archived accounts; false: only live ones; absent: both (archived stay readable)"
    ),
) -> Page[VendorAccountPublic]:
    """List one client's vendor accounts, oldest first; an unknown client is 404."""
    get_intake_clients().ensure_exists(client_id, viewer=user)
    items, next_cursor = service.list_vendor_accounts(
        session,
        client_id=client_id,
        visible=visible(user, client_id),
        limit=limit,
        cursor=cursor,
        archived=archived,
    )
    return Page[VendorAccountPublic](items=items, next_cursor=next_cursor)


@router.get("/vendor-accounts/{account_id}", response_model=VendorAccountPublic)
def get_vendor_account(account_id: uuid.UUID, session: SessionDep, user: AccountReader) -> VendorAccountPublic:
    """One vendor account, with its contacts."""
    return service.get_vendor_account(session, account_id=account_id, viewer=user)


@router.patch("/vendor-accounts/{account_id}", response_model=VendorAccountPublic)
def update_vendor_account(
    account_id: uuid.UUID, body: VendorAccountUpdate, session: SessionDep, user: Staff
) -> VendorAccountPublic:
    """Change an account (admin, technicians of its client; audited); an archived one is 409 `account_archived`.

    `api_key_credential_id` must be the broker's `api_key` credential of this very account, else 422.
    """
    return service.update_vendor_account(
        session, account_id=account_id, data=body, viewer=user, checker=get_credential_checker()
    )


@router.post("/vendor-accounts/{account_id}/archive", response_model=VendorAccountPublic)
def archive_vendor_account(account_id: uuid.UUID, session: SessionDep, user: Staff) -> VendorAccountPublic:
    """Archive an account (admin, technicians of its client; audited): it stays readable, sync skips it."""
    return service.archive_vendor_account(session, account_id=account_id, viewer=user)


@router.post("/vendor-accounts/{account_id}/contacts", status_code=201, response_model=ContactPublic)
def add_contact(account_id: uuid.UUID, body: ContactCreate, session: SessionDep, user: Staff) -> ContactPublic:
    """Add a contact to an account (admin, technicians of its client; audited)."""
    return service.add_contact(session, account_id=account_id, data=body, viewer=user)


@router.patch("/vendor-accounts/{account_id}/contacts/{contact_id}", response_model=ContactPublic)
def update_contact(
    account_id: uuid.UUID, contact_id: uuid.UUID, body: ContactUpdate, session: SessionDep, user: Staff
) -> ContactPublic:
    """Change an account's contact (admin, technicians of its client; audited); null clears email or phone."""
    return service.update_contact(session, account_id=account_id, contact_id=contact_id, data=body, viewer=user)


@router.delete("/vendor-accounts/{account_id}/contacts/{contact_id}", status_code=204, response_class=Response)
def delete_contact(account_id: uuid.UUID, contact_id: uuid.UUID, session: SessionDep, user: Staff) -> Response:
    """Remove an account's contact (admin, technicians of its client; audited)."""
    service.delete_contact(session, account_id=account_id, contact_id=contact_id, viewer=user)
    return Response(status_code=204)

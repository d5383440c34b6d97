"""Registry operations: vendors and client vendor accounts with their contacts."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col

from mspkit.auth import Principal
from mspkit.errors import Conflict, NotFound
from mspkit.pagination import keyset, page_of
from mspkit.tenancy import Visible, ensure_sees_client
from vendor_sync.registry.models import Contact, Vendor, VendorAccount
from vendor_sync.registry.schemas import (
    ContactPublic,
    VendorAccountCreate,
    VendorAccountPublic,
    VendorCreate,
    VendorPublic,
)


def vendor_public(vendor: Vendor) -> VendorPublic:
    """The API shape of a vendor."""
    return VendorPublic.model_validate(vendor, from_attributes=True)


def create_vendor(session: Session, *, data: VendorCreate) -> Vendor:
    """Add a vendor; a name already taken (whatever its case) is 409 naming `name`."""
    vendor = Vendor(**data.model_dump())
    # ON CONFLICT on the lower(name) index: no exception, no aborted transaction on a duplicate.
    inserted = session.execute(
        insert(Vendor)
        .values(**vendor.model_dump())
        .on_conflict_do_nothing(index_elements=[func.lower(col(Vendor.name))])
        .returning(col(Vendor.id))
    ).first()
    if inserted is None:
        raise Conflict("a vendor with this name exists", field="name")
    session.commit()
    return get_vendor(session, vendor_id=vendor.id)


def get_vendor(session: Session, *, vendor_id: uuid.UUID) -> Vendor:
    """One vendor, or 404."""
    vendor = session.get(Vendor, vendor_id, populate_existing=True)
    if vendor is None:
        raise NotFound("vendor not found")
    return vendor


def list_vendors(
    session: Session, *, limit: int, cursor: str | None, kind: str | None = None
) -> tuple[list[Vendor], str | None]:
    """A page of vendors, oldest first, optionally of one kind."""
    stmt = select(Vendor)
    if kind is not None:
        stmt = stmt.where(col(Vendor.kind) == kind)
    stmt = keyset(stmt, at=col(Vendor.created_at), id_=col(Vendor.id), limit=limit, cursor=cursor)
    rows = session.execute(stmt).scalars().all()
    return page_of(rows, limit=limit, key=lambda v: (v.created_at, v.id))


def _accounts_public(session: Session, accounts: list[VendorAccount]) -> list[VendorAccountPublic]:
    if not accounts:
        return []
    ids = [a.id for a in accounts]
    contacts: dict[uuid.UUID, list[ContactPublic]] = defaultdict(list)
    for contact in session.execute(
        select(Contact)
        .where(col(Contact.vendor_account_id).in_(ids))
        .order_by(col(Contact.created_at), col(Contact.id))
    ).scalars():
        contacts[contact.vendor_account_id].append(ContactPublic.model_validate(contact, from_attributes=True))
    kinds = {
        vendor_id: kind
        for vendor_id, kind in session.execute(
            select(col(Vendor.id), col(Vendor.kind)).where(col(Vendor.id).in_({a.vendor_id for a in accounts}))
        )
    }
    return [
        VendorAccountPublic(
            id=a.id,
            client_id=a.client_id,
            vendor_id=a.vendor_id,
            vendor_kind=kinds[a.vendor_id],
            account_number=a.account_number,
            portal_url=a.portal_url,
            api_key_credential_id=a.api_key_credential_id,
            contacts=contacts.get(a.id, []),
            created_at=a.created_at,
        )
        for a in accounts
    ]


def create_vendor_account(session: Session, *, client_id: uuid.UUID, data: VendorAccountCreate) -> VendorAccountPublic:
    """Add a client's vendor account with its contacts, in one transaction."""
    if session.get(Vendor, data.vendor_id) is None:
        # A well-formed id of nothing: 404 naming the field (a malformed one is 422 from the schema).
        raise NotFound("vendor_id: no such vendor", field="vendor_id")
    account = VendorAccount(
        client_id=client_id,
        vendor_id=data.vendor_id,
        account_number=data.account_number,
        portal_url=data.portal_url,
        api_key_credential_id=data.api_key_credential_id,
    )
    inserted = session.execute(
        insert(VendorAccount)
        .values(**account.model_dump())
        .on_conflict_do_nothing(
            index_elements=[
                col(VendorAccount.client_id),
                col(VendorAccount.vendor_id),
                col(VendorAccount.account_number),
            ]
        )
        .returning(col(VendorAccount.id))
    ).first()
    if inserted is None:
        raise Conflict("this client already has this account number at this vendor", field="account_number")
    for item in data.contacts:
        session.add(
            Contact(
                vendor_account_id=account.id,
                name=item.name,
                role=item.role,
                email=item.email,
                phone=item.phone,
            )
        )
    session.commit()
    stored = session.get(VendorAccount, account.id, populate_existing=True)
    assert stored is not None
    return _accounts_public(session, [stored])[0]


def get_vendor_account(session: Session, *, account_id: uuid.UUID, viewer: Principal) -> VendorAccountPublic:
    """One vendor account with contacts; another tenant's account is 404 like a missing one."""
    account = session.get(VendorAccount, account_id)
    if account is None:
        raise NotFound("vendor account not found")
    ensure_sees_client(viewer, account.client_id, "vendor account")
    return _accounts_public(session, [account])[0]


def list_vendor_accounts(
    session: Session, *, client_id: uuid.UUID, visible: Visible, limit: int, cursor: str | None
) -> tuple[list[VendorAccountPublic], str | None]:
    """A page of one client's vendor accounts, oldest first, each with contacts, within what the caller may see."""
    stmt = select(VendorAccount).where(col(VendorAccount.client_id) == client_id)
    condition = visible.where(col(VendorAccount.client_id))
    if condition is not None:
        stmt = stmt.where(condition)
    stmt = keyset(
        stmt,
        at=col(VendorAccount.created_at),
        id_=col(VendorAccount.id),
        limit=limit,
        cursor=cursor,
    )
    rows = list(session.execute(stmt).scalars().all())
    items, next_cursor = page_of(rows, limit=limit, key=lambda a: (a.created_at, a.id))
    return _accounts_public(session, items), next_cursor

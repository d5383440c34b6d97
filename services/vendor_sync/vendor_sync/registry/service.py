"""Registry operations: vendors and client vendor accounts with their contacts, each write audited.

Every write is one transaction: the change and its `audit_events` row commit together or not at all.
Account writes lock the account row (`FOR NO KEY UPDATE`), so archiving and a contact write never
interleave: once an account is archived, no write reaches it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from mspkit.auth import Principal
from mspkit.errors import Conflict, NotFound
from mspkit.pagination import keyset, page_of
from mspkit.tenancy import Visible, ensure_sees_client
from vendor_sync.db import utcnow
from vendor_sync.registry import audit
from vendor_sync.registry.credential_check import CredentialChecker
from vendor_sync.registry.models import Contact, Vendor, VendorAccount
from vendor_sync.registry.schemas import (
    ContactCreate,
    ContactPublic,
    ContactUpdate,
    VendorAccountCreate,
    VendorAccountPublic,
    VendorAccountUpdate,
    VendorCreate,
    VendorPublic,
    VendorUpdate,
)

# As many as a new account may bring (VendorAccountCreate.contacts): the list a read returns stays bounded.
MAX_CONTACTS: Final = 50
# Row locks for account writes: NO KEY UPDATE, so inserts that reference the account (contacts, drift
# events) by foreign key are not blocked by it.
_ACCOUNT_LOCK: Final = {"key_share": True}


class AccountArchived(Conflict):
    """A write to an archived vendor account (archived accounts are read-only)."""

    code = "account_archived"

    def __init__(self) -> None:
        super().__init__("this vendor account is archived; archived accounts are read-only", current_status="archived")


def _constraint(exc: IntegrityError) -> str | None:
    return getattr(getattr(exc.orig, "diag", None), "constraint_name", None)


def _apply(row: Any, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        setattr(row, name, value)


def vendor_public(vendor: Vendor) -> VendorPublic:
    """The API shape of a vendor."""
    return VendorPublic.model_validate(vendor, from_attributes=True)


def create_vendor(session: Session, *, data: VendorCreate, actor: str) -> Vendor:
    """Add a vendor, audited; a name already taken (whatever its case) is 409 naming `name`."""
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
    audit.record(
        session,
        actor=actor,
        action="vendor.created",
        object_type="vendor",
        object_id=vendor.id,
        client_id=None,
        before=None,
        after=audit.vendor_snapshot(vendor),
    )
    session.commit()
    return get_vendor(session, vendor_id=vendor.id)


def update_vendor(session: Session, *, vendor_id: uuid.UUID, data: VendorUpdate, actor: str) -> Vendor:
    """Change a vendor's fields (not its kind), audited; a name another vendor has is 409 naming `name`."""
    vendor = session.get(Vendor, vendor_id, with_for_update=True, populate_existing=True)
    if vendor is None:
        raise NotFound("vendor not found")
    before = audit.vendor_snapshot(vendor)
    _apply(vendor, data.changes())
    after = audit.vendor_snapshot(vendor)
    if after == before:
        # Nothing changes, so nothing is written or audited (the lock ends with the commit).
        session.commit()
        return vendor
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        if _constraint(exc) == "ux_vendors_name_lower":
            raise Conflict("a vendor with this name exists", field="name") from None
        raise
    audit.record(
        session,
        actor=actor,
        action="vendor.updated",
        object_type="vendor",
        object_id=vendor.id,
        client_id=None,
        before=before,
        after=after,
    )
    session.commit()
    return vendor


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
            archived_at=a.archived_at,
        )
        for a in accounts
    ]


def create_vendor_account(
    session: Session, *, client_id: uuid.UUID, data: VendorAccountCreate, actor: str
) -> VendorAccountPublic:
    """Add a client's vendor account with its contacts, each audited, in one transaction.

    `api_key_credential_id` is not checked here: the broker's credential names its vendor account, so
    a key can only exist once the account does, and is linked afterwards with `PATCH` (checked there).
    """
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
    audit.record(
        session,
        actor=actor,
        action="vendor_account.created",
        object_type="vendor_account",
        object_id=account.id,
        client_id=client_id,
        before=None,
        after=audit.account_snapshot(account),
    )
    for item in data.contacts:
        _add_contact(session, account=account, data=item, actor=actor)
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
    session: Session,
    *,
    client_id: uuid.UUID,
    visible: Visible,
    limit: int,
    cursor: str | None,
    archived: bool | None = None,
) -> tuple[list[VendorAccountPublic], str | None]:
    """A page of one client's vendor accounts, oldest first, each with contacts, within what the caller may see.

    `archived`: True lists only archived accounts, False only live ones, None both.
    """
    stmt = select(VendorAccount).where(col(VendorAccount.client_id) == client_id)
    condition = visible.where(col(VendorAccount.client_id))
    if condition is not None:
        stmt = stmt.where(condition)
    if archived is not None:
        archived_at = col(VendorAccount.archived_at)
        stmt = stmt.where(archived_at.is_not(None) if archived else archived_at.is_(None))
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


# ---- registry upkeep: accounts and contacts ------------------------------------------------------


def _account_for_write(
    session: Session, *, account_id: uuid.UUID, viewer: Principal, lock: bool, archived_ok: bool = False
) -> VendorAccount:
    """The account `viewer` may write: another tenant's is 404 like a missing one, an archived one 409."""
    account = session.get(
        VendorAccount, account_id, with_for_update=_ACCOUNT_LOCK if lock else None, populate_existing=True
    )
    if account is None:
        raise NotFound("vendor account not found")
    ensure_sees_client(viewer, account.client_id, "vendor account")
    if account.archived_at is not None and not archived_ok:
        raise AccountArchived()
    return account


def update_vendor_account(
    session: Session,
    *,
    account_id: uuid.UUID,
    data: VendorAccountUpdate,
    viewer: Principal,
    checker: CredentialChecker,
) -> VendorAccountPublic:
    """Change an account's number, portal or API key credential (checked at the broker), audited."""
    changes = data.changes()
    account = _account_for_write(session, account_id=account_id, viewer=viewer, lock=False)
    new_key = changes.get("api_key_credential_id")
    if new_key is not None and new_key != account.api_key_credential_id:
        # Asked before the row is locked: no lock is held across a call to another service.
        checker.ensure_api_key_of(new_key, account_id=account.id, client_id=account.client_id)
    # Locked and read again: it may have been archived (or changed) while the broker answered.
    account = _account_for_write(session, account_id=account_id, viewer=viewer, lock=True)
    before = audit.account_snapshot(account)
    _apply(account, changes)
    after = audit.account_snapshot(account)
    if after != before:
        try:
            session.flush()
        except IntegrityError as exc:
            session.rollback()
            if _constraint(exc) == "uq_vendor_accounts_number":
                raise Conflict(
                    "this client already has this account number at this vendor", field="account_number"
                ) from None
            raise
        audit.record(
            session,
            actor=viewer.sub,
            action="vendor_account.updated",
            object_type="vendor_account",
            object_id=account.id,
            client_id=account.client_id,
            before=before,
            after=after,
        )
    session.commit()
    return _accounts_public(session, [account])[0]


def archive_vendor_account(session: Session, *, account_id: uuid.UUID, viewer: Principal) -> VendorAccountPublic:
    """Archive an account, audited; archiving an archived one changes nothing and answers the same."""
    account = _account_for_write(session, account_id=account_id, viewer=viewer, lock=True, archived_ok=True)
    if account.archived_at is None:
        before = audit.account_snapshot(account)
        account.archived_at = utcnow()
        session.flush()
        audit.record(
            session,
            actor=viewer.sub,
            action="vendor_account.archived",
            object_type="vendor_account",
            object_id=account.id,
            client_id=account.client_id,
            before=before,
            after=audit.account_snapshot(account),
        )
    session.commit()
    return _accounts_public(session, [account])[0]


def _add_contact(session: Session, *, account: VendorAccount, data: ContactCreate, actor: str) -> Contact:
    contact = Contact(vendor_account_id=account.id, **data.model_dump())
    session.add(contact)
    audit.record(
        session,
        actor=actor,
        action="contact.created",
        object_type="contact",
        object_id=contact.id,
        client_id=account.client_id,
        before=None,
        after=audit.contact_snapshot(contact),
    )
    return contact


def add_contact(session: Session, *, account_id: uuid.UUID, data: ContactCreate, viewer: Principal) -> ContactPublic:
    """Add a contact to a live account, audited; an account holds at most `MAX_CONTACTS`."""
    account = _account_for_write(session, account_id=account_id, viewer=viewer, lock=True)
    held = session.execute(
        select(func.count()).select_from(Contact).where(col(Contact.vendor_account_id) == account.id)
    ).scalar_one()
    if held >= MAX_CONTACTS:
        raise Conflict(f"this vendor account already has {MAX_CONTACTS} contacts, the most it may hold")
    contact = _add_contact(session, account=account, data=data, actor=viewer.sub)
    session.commit()
    return ContactPublic.model_validate(contact, from_attributes=True)


def _contact_for_write(session: Session, *, account: VendorAccount, contact_id: uuid.UUID) -> Contact:
    contact = session.get(Contact, contact_id, with_for_update=True, populate_existing=True)
    if contact is None or contact.vendor_account_id != account.id:
        raise NotFound("contact not found")
    return contact


def update_contact(
    session: Session, *, account_id: uuid.UUID, contact_id: uuid.UUID, data: ContactUpdate, viewer: Principal
) -> ContactPublic:
    """Change a contact of a live account, audited."""
    account = _account_for_write(session, account_id=account_id, viewer=viewer, lock=True)
    contact = _contact_for_write(session, account=account, contact_id=contact_id)
    before = audit.contact_snapshot(contact)
    _apply(contact, data.changes())
    after = audit.contact_snapshot(contact)
    if after != before:
        session.flush()
        audit.record(
            session,
            actor=viewer.sub,
            action="contact.updated",
            object_type="contact",
            object_id=contact.id,
            client_id=account.client_id,
            before=before,
            after=after,
        )
    session.commit()
    return ContactPublic.model_validate(contact, from_attributes=True)


def delete_contact(session: Session, *, account_id: uuid.UUID, contact_id: uuid.UUID, viewer: Principal) -> None:
    """Remove a contact of a live account, audited with what it held."""
    account = _account_for_write(session, account_id=account_id, viewer=viewer, lock=True)
    contact = _contact_for_write(session, account=account, contact_id=contact_id)
    before = audit.contact_snapshot(contact)
    session.delete(contact)
    session.flush()
    audit.record(
        session,
        actor=viewer.sub,
        action="contact.deleted",
        object_type="contact",
        object_id=contact.id,
        client_id=account.client_id,
        before=before,
        after=None,
    )
    session.commit()

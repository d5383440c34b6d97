"""The registry's audit trail: one `audit_events` row per write, added in the write's own transaction.

A vendor's `support_email` becomes an approval recipient's contact, and an account's credential id
decides which key a sync uses, so every registry write says who changed what from what to what.
Snapshots hold the registry's own fields only: ids, names, addresses, numbers; never a secret (the
registry holds none; an API key is a broker credential id).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from sqlmodel import Session

from mspkit.requestid import current_request_id
from vendor_sync.registry.models import AuditEvent, Contact, Vendor, VendorAccount

ObjectType = Literal["vendor", "vendor_account", "contact"]
Snapshot = dict[str, Any]

VENDOR_FIELDS = ("name", "kind", "website", "support_email", "support_phone", "adapter")
ACCOUNT_FIELDS = ("client_id", "vendor_id", "account_number", "portal_url", "api_key_credential_id", "archived_at")
CONTACT_FIELDS = ("vendor_account_id", "name", "role", "email", "phone")


def _json(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _snapshot(row: Any, fields: tuple[str, ...]) -> Snapshot:
    return {name: _json(getattr(row, name)) for name in fields}


def vendor_snapshot(vendor: Vendor) -> Snapshot:
    """A vendor's audited fields."""
    return _snapshot(vendor, VENDOR_FIELDS)


def account_snapshot(account: VendorAccount) -> Snapshot:
    """A vendor account's audited fields (its contacts are audited one by one)."""
    return _snapshot(account, ACCOUNT_FIELDS)


def contact_snapshot(contact: Contact) -> Snapshot:
    """A contact's audited fields."""
    return _snapshot(contact, CONTACT_FIELDS)


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: ObjectType,
    object_id: uuid.UUID,
    client_id: uuid.UUID | None,
    before: Snapshot | None,
    after: Snapshot | None,
) -> None:
    """Add one audit row to the session's transaction (the caller commits it with the write itself)."""
    session.add(
        AuditEvent(
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            client_id=client_id,
            request_id=current_request_id(),
            before=before,
            after=after,
        )
    )

"""The registry as a provisioning step reads it: the client's vendor accounts and what their adapters can do."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, Select, select

from vendor_sync.adapters.cloudflare import CloudflareAdapter
from vendor_sync.adapters.godaddy import GoDaddyAdapter
from vendor_sync.adapters.mailchannels import MailChannelsAdapter
from vendor_sync.adapters.namecheap import NamecheapAdapter
from vendor_sync.registry.models import Vendor, VendorAccount

ACCOUNTS = VendorAccount.__table__
VENDORS = Vendor.__table__
# What each adapter declares it supports (its class's `capabilities`), known without a key.
CAPABILITIES: dict[str, frozenset[str]] = {
    cls.vendor: cls.capabilities for cls in (CloudflareAdapter, GoDaddyAdapter, NamecheapAdapter, MailChannelsAdapter)
}


@dataclass(frozen=True)
class Account:
    """A client's live vendor account, with its vendor and key's credential id."""

    id: uuid.UUID
    client_id: uuid.UUID
    account_number: str
    credential_id: uuid.UUID | None
    vendor_id: uuid.UUID
    vendor_name: str
    kind: str
    adapter: str

    def can(self, capability: str) -> bool:
        """Whether this account's adapter declares the capability."""
        return capability in CAPABILITIES.get(self.adapter, frozenset())


def _select() -> Select[Any]:
    return (
        select(
            ACCOUNTS.c.id,
            ACCOUNTS.c.client_id,
            ACCOUNTS.c.account_number,
            ACCOUNTS.c.api_key_credential_id,
            VENDORS.c.id.label("vendor_id"),
            VENDORS.c.name.label("vendor_name"),
            VENDORS.c.kind,
            VENDORS.c.adapter,
        )
        .join(VENDORS, VENDORS.c.id == ACCOUNTS.c.vendor_id)
        .where(ACCOUNTS.c.archived_at.is_(None))
    )


def _account(row: Row[Any]) -> Account:
    return Account(
        id=row.id,
        client_id=row.client_id,
        account_number=row.account_number,
        credential_id=row.api_key_credential_id,
        vendor_id=row.vendor_id,
        vendor_name=row.vendor_name,
        kind=row.kind,
        adapter=str(row.adapter or ""),
    )


def get_account(conn: Connection, *, account_id: uuid.UUID, client_id: uuid.UUID) -> Account | None:
    """The client's live account with this id (another client's is None, as a missing one)."""
    query = _select().where(ACCOUNTS.c.id == account_id, ACCOUNTS.c.client_id == client_id)
    row = conn.execute(query).first()
    return _account(row) if row is not None else None


def client_accounts(
    conn: Connection, *, client_id: uuid.UUID, kind: str, adapter: str | None = None, among: Sequence[str] = ()
) -> list[Account]:
    """The client's live accounts of a kind (and adapter), limited to `among` (the task's scope) when given."""
    query = _select().where(ACCOUNTS.c.client_id == client_id, VENDORS.c.kind == kind)
    if adapter is not None:
        query = query.where(VENDORS.c.adapter == adapter)
    accounts = [_account(row) for row in conn.execute(query.order_by(ACCOUNTS.c.created_at, ACCOUNTS.c.id))]
    if among:
        wanted = set(among)
        accounts = [a for a in accounts if str(a.id) in wanted]
    return accounts

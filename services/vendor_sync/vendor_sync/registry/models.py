"""Registry tables: vendors, client vendor accounts, contacts, and the audit trail of their writes.

Indexes and constraints live in the hand-written migrations (the source of truth for the schema).
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey
from sqlalchemy import Uuid as SAUuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from vendor_sync.db import SCHEMA, timestamp_column, utcnow

VENDOR_KINDS = ("isp", "registrar", "dns_host", "hosting", "cloud", "email", "spam_filter", "software")
# The kinds whose accounts are synced from the vendor's API (zones and records, or domains).
SYNCED_KINDS = ("dns_host", "registrar")


class Vendor(SQLModel, table=True):
    """A vendor the MSP deals with; its support contacts and adapter belong here, not to accounts."""

    __tablename__ = "vendors"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str
    kind: str
    website: str | None = None
    support_email: str | None = None
    support_phone: str | None = None
    adapter: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class VendorAccount(SQLModel, table=True):
    """A client's account at a vendor; the API key lives in the broker, only its credential id here."""

    __tablename__ = "vendor_accounts"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(nullable=False)
    vendor_id: uuid.UUID = Field(
        sa_column=Column(SAUuid, ForeignKey(f"{SCHEMA}.vendors.id", ondelete="RESTRICT"), nullable=False)
    )
    account_number: str
    portal_url: str | None = None
    api_key_credential_id: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    # Set once by archiving: the row stays readable, sync skips it, and registry writes to it are refused.
    archived_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    # When the scheduler next syncs the account (account syncs; the interval per vendor kind is a setting).
    next_sync_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class Contact(SQLModel, table=True):
    """A person at the vendor for one account."""

    __tablename__ = "contacts"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    vendor_account_id: uuid.UUID = Field(
        sa_column=Column(SAUuid, ForeignKey(f"{SCHEMA}.vendor_accounts.id", ondelete="CASCADE"), nullable=False)
    )
    name: str
    role: str
    email: str | None = None
    phone: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class AuditEvent(SQLModel, table=True):
    """One registry write: who changed which object, with its fields before and after (no secrets)."""

    __tablename__ = "audit_events"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    actor: str
    action: str
    object_type: str
    object_id: uuid.UUID
    client_id: uuid.UUID | None = None
    request_id: str | None = None
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))

"""Domain tables: client domains, sync runs, drift events (schema `vendor_sync`).

Indexes and constraints live in the hand-written migrations (the source of truth for the schema).
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, ForeignKey, Integer, Text, text
from sqlalchemy import Uuid as SAUuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from vendor_sync.db import SCHEMA, timestamp_column, utcnow

# drift_events references vendor_accounts: its table must be on the metadata wherever this module is.
from vendor_sync.registry import models as _registry_models  # noqa: F401

RUN_STATUSES = ("queued", "running", "succeeded", "failed")
IN_FLIGHT = ("queued", "running")
# The partial unique index's predicate, as literal SQL: ON CONFLICT can only infer a partial index
# from a predicate it can prove at parse time, which bound parameters are not.
IN_FLIGHT_PREDICATE = text("status IN ('queued', 'running')")
ACCOUNT_IN_FLIGHT_PREDICATE = text("status IN ('queued','running') AND vendor_account_id IS NOT NULL")
TERMINAL = ("succeeded", "failed")
DRIFT_KINDS = ("change", "expiry_warning")


def _jsonb(default: str | None) -> Column[Any]:
    if default is None:
        return Column(JSONB, nullable=True)
    return Column(JSONB, nullable=False, server_default=text(f"'{default}'::jsonb"))


class Domain(SQLModel, table=True):
    """A client's domain and the registration data last read from RDAP."""

    __tablename__ = "domains"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(nullable=False)
    # A-label, lower-case, no trailing dot: unique per client.
    name: str
    unicode_name: str
    registrar: str | None = None
    registrar_iana_id: int | None = None
    # Registration data (RDAP events), not row bookkeeping.
    created_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    expires_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    last_changed_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    statuses: list[str] = Field(default_factory=list, sa_column=_jsonb("[]"))
    nameservers: list[str] = Field(default_factory=list, sa_column=_jsonb("[]"))
    dnssec: bool | None = None
    abuse_contact: dict[str, Any] | None = Field(default=None, sa_column=_jsonb(None))
    last_checked_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    next_check_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    # Which of the client's accounts hosts the zone and holds the registration (set by account syncs).
    dns_host_account_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(SAUuid, ForeignKey(f"{SCHEMA}.vendor_accounts.id", ondelete="SET NULL"))
    )
    registrar_account_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(SAUuid, ForeignKey(f"{SCHEMA}.vendor_accounts.id", ondelete="SET NULL"))
    )
    dns_zone_id: str | None = None
    # The zone's MX targets as "priority host", sorted: the last known state drift is measured against.
    mx: list[str] = Field(default_factory=list, sa_column=_jsonb("[]"))
    transfer_lock: bool | None = None
    # Row bookkeeping: pagination keys on (row_created_at, id).
    row_created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class SyncRun(SQLModel, table=True):
    """A domain's refresh or a vendor account's sync: queued -> running -> succeeded | failed (one in flight each)."""

    __tablename__ = "sync_runs"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    domain_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(SAUuid, ForeignKey(f"{SCHEMA}.domains.id", ondelete="CASCADE"))
    )
    vendor_account_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(SAUuid, ForeignKey(f"{SCHEMA}.vendor_accounts.id", ondelete="CASCADE"))
    )
    client_id: uuid.UUID = Field(nullable=False)
    dry_run: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false")))
    force: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false")))
    # An account sync's plan ({create, update, delete} counts) and its changes, as the API shows them.
    plan: dict[str, Any] | None = Field(default=None, sa_column=_jsonb(None))
    changes: list[dict[str, Any]] | None = Field(default=None, sa_column=_jsonb(None))
    status: str = Field(default="queued", sa_column=Column(Text, nullable=False, server_default="queued"))
    trigger: str = Field(default="manual", sa_column=Column(Text, nullable=False, server_default="manual"))
    created: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    updated: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    deleted: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    failed: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    error: str | None = None
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    # Not to be run before this time (Retry-After, backoff); beat re-enqueues when it passes.
    not_before: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    # When a message for this run was last published; NULL means "no message out there".
    enqueued_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    started_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class DriftEvent(SQLModel, table=True):
    """A change seen between two refreshes (or an expiry warning) on a domain or vendor account."""

    __tablename__ = "drift_events"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(nullable=False)
    domain_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(SAUuid, ForeignKey(f"{SCHEMA}.domains.id", ondelete="CASCADE"))
    )
    vendor_account_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(SAUuid, ForeignKey(f"{SCHEMA}.vendor_accounts.id", ondelete="CASCADE"))
    )
    sync_run_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(SAUuid, ForeignKey(f"{SCHEMA}.sync_runs.id", ondelete="SET NULL"))
    )
    kind: str = Field(default="change", sa_column=Column(Text, nullable=False, server_default="change"))
    field: str
    old: Any = Field(default=None, sa_column=_jsonb(None))
    new: Any = Field(default=None, sa_column=_jsonb(None))
    detected_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    # The intake task raised for it (drift_review or renewal), once intake answered.
    task_id: uuid.UUID | None = None
    task_attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))


class DnsRecord(SQLModel, table=True):
    """A record of a zone as its DNS host last reported it."""

    __tablename__ = "dns_records"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    domain_id: uuid.UUID = Field(
        sa_column=Column(SAUuid, ForeignKey(f"{SCHEMA}.domains.id", ondelete="CASCADE"), nullable=False)
    )
    type: str
    name: str
    content: str
    ttl: int
    priority: int | None = None
    vendor_record_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())

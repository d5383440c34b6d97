"""The disclosure ledger table: one row per third-party credential release or information disclosure."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from secrets_broker.db import SCHEMA


class Disclosure(SQLModel, table=True):
    """What went to which third party, on which approval or legal basis, for which task.

    `kind` says what: `credential` (a release to an approval's recipient: `release_id` and
    `credential_id` set) or `information` (client information sent to the vendor `vendor_id`
    during provisioning: neither set). Migration 0007.
    """

    __tablename__ = "disclosures"
    __table_args__: Any = {"schema": SCHEMA}

    id: uuid.UUID = Field(primary_key=True)
    client_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    task_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    kind: str = Field(default="credential", sa_type=Text)
    release_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey(f"{SCHEMA}.releases.id"), nullable=True)
    )
    credential_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    # The recipient vendor (the approval's `recipient.vendor_id`): always set for information.
    vendor_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    party_category: str = Field(sa_type=Text)
    recipient_name: str = Field(sa_type=Text)
    recipient_contact_email: str | None = Field(default=None, sa_type=Text)
    approval_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    legal_reference: str | None = Field(default=None, sa_type=Text)
    information_categories: list[str] = Field(sa_column=Column(JSONB, nullable=False))
    disclosed_by: str = Field(sa_type=Text)
    # The caller's key of `POST /internal/disclosures`, unique per `disclosed_by`: a retry finds this row.
    idempotency_key: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]

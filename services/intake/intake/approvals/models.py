"""Approval table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, DateTime, ForeignKey, Index, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from intake.db import SCHEMA


class Approval(SQLModel, table=True):
    """A client's decision on disclosing named information to a named third party."""

    __tablename__ = "approvals"
    __table_args__: Any = (
        # Stored statuses; `expired` is also computed on read from `expires_at`.
        CheckConstraint("status IN ('pending', 'approved', 'rejected', 'expired')", name="ck_approvals_status"),
        CheckConstraint("origin IN ('request', 'task')", name="ck_approvals_origin"),
        Index("ix_approvals_created", "created_at", "id"),
        Index("ix_approvals_client", "client_id", "created_at", "id"),
        Index("ix_approvals_task", "task_id", "created_at", "id"),
        Index("ix_approvals_status", "status", "expires_at"),
        {"schema": SCHEMA},
    )

    id: uuid.UUID = Field(primary_key=True)
    task_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey(f"{SCHEMA}.tasks.id"), nullable=False))
    # `request`: made by the request's expansion, so it gates the task out of `awaiting_approval`;
    # `task`: asked later on the task (POST /v1/tasks/{id}/approvals), which never moves it.
    origin: str = Field(sa_type=Text)
    client_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey(f"{SCHEMA}.clients.id"), nullable=False))
    status: str = Field(sa_type=Text)
    recipient_name: str = Field(sa_type=Text)
    recipient_contact_email: str | None = Field(default=None, sa_type=Text)
    party_category: str = Field(sa_type=Text)
    legal_reference: str | None = Field(default=None, sa_type=Text)
    # The vendor (vendor_sync's registry) the information goes to; NULL for a recipient that is not one.
    recipient_vendor_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    information_categories: list[str] = Field(sa_column=Column(JSONB, nullable=False))
    credential_ids: list[str] = Field(sa_column=Column(JSONB, nullable=False))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    decided_by: str | None = Field(default=None, sa_type=Text)
    decided_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    comment: str | None = Field(default=None, sa_type=Text)
    created_by: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]

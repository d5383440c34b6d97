"""Service request table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, DateTime, ForeignKey, Index, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from intake.db import SCHEMA


class ServiceRequest(SQLModel, table=True):
    """A client's request; its typed body is kept as submitted, its status follows its tasks."""

    __tablename__ = "requests"
    __table_args__: Any = (
        CheckConstraint("status IN ('open', 'done', 'rejected', 'cancelled')", name="ck_requests_status"),
        Index("ix_requests_created", "created_at", "id"),
        Index("ix_requests_client", "client_id", "created_at", "id"),
        Index("ix_requests_status", "status", "created_at", "id"),
        Index("ix_requests_type", "type", "created_at", "id"),
        {"schema": SCHEMA},
    )

    id: uuid.UUID = Field(primary_key=True)
    client_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey(f"{SCHEMA}.clients.id"), nullable=False))
    type: str = Field(sa_type=Text)
    status: str = Field(sa_type=Text)
    body: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_by: str = Field(sa_type=Text)
    # The requester's address, kept only when their token said `email_verified: true` (status mail).
    requester_email: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]

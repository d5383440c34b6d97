"""Client table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, Index, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from intake.db import SCHEMA


class Client(SQLModel, table=True):
    """A client organisation; its status gates every task and release."""

    __tablename__ = "clients"
    __table_args__: Any = (
        CheckConstraint("status IN ('active', 'inactive', 'closed')", name="ck_clients_status"),
        Index("ix_clients_created", "created_at", "id"),
        Index("ix_clients_status", "status", "created_at", "id"),
        {"schema": SCHEMA},
    )

    id: uuid.UUID = Field(primary_key=True)
    name: str = Field(sa_type=Text)
    primary_domain: str = Field(sa_type=Text)
    approver_emails: list[str] = Field(sa_column=Column(JSONB, nullable=False))
    purchase_approval_threshold_cents: int = Field(sa_type=BigInteger)
    status: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]

"""Client table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Column, DateTime, Index, Text, text, true
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
    # Who gets access alerts; NULL means the approvers (migration 0006).
    alert_emails: list[str] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    # Whether requesters with a verified address get mail when their tasks change status.
    status_mail: bool = Field(default=True, sa_column=Column(Boolean, nullable=False, server_default=true()))
    # PSA provider -> the client's company id there (migration 0009); an unmapped client gets no ticket.
    psa_company_ids: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    )
    status: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]

    @property
    def alert_recipients(self) -> list[str]:
        """Where access alerts go: `alert_emails`, or the approvers when none are set."""
        return list(self.alert_emails or self.approver_emails)

"""Staff directory tables: a person's row, and the PSA member ids that map to them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Column, DateTime, ForeignKey, Index, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from intake.db import SCHEMA


class Staff(SQLModel, table=True):
    """An MSP staff member: a technician's `client_ids` limit what they may see (NULL: every client)."""

    __tablename__ = "staff"
    __table_args__: Any = (
        CheckConstraint("role IN ('technician', 'admin')", name="ck_staff_role"),
        UniqueConstraint("id", name="ux_staff_id"),
        Index("ix_staff_created", "created_at", "id"),
        {"schema": SCHEMA},
    )

    sub: str = Field(primary_key=True, sa_type=Text)
    # Not in the contract's body: the row's time-ordered id, for the kit's keyset pagination.
    id: uuid.UUID
    display_name: str = Field(sa_type=Text)
    email: str = Field(sa_type=Text)
    role: str = Field(sa_type=Text)
    active: bool = Field(sa_type=Boolean)
    # A JSON array of client ids, or NULL for every client.
    client_ids: list[str] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


class StaffPsaMember(SQLModel, table=True):
    """One PSA's member id of a staff member; a member id maps to at most one person (the unique key)."""

    __tablename__ = "staff_psa_members"
    __table_args__: Any = (
        UniqueConstraint("provider", "member_id", name="ux_staff_psa_members_member"),
        {"schema": SCHEMA},
    )

    sub: str = Field(sa_column=Column(Text, ForeignKey(f"{SCHEMA}.staff.sub", ondelete="CASCADE"), primary_key=True))
    provider: str = Field(primary_key=True, sa_type=Text)
    member_id: str = Field(sa_type=Text)

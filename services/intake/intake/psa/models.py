"""PSA tables: a task's ticket link, the callbacks already applied, and the release notes already added."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Index, Text, UniqueConstraint, Uuid
from sqlmodel import Field, SQLModel

from intake.db import SCHEMA


class PsaLink(SQLModel, table=True):
    """A task's ticket in the PSA, with what intake last pushed there and last saw there (echo suppression)."""

    __tablename__ = "task_psa_links"
    __table_args__: Any = (
        UniqueConstraint("provider", "ticket_id", name="ux_task_psa_links_ticket"),
        {"schema": SCHEMA},
    )

    task_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey(f"{SCHEMA}.tasks.id"), primary_key=True))
    provider: str = Field(sa_type=Text)
    ticket_id: str = Field(sa_type=Text)
    ticket_url: str = Field(sa_type=Text)
    pushed_status: str | None = Field(default=None, sa_type=Text)
    pushed_owner: str | None = Field(default=None, sa_type=Text)
    seen_status: str | None = Field(default=None, sa_type=Text)
    seen_owner: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


class PsaCallback(SQLModel, table=True):
    """A callback body already applied (by the sha256 of its raw bytes): a replay changes nothing."""

    __tablename__ = "psa_callbacks"
    __table_args__: Any = (Index("ix_psa_callbacks_received", "received_at"), {"schema": SCHEMA})

    fingerprint: str = Field(primary_key=True, sa_type=Text)
    provider: str = Field(sa_type=Text)
    ticket_id: str = Field(sa_type=Text)
    outcome: str = Field(sa_type=Text)
    received_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


class PsaNoteSent(SQLModel, table=True):
    """A broker event already noted on its task's ticket (migration 0009): a redelivery adds no second note."""

    __tablename__ = "psa_notes_sent"
    __table_args__: Any = ({"schema": SCHEMA},)

    event_id: uuid.UUID = Field(primary_key=True)
    task_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey(f"{SCHEMA}.tasks.id"), nullable=False))
    provider: str = Field(sa_type=Text)
    ticket_id: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]

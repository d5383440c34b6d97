"""Audit chain storage and the anchor bookkeeping row."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, SmallInteger, Text, Uuid
from sqlmodel import Field, SQLModel

from secrets_broker.db import SCHEMA


class AuditEntry(SQLModel, table=True):
    """One link of the chain: its canonical JSON text and sha256(prev_hash, text)."""

    __tablename__ = "audit_entries"
    __table_args__: Any = {"schema": SCHEMA}

    index: int = Field(sa_column=Column("index", BigInteger, primary_key=True, autoincrement=False))
    action: str = Field(sa_type=Text)
    actor: str = Field(sa_type=Text)
    client_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    task_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    credential_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    release_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    rule: str | None = Field(default=None, sa_type=Text)
    canonical: str = Field(sa_type=Text)
    prev_hash: str = Field(sa_type=Text)
    hash: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


class AuditAnchorState(SQLModel, table=True):
    """The single row recording the last head anchored in Vault."""

    __tablename__ = "audit_anchor"
    __table_args__: Any = {"schema": SCHEMA}

    id: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    anchored_index: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    anchored_hash: str | None = Field(default=None, sa_type=Text)
    anchored_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]

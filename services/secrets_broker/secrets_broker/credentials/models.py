"""The credential metadata table: never the secret or the notes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Text, Uuid
from sqlmodel import Field, SQLModel

from secrets_broker.db import SCHEMA


class Credential(SQLModel, table=True):
    """A credential's metadata; `pending` until its secret is in Vault, then `active`."""

    __tablename__ = "credentials"
    __table_args__: Any = {"schema": SCHEMA}

    id: uuid.UUID = Field(primary_key=True)
    client_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    vendor_account_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    kind: str = Field(sa_type=Text)
    owner: str = Field(sa_type=Text)
    category: str = Field(sa_type=Text)
    name: str = Field(sa_type=Text)
    username: str = Field(sa_type=Text)
    url: str | None = Field(default=None, sa_type=Text)
    status: str = Field(sa_type=Text)
    vault_version: int | None = None
    created_by: str = Field(sa_type=Text)
    # The provisioning task vendor_sync created it for (migration 0007); None for everything else.
    task_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]

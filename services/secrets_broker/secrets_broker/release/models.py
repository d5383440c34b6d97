"""Release, pending-revocation and tombstone tables (no token is ever stored)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Text, Uuid
from sqlmodel import Field, SQLModel

from secrets_broker.db import SCHEMA


class Release(SQLModel, table=True):
    """One wrapped release: to the technician, or to an approval's third-party recipient."""

    __tablename__ = "releases"
    __table_args__: Any = {"schema": SCHEMA}

    id: uuid.UUID = Field(primary_key=True)
    task_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    credential_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey(f"{SCHEMA}.credentials.id"), nullable=False)
    )
    client_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    technician: str = Field(sa_type=Text)
    recipient_type: str = Field(sa_type=Text)
    approval_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    # HMAC-SHA256(settings key, token): lets unwrap recognise the token without storing it.
    token_fingerprint: str = Field(sa_type=Text)
    # Revokes the token (by the worker's role) but cannot unwrap it.
    wrap_accessor: str = Field(sa_type=Text)
    status: str = Field(sa_type=Text)
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


class PendingRevocation(SQLModel, table=True):
    """A minted token the broker worker must revoke by accessor (the API holds no revoke right)."""

    __tablename__ = "pending_revocations"
    __table_args__: Any = {"schema": SCHEMA}

    id: uuid.UUID = Field(primary_key=True)
    accessor: str = Field(sa_type=Text)
    release_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    reason: str = Field(sa_type=Text)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    done_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


class Tombstone(SQLModel, table=True):
    """A task or client that left its releasable state: no new release, whatever intake says later."""

    __tablename__ = "tombstones"
    __table_args__: Any = {"schema": SCHEMA}

    id: uuid.UUID = Field(primary_key=True)
    task_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    client_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    reason: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]

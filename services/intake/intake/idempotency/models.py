"""Idempotency key table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, Integer, Text
from sqlmodel import Field, SQLModel

from intake.db import SCHEMA


class IdempotencyKey(SQLModel, table=True):
    """The first response to (scope, key); scope is `client:<id>` for client roles, else `sub:<sub>`."""

    __tablename__ = "idempotency_keys"
    __table_args__: Any = (Index("ix_idempotency_keys_created", "created_at"), {"schema": SCHEMA})

    scope: str = Field(sa_type=Text, primary_key=True)
    key: str = Field(sa_type=Text, primary_key=True)
    body_hash: str = Field(sa_type=Text)
    status_code: int = Field(sa_type=Integer)
    # The exact bytes first sent (text, not JSONB, which would reorder the keys).
    response_body: str = Field(sa_type=Text)
    request_id: uuid.UUID
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]

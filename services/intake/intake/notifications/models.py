"""The sent-mail table: at most one message per (event, recipient)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Index, Text, func
from sqlmodel import Field, SQLModel

from intake.db import SCHEMA

SENDING, SENT, REFUSED, FAILED = "sending", "sent", "refused", "failed"


class SentMail(SQLModel, table=True):
    """One recipient of one event's mail: claimed (`sending`) before SMTP, then `sent`, `refused` or `failed`.

    A row is this consumer's inbox: a redelivered event finds it and sends nothing. A transient SMTP
    failure deletes the claim, so the retry takes it again; a worker that dies mid-send leaves
    `sending`, and the message is not sent twice (at most once, as the contract says).
    """

    __tablename__ = "notifications_sent"
    __table_args__: Any = (
        CheckConstraint("status IN ('sending', 'sent', 'refused', 'failed')", name="ck_notifications_sent_status"),
        Index("ix_notifications_sent_created", "created_at"),
        {"schema": SCHEMA},
    )

    event_id: uuid.UUID = Field(primary_key=True)
    recipient: str = Field(primary_key=True, sa_type=Text)
    template: str = Field(sa_type=Text)
    status: str = Field(sa_type=Text)
    created_at: datetime = Field(
        sa_type=DateTime(timezone=True),  # type: ignore[call-overload]
        sa_column_kwargs={"server_default": func.now()},
    )
    updated_at: datetime = Field(
        sa_type=DateTime(timezone=True),  # type: ignore[call-overload]
        sa_column_kwargs={"server_default": func.now()},
    )

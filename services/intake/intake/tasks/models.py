"""Task, step and internal-note tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Column, DateTime, ForeignKey, Index, Text, Uuid, false, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from intake.db import SCHEMA


class Task(SQLModel, table=True):
    """A unit of work with a workflow status, an assignee and a scope of what it may touch."""

    __tablename__ = "tasks"
    __table_args__: Any = (
        CheckConstraint(
            "status IN ('new', 'awaiting_approval', 'ready', 'in_progress', 'on_hold',"
            " 'done', 'rejected', 'cancelled')",
            name="ck_tasks_status",
        ),
        Index("ix_tasks_created", "created_at", "id"),
        Index("ix_tasks_client", "client_id", "created_at", "id"),
        Index("ix_tasks_status", "status", "created_at", "id"),
        Index("ix_tasks_type", "type", "created_at", "id"),
        Index("ix_tasks_assignee", "assignee", "status", "created_at", "id"),
        Index("ix_tasks_request", "request_id"),
        Index("ux_tasks_dedupe_key", "dedupe_key", unique=True, postgresql_where=text("dedupe_key IS NOT NULL")),
        {"schema": SCHEMA},
    )

    id: uuid.UUID = Field(primary_key=True)
    # NULL for system tasks (POST /internal/tasks): they answer no client request.
    request_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey(f"{SCHEMA}.requests.id"), nullable=True)
    )
    client_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey(f"{SCHEMA}.clients.id"), nullable=False))
    type: str = Field(sa_type=Text)
    title: str = Field(sa_type=Text)
    status: str = Field(sa_type=Text)
    assignee: str | None = Field(default=None, sa_type=Text)
    assigned_by: str | None = Field(default=None, sa_type=Text)
    credential_categories: list[str] = Field(sa_column=Column(JSONB, nullable=False))
    vendor_account_ids: list[str] = Field(sa_column=Column(JSONB, nullable=False))
    credential_ids: list[str] = Field(sa_column=Column(JSONB, nullable=False))
    dedupe_key: str | None = Field(default=None, sa_type=Text)
    created_by: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


class TaskStep(SQLModel, table=True):
    """A step of a task's work, visible to the client: a worker's result, or a `human` step a person decides."""

    __tablename__ = "task_steps"
    __table_args__: Any = (
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="ck_task_steps_status"),
        Index("ix_task_steps_task", "task_id", "created_at", "id"),
        Index(
            "ux_task_steps_idempotency_key",
            "task_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        {"schema": SCHEMA},
    )

    id: uuid.UUID = Field(primary_key=True)
    task_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey(f"{SCHEMA}.tasks.id"), nullable=False))
    name: str = Field(sa_type=Text)
    status: str = Field(sa_type=Text)
    detail: str | None = Field(default=None, sa_type=Text)
    # A person (the assignee or an admin) decides a pending human step. A worker's step may be
    # reported `pending` first (its plan), then its outcome under the same name (`steps.py`).
    human: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    # The key of the report that created the step (unique per task); NULL only for steps reported before 0004.
    idempotency_key: str | None = Field(default=None, sa_type=Text)
    # The keys of the later reports of a worker's step (its outcome after its plan, a retry's outcome):
    # a repeated report answers with the step instead of applying again.
    later_report_keys: list[str] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default=text("'[]'::jsonb"))
    )
    reported_by: str = Field(sa_type=Text)
    decided_by: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


class TaskNote(SQLModel, table=True):
    """An internal note (transition notes, PSA ticket links): technicians and admins only."""

    __tablename__ = "task_notes"
    __table_args__: Any = (
        Index("ix_task_notes_task", "task_id", "created_at", "id"),
        {"schema": SCHEMA},
    )

    id: uuid.UUID = Field(primary_key=True)
    task_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey(f"{SCHEMA}.tasks.id"), nullable=False))
    kind: str = Field(sa_type=Text)
    author: str = Field(sa_type=Text)
    body: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]

"""Provisioning tables: one run per delivery of a task's work, and the task's steps (schema `vendor_sync`).

Rows hold ids, statuses and what a step did (hosts, record contents), never a key or a secret.
Indexes and constraints live in the hand-written migration 0005 (the source of truth for the schema).
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, ForeignKey, Integer, Text, text
from sqlalchemy import Uuid as SAUuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from vendor_sync.db import SCHEMA, timestamp_column, utcnow

# waiting: the run lacks what it needs to start: the task to be ready, or (its events out of order) the
# request id its `task.created` carries; queued/running: in flight (one per
# task); succeeded: every step done or handed to a person; failed: a step failed, or attempts ran out;
# skipped: nothing to do (not a provisionable type, or the task was not ours to claim).
RUN_STATUSES = ("waiting", "queued", "running", "succeeded", "failed", "skipped")
IN_FLIGHT = ("queued", "running")
IN_FLIGHT_PREDICATE = text("status IN ('queued', 'running')")
WAITING_PREDICATE = text("status = 'waiting'")
TERMINAL = ("succeeded", "failed", "skipped")
STEP_STATUSES = ("pending", "succeeded", "failed")


class ProvisioningRun(SQLModel, table=True):
    """One go at a task's provisioning: waiting -> queued -> running -> succeeded | failed | skipped."""

    __tablename__ = "provisioning_runs"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    task_id: uuid.UUID = Field(nullable=False)
    client_id: uuid.UUID = Field(nullable=False)
    request_id: uuid.UUID | None = None
    # The request's type once read from intake (None until then).
    type: str | None = None
    # When the task was seen `ready` while its request id was not known yet (a waiting row).
    ready_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    # The event that queued the run (`task.created`, `task.status_changed`, ...).
    trigger: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="queued", sa_column=Column(Text, nullable=False, server_default="queued"))
    error: str | None = None
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    # When intake gave this run the task (`POST /internal/tasks/{id}/claim`), and the ids it answered with.
    claimed_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    task_view: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    not_before: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    enqueued_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    started_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class ProvisioningStep(SQLModel, table=True):
    """A step of a task's provisioning, by name: its last outcome, and whether intake has it."""

    __tablename__ = "provisioning_steps"
    __table_args__ = {"schema": SCHEMA}

    task_id: uuid.UUID = Field(primary_key=True)
    name: str = Field(primary_key=True)
    run_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(SAUuid, ForeignKey(f"{SCHEMA}.provisioning_runs.id", ondelete="SET NULL")),
    )
    human: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false")))
    status: str = Field(sa_column=Column(Text, nullable=False))
    vendor: str | None = None
    # What the step did, as the registry's own values (hosts, records replaced); the text intake shows.
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    summary: str | None = None
    error: str | None = None
    # How many outcomes were recorded (a retried failed step records another); part of intake's key.
    outcomes: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default="1"))
    # When intake took the current outcome (NULL: still to report).
    reported_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())

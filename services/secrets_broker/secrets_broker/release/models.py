"""Release, pending-revocation and tombstone tables (no token is ever stored)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Text, Uuid
from sqlmodel import Field, SQLModel

from secrets_broker.common.types import utcnow
from secrets_broker.db import SCHEMA


class Release(SQLModel, table=True):
    """One release: to the technician, to an approval's third-party recipient, or to a service (vendor_sync)."""

    __tablename__ = "releases"
    __table_args__: Any = {"schema": SCHEMA}

    id: uuid.UUID = Field(primary_key=True)
    # None only for a service release that names no task (migration 0005).
    task_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    credential_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey(f"{SCHEMA}.credentials.id"), nullable=False)
    )
    client_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    technician: str = Field(sa_type=Text)
    recipient_type: str = Field(sa_type=Text)
    approval_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    # HMAC-SHA256(settings key, token): lets unwrap recognise the token without storing it. For a
    # third party, the token is the broker's own mailed reveal code.
    token_fingerprint: str = Field(sa_type=Text)
    # Revokes the token (by the worker's role) but cannot unwrap it. None for a third party: its
    # release mints no Vault token (the broker wraps and unwraps inside itself at reveal).
    wrap_accessor: str | None = Field(default=None, sa_type=Text)
    status: str = Field(sa_type=Text)
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    # Intake's `updated_at` of the view the release was decided on: a tombstone revokes the
    # releases decided on views at or before its change, and spares those decided after it.
    auth_updated_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    # When the broker sent its last live read of intake (the re-check after minting).
    rechecked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    # Why it left `issued` other than by its recipient (revoked_task, revoked_client, intercepted, ...).
    closed_reason: str | None = Field(default=None, sa_type=Text)
    # Why it was asked for: the technician's reason, or the job of a service release (migration 0006).
    # Kept on the row so release lists need not parse the audit chain; the chain keeps its own copy.
    reason: str | None = Field(default=None, sa_type=Text)

    def close(self, status: str, reason: str | None, now: datetime) -> None:
        """Leave `issued` as `status` (unwrapped, expired, revoked), with why when not by its recipient."""
        self.status = status
        self.closed_reason = reason
        self.updated_at = now

    @property
    def person_task_id(self) -> uuid.UUID:
        """The task of a release to a person (technician or third party), which always has one."""
        if self.task_id is None:
            raise ValueError("a service release has no task")
        return self.task_id


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
    # Backoff of the worker's sweep after a failed attempt.
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


class Tombstone(SQLModel, table=True):
    """A task or client that left its releasable state, as the broker worker learnt it from intake.

    It covers every authorization view whose `updated_at` is at or before `effective_at` (the task's
    `updated_at` carried in the event, else the event's `occurred_at`; NULL covers every view):
    releases decided on such a view are revoked, and a new release or unwrap shown such a (stale)
    view is refused. A view updated after the change (the task came back to `in_progress`, or was
    reassigned back) is not covered: intake's live view is the authority from then on. `assignee`
    set: a reassignment, covering only views that still name that assignee. `task_id` NULL: the
    whole client (until `lifted_at`, for service releases, which have no task view to compare).
    """

    __tablename__ = "tombstones"
    __table_args__: Any = {"schema": SCHEMA}

    id: uuid.UUID = Field(primary_key=True)
    task_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    client_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    reason: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    effective_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    assignee: str | None = Field(default=None, sa_type=Text)
    event_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    lifted_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]

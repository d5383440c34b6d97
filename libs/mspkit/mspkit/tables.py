"""The kit's tables, created in each service's own schema: outbox, inbox, job attempts, dead letters."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB


@dataclass(frozen=True)
class KitTables:
    """Handles on one schema's kit tables."""

    schema: str
    outbox: Table
    inbox: Table
    job_attempts: Table
    dead_letters: Table
    relay_state: Table


def kit_tables(metadata: MetaData, schema: str) -> KitTables:
    """Declare the kit tables for `schema` on `metadata`."""
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("type", Text, nullable=False),
        Column("envelope", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True)),
        Column("sent_run_id", Text),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("last_error", Text),
        Index(f"ix_{schema}_outbox_unsent", "next_attempt_at", "id", postgresql_where=text("sent_at IS NULL")),
        Index(f"ix_{schema}_outbox_sent_run", "sent_run_id", "sent_at"),
        schema=schema,
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("event_id", Uuid, nullable=False),
        Column("consumer", Text, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("event_id", "consumer"),
        schema=schema,
    )
    job_attempts = Table(
        "job_attempts",
        metadata,
        Column("job_key", Text, primary_key=True),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_error", Text),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        schema=schema,
    )
    dead_letters = Table(
        "dead_letters",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("job_key", Text, nullable=False),
        Column("task_name", Text, nullable=False),
        Column("args", JSONB, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("error", Text),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        schema=schema,
    )
    relay_state = Table(
        "relay_state",
        metadata,
        Column("key", Text, primary_key=True),
        Column("value", Text, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        schema=schema,
    )
    return KitTables(schema, outbox, inbox, job_attempts, dead_letters, relay_state)

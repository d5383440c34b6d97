"""Migration 0004: existing steps become worker steps (not human) that have not changed since they were reported."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from intake_factories import insert_client, insert_row
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError


def _step(conn, step_id: uuid.UUID, task_id: uuid.UUID, at: datetime, **extra: object) -> None:
    insert_row(
        conn,
        "task_steps",
        id=step_id,
        task_id=task_id,
        name="dns",
        status=extra.pop("status", "succeeded"),
        detail=None,
        reported_by="svc:vendor_sync",
        created_at=at,
        **extra,
    )


def test_existing_steps_are_worker_steps_and_keys_are_unique_per_task(scratch_url: str, scratch_alembic: Any) -> None:
    from alembic import command

    config = scratch_alembic
    command.upgrade(config, "0003")
    engine = create_engine(scratch_url)
    reported = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    client, task, other_task, old_step = (uuid.uuid4() for _ in range(4))
    with engine.begin() as conn:
        insert_client(conn, client, reported)
        for task_id in (task, other_task):
            insert_row(
                conn,
                "tasks",
                id=task_id,
                client_id=client,
                type="provisioning",
                title="T",
                status="in_progress",
                credential_categories="[]",
                vendor_account_ids="[]",
                credential_ids="[]",
                created_by="u",
                created_at=reported,
                updated_at=reported,
            )
        _step(conn, old_step, task, reported)
    # The revision itself, not head: a later migration must not change what this one is shown to do.
    command.upgrade(config, "0004")
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT human, idempotency_key, decided_by, updated_at FROM intake.task_steps WHERE id = :i"),
            {"i": old_step},
        ).one()
        nullable = dict(
            conn.execute(
                text(
                    "SELECT column_name, is_nullable FROM information_schema.columns "
                    "WHERE table_schema = 'intake' AND table_name = 'task_steps'"
                )
            ).all()
        )
    assert tuple(row) == (False, None, None, reported)
    assert (nullable["human"], nullable["updated_at"], nullable["idempotency_key"]) == ("NO", "NO", "YES")

    later = reported + timedelta(hours=1)
    with engine.begin() as conn:  # `pending` is a status now, and `human` defaults to false
        _step(conn, uuid.uuid4(), task, later, status="pending", human=True, idempotency_key="k", updated_at=later)
        _step(conn, uuid.uuid4(), other_task, later, idempotency_key="k", updated_at=later)  # another task's key
        _step(conn, uuid.uuid4(), task, later, updated_at=later)  # no key: as the old steps
    with pytest.raises(IntegrityError, match="ux_task_steps_idempotency_key"), engine.begin() as conn:
        _step(conn, uuid.uuid4(), task, later, idempotency_key="k", updated_at=later)
    with pytest.raises(IntegrityError, match="ck_task_steps_status"), engine.begin() as conn:
        _step(conn, uuid.uuid4(), task, later, status="running", updated_at=later)

    # Down again: a pending step has no place in the old table, so the downgrade stops rather than
    # invent an outcome; once it is decided, the downgrade goes through and keeps every step.
    with pytest.raises(IntegrityError, match="ck_task_steps_status"):
        command.downgrade(config, "0003")
    with engine.begin() as conn:
        conn.execute(text("UPDATE intake.task_steps SET status = 'succeeded' WHERE status = 'pending'"))
    command.downgrade(config, "0003")
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM intake.task_steps")).scalar_one()
    engine.dispose()
    assert count == 4

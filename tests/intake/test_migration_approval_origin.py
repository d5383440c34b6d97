"""Migration 0003 gives every existing approval its origin: made by its request's expansion, or asked on the task."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from intake_factories import insert_client, insert_row
from sqlalchemy import create_engine, text


def test_existing_approvals_get_their_origin(scratch_url: str, scratch_alembic: Any) -> None:
    from alembic import command

    config = scratch_alembic
    command.upgrade(config, "0002")
    engine = create_engine(scratch_url)
    created = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    later = created + timedelta(hours=2)
    ids = {
        name: uuid.uuid4() for name in ("client", "request", "task", "system_task", "expansion", "asked", "on_system")
    }
    stamps = {"created_by": "u", "created_at": created, "updated_at": created}
    with engine.begin() as conn:
        insert_client(conn, ids["client"], created)
        insert_row(
            conn,
            "requests",
            id=ids["request"],
            client_id=ids["client"],
            type="isp_account_setup",
            status="open",
            body="{}",
            **stamps,
        )
        for task, request in (("task", ids["request"]), ("system_task", None)):
            insert_row(
                conn,
                "tasks",
                id=ids[task],
                request_id=request,
                client_id=ids["client"],
                type="drift_review",
                title="T",
                status="awaiting_approval",
                credential_categories="[]",
                vendor_account_ids="[]",
                credential_ids="[]",
                **stamps,
            )
        for approval, task, at in (
            ("expansion", "task", created),  # written with its task, in the same statement's transaction
            ("asked", "task", later),  # asked on the task afterwards
            ("on_system", "system_task", created),  # a system task has no request to expand
        ):
            insert_row(
                conn,
                "approvals",
                id=ids[approval],
                task_id=ids[task],
                client_id=ids["client"],
                status="pending",
                recipient_name="R",
                party_category="provider_for_client",
                information_categories="[]",
                credential_ids="[]",
                expires_at=later,
                created_by="u",
                created_at=at,
                updated_at=at,
            )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        origins = dict(conn.execute(text("SELECT id, origin FROM intake.approvals")).all())
        nullable = conn.execute(
            text(
                "SELECT is_nullable FROM information_schema.columns "
                "WHERE table_schema = 'intake' AND table_name = 'approvals' AND column_name = 'origin'"
            )
        ).scalar_one()
    engine.dispose()
    assert origins == {ids["expansion"]: "request", ids["asked"]: "task", ids["on_system"]: "task"}
    assert nullable == "NO"

"""Domain tables: clients, requests, tasks, steps, internal notes, approvals, idempotency keys.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "intake"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("primary_domain", sa.Text, nullable=False),
        sa.Column("approver_emails", JSONB, nullable=False),
        sa.Column("purchase_approval_threshold_cents", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("status IN ('active', 'inactive', 'closed')", name="ck_clients_status"),
        schema=S,
    )
    op.create_index("ix_clients_created", "clients", ["created_at", "id"], schema=S)
    op.create_index("ix_clients_status", "clients", ["status", "created_at", "id"], schema=S)

    op.create_table(
        "requests",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("client_id", sa.Uuid, sa.ForeignKey(f"{S}.clients.id"), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("status IN ('open', 'done', 'rejected', 'cancelled')", name="ck_requests_status"),
        schema=S,
    )
    op.create_index("ix_requests_created", "requests", ["created_at", "id"], schema=S)
    op.create_index("ix_requests_client", "requests", ["client_id", "created_at", "id"], schema=S)
    op.create_index("ix_requests_status", "requests", ["status", "created_at", "id"], schema=S)
    op.create_index("ix_requests_type", "requests", ["type", "created_at", "id"], schema=S)

    op.create_table(
        "tasks",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("request_id", sa.Uuid, sa.ForeignKey(f"{S}.requests.id"), nullable=True),
        sa.Column("client_id", sa.Uuid, sa.ForeignKey(f"{S}.clients.id"), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("assignee", sa.Text, nullable=True),
        sa.Column("assigned_by", sa.Text, nullable=True),
        sa.Column("credential_categories", JSONB, nullable=False),
        sa.Column("vendor_account_ids", JSONB, nullable=False),
        sa.Column("credential_ids", JSONB, nullable=False),
        sa.Column("dedupe_key", sa.Text, nullable=True),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "status IN ('new', 'awaiting_approval', 'ready', 'in_progress', 'on_hold', 'done', 'rejected', 'cancelled')",
            name="ck_tasks_status",
        ),
        schema=S,
    )
    op.create_index("ix_tasks_created", "tasks", ["created_at", "id"], schema=S)
    op.create_index("ix_tasks_client", "tasks", ["client_id", "created_at", "id"], schema=S)
    op.create_index("ix_tasks_status", "tasks", ["status", "created_at", "id"], schema=S)
    op.create_index("ix_tasks_type", "tasks", ["type", "created_at", "id"], schema=S)
    op.create_index("ix_tasks_assignee", "tasks", ["assignee", "status", "created_at", "id"], schema=S)
    op.create_index("ix_tasks_request", "tasks", ["request_id"], schema=S)
    op.create_index(
        "ux_tasks_dedupe_key",
        "tasks",
        ["dedupe_key"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("dedupe_key IS NOT NULL"),
    )

    op.create_table(
        "task_steps",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("task_id", sa.Uuid, sa.ForeignKey(f"{S}.tasks.id"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("reported_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("status IN ('succeeded', 'failed')", name="ck_task_steps_status"),
        schema=S,
    )
    op.create_index("ix_task_steps_task", "task_steps", ["task_id", "created_at", "id"], schema=S)

    op.create_table(
        "task_notes",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("task_id", sa.Uuid, sa.ForeignKey(f"{S}.tasks.id"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        schema=S,
    )
    op.create_index("ix_task_notes_task", "task_notes", ["task_id", "created_at", "id"], schema=S)

    op.create_table(
        "approvals",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("task_id", sa.Uuid, sa.ForeignKey(f"{S}.tasks.id"), nullable=False),
        sa.Column("client_id", sa.Uuid, sa.ForeignKey(f"{S}.clients.id"), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("recipient_name", sa.Text, nullable=False),
        sa.Column("recipient_contact_email", sa.Text, nullable=True),
        sa.Column("party_category", sa.Text, nullable=False),
        sa.Column("legal_reference", sa.Text, nullable=True),
        sa.Column("information_categories", JSONB, nullable=False),
        sa.Column("credential_ids", JSONB, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("decided_by", sa.Text, nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("status IN ('pending', 'approved', 'rejected', 'expired')", name="ck_approvals_status"),
        schema=S,
    )
    op.create_index("ix_approvals_created", "approvals", ["created_at", "id"], schema=S)
    op.create_index("ix_approvals_client", "approvals", ["client_id", "created_at", "id"], schema=S)
    op.create_index("ix_approvals_task", "approvals", ["task_id", "created_at", "id"], schema=S)
    op.create_index("ix_approvals_status", "approvals", ["status", "expires_at"], schema=S)

    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("body_hash", sa.Text, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response_body", sa.Text, nullable=False),
        sa.Column("request_id", sa.Uuid, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("scope", "key"),
        schema=S,
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"], schema=S)


def downgrade() -> None:
    for table in ("idempotency_keys", "approvals", "task_notes", "task_steps", "tasks", "requests", "clients"):
        op.drop_table(table, schema=S)

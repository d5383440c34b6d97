"""Registry upkeep: archived vendor accounts, and the audit trail of registry writes.

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "vendor_sync"
OBJECT_TYPES = "('vendor','vendor_account','contact')"


def upgrade() -> None:
    # Archived accounts stay readable; sync skips them (it filters on archived_at IS NULL).
    op.add_column("vendor_accounts", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True), schema=S)

    # One row per registry write, in the write's own transaction. `before`/`after` hold the object's
    # registry fields (never a secret: the registry holds none, only credential ids).
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("object_type", sa.Text, nullable=False),
        sa.Column("object_id", sa.Uuid, nullable=False),
        sa.Column("client_id", sa.Uuid),
        sa.Column("request_id", sa.Text),
        sa.Column("before", JSONB),
        sa.Column("after", JSONB),
        sa.CheckConstraint(f"object_type IN {OBJECT_TYPES}", name="ck_audit_events_object_type"),
        sa.CheckConstraint("before IS NOT NULL OR after IS NOT NULL", name="ck_audit_events_state"),
        schema=S,
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at", "id"], schema=S)
    op.create_index("ix_audit_events_object", "audit_events", ["object_type", "object_id", "at"], schema=S)
    op.create_index("ix_audit_events_client", "audit_events", ["client_id", "at", "id"], schema=S)


def downgrade() -> None:
    op.drop_table("audit_events", schema=S)
    op.drop_column("vendor_accounts", "archived_at", schema=S)

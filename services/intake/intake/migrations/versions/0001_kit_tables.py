"""Kit tables: outbox, inbox, job attempts, dead letters, relay state.

Revision ID: 0001
Revises:
"""

from alembic import op

from mspkit.migrations import create_kit_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_kit_tables(op.get_bind(), "intake")


def downgrade() -> None:
    for table in ("relay_state", "dead_letters", "job_attempts", "inbox", "outbox"):
        op.drop_table(table, schema="intake")

"""PSA: each task's ticket, what intake last pushed to it and last saw there; callbacks already applied.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

S = "intake"


def upgrade() -> None:
    op.create_table(
        "task_psa_links",
        sa.Column("task_id", sa.Uuid, sa.ForeignKey(f"{S}.tasks.id"), primary_key=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("ticket_id", sa.Text, nullable=False),
        sa.Column("ticket_url", sa.Text, nullable=False),
        sa.Column("pushed_status", sa.Text, nullable=True),
        sa.Column("pushed_owner", sa.Text, nullable=True),
        sa.Column("seen_status", sa.Text, nullable=True),
        sa.Column("seen_owner", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("provider", "ticket_id", name="ux_task_psa_links_ticket"),
        schema=S,
    )
    # One row per callback body applied (sha256 of the raw body): a replayed callback changes nothing.
    op.create_table(
        "psa_callbacks",
        sa.Column("fingerprint", sa.Text, primary_key=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("ticket_id", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index("ix_psa_callbacks_received", "psa_callbacks", ["received_at"], schema=S)


def downgrade() -> None:
    op.drop_index("ix_psa_callbacks_received", table_name="psa_callbacks", schema=S)
    op.drop_table("psa_callbacks", schema=S)
    op.drop_table("task_psa_links", schema=S)

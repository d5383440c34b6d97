"""PSA out: each client's company id per PSA, and the release notes already added to tickets.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

S = "intake"


def upgrade() -> None:
    # Every client so far is unmapped: it gets no ticket (and one internal note per task) until mapped.
    op.add_column(
        "clients",
        sa.Column("psa_company_ids", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        schema=S,
    )
    # One row per broker event noted on a ticket: a redelivered release.* adds no second note.
    op.create_table(
        "psa_notes_sent",
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("task_id", sa.Uuid, sa.ForeignKey(f"{S}.tasks.id"), nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("ticket_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("psa_notes_sent", schema=S)
    op.drop_column("clients", "psa_company_ids", schema=S)

"""Provisioning: an approval names the vendor it discloses to; a worker's step takes later reports.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

S = "intake"


def upgrade() -> None:
    # NULL for every approval so far: which vendor an approval was for is not known in intake's own
    # tables (the registry is vendor_sync's), and a guess would let the broker ledger a disclosure
    # against the wrong vendor. An approval without a vendor discloses nothing to any vendor.
    op.add_column("approvals", sa.Column("recipient_vendor_id", sa.Uuid, nullable=True), schema=S)
    # Every step so far was one report: its own key is the only one.
    op.add_column(
        "task_steps",
        sa.Column("later_report_keys", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        schema=S,
    )


def downgrade() -> None:
    op.drop_column("task_steps", "later_report_keys", schema=S)
    op.drop_column("approvals", "recipient_vendor_id", schema=S)

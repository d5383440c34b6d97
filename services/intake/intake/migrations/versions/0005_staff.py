"""The staff directory: who works here, which clients each technician may see, and their PSA member ids.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

S = "intake"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("sub", sa.Text, primary_key=True),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("client_ids", JSONB, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("role IN ('technician', 'admin')", name="ck_staff_role"),
        sa.UniqueConstraint("id", name="ux_staff_id"),
        schema=S,
    )
    op.create_index("ix_staff_created", "staff", ["created_at", "id"], schema=S)
    op.create_table(
        "staff_psa_members",
        sa.Column("sub", sa.Text, sa.ForeignKey(f"{S}.staff.sub", ondelete="CASCADE"), primary_key=True),
        sa.Column("provider", sa.Text, primary_key=True),
        sa.Column("member_id", sa.Text, nullable=False),
        sa.UniqueConstraint("provider", "member_id", name="ux_staff_psa_members_member"),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("staff_psa_members", schema=S)
    op.drop_index("ix_staff_created", "staff", schema=S)
    op.drop_table("staff", schema=S)

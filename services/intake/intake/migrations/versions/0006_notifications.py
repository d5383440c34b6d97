"""Notifications: per-client alert addresses and status-mail switch, the requester's verified address,
and the sent-mail table that keeps each message to at most one per (event, recipient).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

S = "intake"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # NULL: access alerts go to the approvers (the contract's default).
    op.add_column("clients", sa.Column("alert_emails", JSONB, nullable=True), schema=S)
    op.add_column("clients", sa.Column("status_mail", sa.Boolean, nullable=False, server_default=sa.true()), schema=S)
    # Set only when the requester's token said `email_verified: true`; NULL means no status mail.
    op.add_column("requests", sa.Column("requester_email", sa.Text, nullable=True), schema=S)
    op.create_table(
        "notifications_sent",
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("recipient", sa.Text, primary_key=True),
        sa.Column("template", sa.Text, nullable=False),
        # `sending` is claimed before SMTP and stays if the worker dies mid-send (at most once);
        # a transient failure deletes the claim so the retry can take it again.
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('sending', 'sent', 'refused', 'failed')", name="ck_notifications_sent_status"),
        schema=S,
    )
    op.create_index("ix_notifications_sent_created", "notifications_sent", ["created_at"], schema=S)


def downgrade() -> None:
    op.drop_index("ix_notifications_sent_created", "notifications_sent", schema=S)
    op.drop_table("notifications_sent", schema=S)
    op.drop_column("requests", "requester_email", schema=S)
    op.drop_column("clients", "status_mail", schema=S)
    op.drop_column("clients", "alert_emails", schema=S)

"""The outbox wakes its relay: a NOTIFY at the COMMIT of every transaction that wrote an event.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

from mspkit.migrations import create_outbox_notify, drop_outbox_notify

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Without it the relay still finds every row on its 0.1 s idle poll; with it, at once.
    create_outbox_notify(op.get_bind(), "secrets_broker")


def downgrade() -> None:
    drop_outbox_notify(op.get_bind(), "secrets_broker")

"""The outbox wakes its relay: a NOTIFY at the COMMIT of every transaction that wrote an event.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

from mspkit.migrations import create_outbox_notify, drop_outbox_notify

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Without it the relay still finds every row on its 0.1 s idle poll; with it, at once.
    create_outbox_notify(op.get_bind(), "intake")


def downgrade() -> None:
    drop_outbox_notify(op.get_bind(), "intake")

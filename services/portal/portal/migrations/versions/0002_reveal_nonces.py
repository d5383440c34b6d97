"""Single-use reveal nonces (the technician's task page).

Revision ID: reveal_nonces_1
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "reveal_nonces_1"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reveal_nonces",
        # SHA-256 of the nonce in the page: a database reader cannot replay a row.
        sa.Column("nonce_hash", sa.String(64), primary_key=True),
        # The session's id hash (itself a SHA-256 of the cookie): a nonce works only in the session it was issued to.
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("task_id", sa.Uuid, nullable=False),
        sa.Column("credential_id", sa.Uuid, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        schema="portal",
    )
    op.create_index("reveal_nonces_created_at", "reveal_nonces", ["created_at"], schema="portal")


def downgrade() -> None:
    op.drop_table("reveal_nonces", schema="portal")

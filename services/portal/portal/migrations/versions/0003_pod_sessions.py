"""The ticket pod's sign-in codes and sessions.

Revision ID: pod_sessions_1
Revises: reveal_nonces_1
"""

import sqlalchemy as sa
from alembic import op

revision = "pod_sessions_1"
down_revision = "reveal_nonces_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pod_codes",
        # SHA-256 of the 60-second code the sign-in pop-up hands the pod: a database reader cannot use it.
        sa.Column("code_hash", sa.String(64), primary_key=True),
        # The person's portal session: signing out (or its expiry) drops the code with it.
        sa.Column(
            "session_hash",
            sa.String(64),
            sa.ForeignKey("portal.sessions.id_hash", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("sub", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        schema="portal",
    )
    op.create_index("pod_codes_expires_at", "pod_codes", ["expires_at"], schema="portal")
    op.create_table(
        "pod_sessions",
        # SHA-256 of the `__Host-msp_pod` cookie.
        sa.Column("id_hash", sa.String(64), primary_key=True),
        # The tokens stay in the portal session this names (encrypted there); it ends the pod session with it.
        sa.Column(
            "session_hash",
            sa.String(64),
            sa.ForeignKey("portal.sessions.id_hash", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        # Fernet-encrypted: the pod session's own CSRF secret.
        sa.Column("csrf_enc", sa.LargeBinary, nullable=False),
        schema="portal",
    )
    op.create_index("pod_sessions_session_hash", "pod_sessions", ["session_hash"], schema="portal")


def downgrade() -> None:
    op.drop_table("pod_sessions", schema="portal")
    op.drop_table("pod_codes", schema="portal")

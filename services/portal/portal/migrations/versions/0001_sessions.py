"""Sessions and sign-ins in progress.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        # SHA-256 of the cookie's opaque id: a database reader cannot use a row as a cookie.
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("sub", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("client_id", sa.String(36), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("auth_time", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        # Fernet-encrypted: the CSRF secret, and the refresh token with the per-API access tokens.
        sa.Column("csrf_enc", sa.LargeBinary, nullable=False),
        sa.Column("tokens_enc", sa.LargeBinary, nullable=False),
        schema="portal",
    )
    op.create_index("sessions_expires_at", "sessions", ["expires_at"], schema="portal")
    op.create_table(
        "logins",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        # SHA-256 of the `__Host-msp_login` cookie: the callback must come back in the browser that started it.
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("secrets_enc", sa.LargeBinary, nullable=False),
        sa.Column("return_to", sa.String(2000), nullable=False),
        sa.Column("max_age", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        schema="portal",
    )
    op.create_index("logins_expires_at", "logins", ["expires_at"], schema="portal")


def downgrade() -> None:
    op.drop_table("logins", schema="portal")
    op.drop_table("sessions", schema="portal")

"""The portal's tables (SQLAlchemy Core; the migration in `portal/migrations` creates them)."""

from __future__ import annotations

import sqlalchemy as sa

from portal.db import SCHEMA

metadata = sa.MetaData(schema=SCHEMA)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("sub", sa.String(200), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("client_id", sa.String(36)),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("auth_time", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("csrf_enc", sa.LargeBinary, nullable=False),
    sa.Column("tokens_enc", sa.LargeBinary, nullable=False),
)

logins = sa.Table(
    "logins",
    metadata,
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("browser_hash", sa.String(64), nullable=False),
    sa.Column("secrets_enc", sa.LargeBinary, nullable=False),
    sa.Column("return_to", sa.String(2000), nullable=False),
    sa.Column("max_age", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

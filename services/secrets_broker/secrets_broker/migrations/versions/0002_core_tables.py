"""Core tables: credentials (metadata only), releases, pending revocations, tombstones, audit, ledger.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "secrets_broker"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Metadata only: the secret and the notes live in Vault, never here.
    op.create_table(
        "credentials",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("client_id", sa.Uuid, nullable=False),
        sa.Column("vendor_account_id", sa.Uuid, nullable=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("vault_version", sa.Integer, nullable=True),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("kind IN ('password', 'api_key')", name="ck_credentials_kind"),
        sa.CheckConstraint("owner IN ('client', 'msp')", name="ck_credentials_owner"),
        sa.CheckConstraint("status IN ('pending', 'active')", name="ck_credentials_status"),
        schema=S,
    )
    op.create_index("ix_credentials_created", "credentials", ["created_at", "id"], schema=S)
    op.create_index("ix_credentials_client", "credentials", ["client_id", "created_at", "id"], schema=S)
    op.create_index("ix_credentials_vendor_account", "credentials", ["vendor_account_id"], schema=S)
    op.create_index(
        "ix_credentials_pending", "credentials", ["created_at"], schema=S, postgresql_where=sa.text("status = 'pending'")
    )

    # A release never stores the token: only its HMAC fingerprint, and the accessor, which can
    # revoke the token but not unwrap it.
    op.create_table(
        "releases",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("task_id", sa.Uuid, nullable=False),
        sa.Column("credential_id", sa.Uuid, sa.ForeignKey(f"{S}.credentials.id"), nullable=False),
        sa.Column("client_id", sa.Uuid, nullable=False),
        sa.Column("technician", sa.Text, nullable=False),
        sa.Column("recipient_type", sa.Text, nullable=False),
        sa.Column("approval_id", sa.Uuid, nullable=True),
        sa.Column("token_fingerprint", sa.Text, nullable=False, unique=True),
        sa.Column("wrap_accessor", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("recipient_type IN ('technician', 'third_party')", name="ck_releases_recipient_type"),
        sa.CheckConstraint("status IN ('issued', 'unwrapped', 'revoked', 'expired')", name="ck_releases_status"),
        sa.CheckConstraint(
            "(recipient_type = 'third_party') = (approval_id IS NOT NULL)", name="ck_releases_approval"
        ),
        schema=S,
    )
    op.create_index("ix_releases_task", "releases", ["task_id", "created_at"], schema=S)
    op.create_index("ix_releases_client", "releases", ["client_id", "status"], schema=S)
    op.create_index("ix_releases_credential", "releases", ["credential_id"], schema=S)

    # Accessors of minted tokens that must be revoked (the API has no revoke right; the broker
    # worker does it). Events carry only the row id.
    op.create_table(
        "pending_revocations",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("accessor", sa.Text, nullable=False),
        sa.Column("release_id", sa.Uuid, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("done_at", TS, nullable=True),
        schema=S,
    )
    op.create_index(
        "ix_pending_revocations_open", "pending_revocations", ["created_at"], schema=S,
        postgresql_where=sa.text("done_at IS NULL"),
    )

    op.create_table(
        "tombstones",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("task_id", sa.Uuid, nullable=True),
        sa.Column("client_id", sa.Uuid, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("task_id IS NOT NULL OR client_id IS NOT NULL", name="ck_tombstones_target"),
        schema=S,
    )
    op.create_index("ix_tombstones_task", "tombstones", ["task_id"], schema=S)
    op.create_index("ix_tombstones_client", "tombstones", ["client_id"], schema=S)

    op.create_table(
        "audit_entries",
        sa.Column("index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("client_id", sa.Uuid, nullable=True),
        sa.Column("task_id", sa.Uuid, nullable=True),
        sa.Column("credential_id", sa.Uuid, nullable=True),
        sa.Column("release_id", sa.Uuid, nullable=True),
        sa.Column("rule", sa.Text, nullable=True),
        sa.Column("canonical", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        schema=S,
    )
    op.create_index("ix_audit_entries_client", "audit_entries", ["client_id", "index"], schema=S)
    op.create_index("ix_audit_entries_task", "audit_entries", ["task_id", "index"], schema=S)
    op.create_index("ix_audit_entries_credential", "audit_entries", ["credential_id", "index"], schema=S)

    # One row: what was last anchored in Vault, so anchoring runs at most once a second (or every
    # N entries) across processes.
    op.create_table(
        "audit_anchor",
        sa.Column("id", sa.SmallInteger, primary_key=True),
        sa.Column("anchored_index", sa.BigInteger, nullable=True),
        sa.Column("anchored_hash", sa.Text, nullable=True),
        sa.Column("anchored_at", TS, nullable=True),
        sa.CheckConstraint("id = 1", name="ck_audit_anchor_single"),
        schema=S,
    )
    op.execute("INSERT INTO secrets_broker.audit_anchor (id) VALUES (1)")

    op.create_table(
        "disclosures",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("client_id", sa.Uuid, nullable=False),
        sa.Column("task_id", sa.Uuid, nullable=False),
        sa.Column("release_id", sa.Uuid, sa.ForeignKey(f"{S}.releases.id"), nullable=False, unique=True),
        sa.Column("credential_id", sa.Uuid, nullable=False),
        sa.Column("party_category", sa.Text, nullable=False),
        sa.Column("recipient_name", sa.Text, nullable=False),
        sa.Column("recipient_contact_email", sa.Text, nullable=True),
        sa.Column("approval_id", sa.Uuid, nullable=True),
        sa.Column("legal_reference", sa.Text, nullable=True),
        sa.Column("information_categories", JSONB, nullable=False),
        sa.Column("disclosed_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint(
            "party_category IN ('provider_for_msp', 'provider_for_client', 'client_legal_representative', "
            "'msp_professional_adviser', 'government_legal_process')",
            name="ck_disclosures_party_category",
        ),
        sa.CheckConstraint("approval_id IS NOT NULL OR legal_reference IS NOT NULL", name="ck_disclosures_basis"),
        schema=S,
    )
    op.create_index("ix_disclosures_created", "disclosures", ["created_at", "id"], schema=S)
    op.create_index("ix_disclosures_client", "disclosures", ["client_id", "created_at", "id"], schema=S)


def downgrade() -> None:
    for table in (
        "disclosures", "audit_anchor", "audit_entries", "tombstones", "pending_revocations", "releases", "credentials"
    ):
        op.drop_table(table, schema=S)

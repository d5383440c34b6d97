"""Registry: vendors, vendor accounts, contacts, domains, sync runs, drift events.

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "vendor_sync"
KINDS = "('isp','registrar','dns_host','hosting','cloud','email','spam_filter','software')"


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=None if nullable else sa.func.now())


def upgrade() -> None:
    op.create_table(
        "vendors",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("website", sa.Text),
        sa.Column("support_email", sa.Text),
        sa.Column("support_phone", sa.Text),
        sa.Column("adapter", sa.Text),
        _ts("created_at"),
        sa.CheckConstraint(f"kind IN {KINDS}", name="ck_vendors_kind"),
        schema=S,
    )
    # Vendor names are unique whatever their case ("Cloudflare" and "cloudflare" are one vendor).
    op.execute(f"CREATE UNIQUE INDEX ux_vendors_name_lower ON {S}.vendors (lower(name))")
    op.create_index("ix_vendors_created", "vendors", ["created_at", "id"], schema=S)
    op.create_index("ix_vendors_kind", "vendors", ["kind", "created_at", "id"], schema=S)

    op.create_table(
        "vendor_accounts",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("client_id", sa.Uuid, nullable=False),
        sa.Column("vendor_id", sa.Uuid, sa.ForeignKey(f"{S}.vendors.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("account_number", sa.Text, nullable=False),
        sa.Column("portal_url", sa.Text),
        sa.Column("api_key_credential_id", sa.Uuid),
        _ts("created_at"),
        sa.UniqueConstraint("client_id", "vendor_id", "account_number", name="uq_vendor_accounts_number"),
        schema=S,
    )
    op.create_index("ix_vendor_accounts_client", "vendor_accounts", ["client_id", "created_at", "id"], schema=S)
    op.create_index("ix_vendor_accounts_vendor", "vendor_accounts", ["vendor_id"], schema=S)

    op.create_table(
        "contacts",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("vendor_account_id", sa.Uuid, sa.ForeignKey(f"{S}.vendor_accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("email", sa.Text),
        sa.Column("phone", sa.Text),
        _ts("created_at"),
        schema=S,
    )
    op.create_index("ix_contacts_account", "contacts", ["vendor_account_id", "created_at", "id"], schema=S)

    op.create_table(
        "domains",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("client_id", sa.Uuid, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("unicode_name", sa.Text, nullable=False),
        sa.Column("registrar", sa.Text),
        sa.Column("registrar_iana_id", sa.Integer),
        _ts("created_at", nullable=True),
        _ts("expires_at", nullable=True),
        _ts("last_changed_at", nullable=True),
        sa.Column("statuses", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("nameservers", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("dnssec", sa.Boolean),
        sa.Column("abuse_contact", JSONB),
        _ts("last_checked_at", nullable=True),
        _ts("next_check_at"),
        _ts("row_created_at"),
        sa.UniqueConstraint("client_id", "name", name="uq_domains_client_name"),
        sa.CheckConstraint("name = lower(name) AND length(name) <= 253", name="ck_domains_a_label"),
        schema=S,
    )
    op.create_index("ix_domains_client", "domains", ["client_id", "row_created_at", "id"], schema=S)
    # The scheduler's scan: due domains in due order.
    op.create_index("ix_domains_next_check", "domains", ["next_check_at", "id"], schema=S)

    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("domain_id", sa.Uuid, sa.ForeignKey(f"{S}.domains.id", ondelete="CASCADE"), nullable=False),
        sa.Column("client_id", sa.Uuid, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="queued"),
        sa.Column("trigger", sa.Text, nullable=False, server_default="manual"),
        sa.Column("created", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("deleted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        _ts("not_before", nullable=True),
        _ts("enqueued_at", nullable=True),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("status IN ('queued','running','succeeded','failed')", name="ck_sync_runs_status"),
        sa.CheckConstraint("trigger IN ('manual','schedule')", name="ck_sync_runs_trigger"),
        schema=S,
    )
    # At most one run in flight per domain: a second refresh request gets the run already in flight.
    op.create_index(
        "ux_sync_runs_in_flight", "sync_runs", ["domain_id"], unique=True, schema=S,
        postgresql_where=sa.text("status IN ('queued','running')"),
    )
    op.create_index("ix_sync_runs_domain", "sync_runs", ["domain_id", "created_at", "id"], schema=S)
    # The tick's sweeps over queued and running runs (small: only in-flight rows are indexed).
    op.create_index(
        "ix_sync_runs_sweep", "sync_runs", ["status", "not_before", "enqueued_at"], schema=S,
        postgresql_where=sa.text("status IN ('queued','running')"),
    )

    op.create_table(
        "drift_events",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("client_id", sa.Uuid, nullable=False),
        sa.Column("domain_id", sa.Uuid, sa.ForeignKey(f"{S}.domains.id", ondelete="CASCADE")),
        sa.Column("vendor_account_id", sa.Uuid, sa.ForeignKey(f"{S}.vendor_accounts.id", ondelete="CASCADE")),
        sa.Column("sync_run_id", sa.Uuid, sa.ForeignKey(f"{S}.sync_runs.id", ondelete="SET NULL")),
        sa.Column("kind", sa.Text, nullable=False, server_default="change"),
        sa.Column("field", sa.Text, nullable=False),
        sa.Column("old", JSONB),
        sa.Column("new", JSONB),
        _ts("detected_at"),
        sa.CheckConstraint("kind IN ('change','expiry_warning')", name="ck_drift_events_kind"),
        sa.CheckConstraint("domain_id IS NOT NULL OR vendor_account_id IS NOT NULL", name="ck_drift_events_subject"),
        schema=S,
    )
    op.create_index("ix_drift_events_detected", "drift_events", ["detected_at", "id"], schema=S)
    op.create_index("ix_drift_events_client", "drift_events", ["client_id", "detected_at", "id"], schema=S)
    op.create_index("ix_drift_events_domain", "drift_events", ["domain_id", "detected_at", "id"], schema=S)
    op.create_index("ix_drift_events_account", "drift_events", ["vendor_account_id", "detected_at", "id"], schema=S)
    op.create_index("ix_drift_events_kind", "drift_events", ["kind", "detected_at", "id"], schema=S)
    op.create_index("ix_drift_events_run", "drift_events", ["sync_run_id"], schema=S)


def downgrade() -> None:
    for table in ("drift_events", "sync_runs", "domains", "contacts", "vendor_accounts", "vendors"):
        op.drop_table(table, schema=S)

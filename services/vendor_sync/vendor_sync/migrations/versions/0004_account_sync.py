"""Account syncs: runs of a vendor account with a plan, zones and domains linked to the accounts that
hold them, DNS records, MX, and drift events that become intake tasks.

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "vendor_sync"


def upgrade() -> None:
    # A sync run is either a domain's refresh (RDAP) or a vendor account's sync (its API).
    op.alter_column("sync_runs", "domain_id", nullable=True, schema=S)
    op.add_column(
        "sync_runs",
        sa.Column("vendor_account_id", sa.Uuid, sa.ForeignKey(f"{S}.vendor_accounts.id", ondelete="CASCADE")),
        schema=S,
    )
    op.add_column("sync_runs", sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()), schema=S)
    op.add_column("sync_runs", sa.Column("force", sa.Boolean, nullable=False, server_default=sa.false()), schema=S)
    op.add_column("sync_runs", sa.Column("plan", JSONB), schema=S)
    op.add_column("sync_runs", sa.Column("changes", JSONB), schema=S)
    op.create_check_constraint(
        "ck_sync_runs_subject", "sync_runs", "(domain_id IS NULL) <> (vendor_account_id IS NULL)", schema=S
    )
    # At most one account sync in flight per account, as for domains.
    op.create_index(
        "ux_sync_runs_account_in_flight", "sync_runs", ["vendor_account_id"], unique=True, schema=S,
        postgresql_where=sa.text("status IN ('queued','running') AND vendor_account_id IS NOT NULL"),
    )
    op.create_index("ix_sync_runs_account", "sync_runs", ["vendor_account_id", "created_at", "id"], schema=S)

    # When the scheduler next syncs the account; the kind's interval is a setting.
    op.add_column(
        "vendor_accounts",
        sa.Column("next_sync_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    op.create_index("ix_vendor_accounts_next_sync", "vendor_accounts", ["next_sync_at", "id"], schema=S)

    for column in ("dns_host_account_id", "registrar_account_id"):
        op.add_column(
            "domains",
            sa.Column(column, sa.Uuid, sa.ForeignKey(f"{S}.vendor_accounts.id", ondelete="SET NULL")),
            schema=S,
        )
        op.create_index(f"ix_domains_{column}", "domains", [column], schema=S)
    # The vendor's own id of the zone or domain (Cloudflare's zone id), and what the registrar says.
    op.add_column("domains", sa.Column("dns_zone_id", sa.Text), schema=S)
    op.add_column("domains", sa.Column("mx", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")), schema=S)
    op.add_column("domains", sa.Column("transfer_lock", sa.Boolean), schema=S)

    op.create_table(
        "dns_records",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("domain_id", sa.Uuid, sa.ForeignKey(f"{S}.domains.id", ondelete="CASCADE"), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("ttl", sa.Integer, nullable=False),
        sa.Column("priority", sa.Integer),
        sa.Column("vendor_record_id", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    # A record's identity is its type, name and content (a name may hold several A or MX records).
    op.create_index(
        "ux_dns_records_identity", "dns_records", ["domain_id", "type", "name", "content"], unique=True, schema=S
    )

    # A drift event is raised to intake as a task once; the task's id is kept when intake answers.
    op.add_column("drift_events", sa.Column("task_id", sa.Uuid), schema=S)
    op.add_column("drift_events", sa.Column("task_attempts", sa.Integer, nullable=False, server_default="0"), schema=S)
    op.create_index(
        "ix_drift_events_untasked", "drift_events", ["detected_at", "id"], schema=S,
        postgresql_where=sa.text("task_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_drift_events_untasked", "drift_events", schema=S)
    op.drop_column("drift_events", "task_attempts", schema=S)
    op.drop_column("drift_events", "task_id", schema=S)
    op.drop_table("dns_records", schema=S)
    for column in ("transfer_lock", "mx", "dns_zone_id"):
        op.drop_column("domains", column, schema=S)
    for column in ("registrar_account_id", "dns_host_account_id"):
        op.drop_index(f"ix_domains_{column}", "domains", schema=S)
        op.drop_column("domains", column, schema=S)
    op.drop_index("ix_vendor_accounts_next_sync", "vendor_accounts", schema=S)
    op.drop_column("vendor_accounts", "next_sync_at", schema=S)
    op.drop_index("ix_sync_runs_account", "sync_runs", schema=S)
    op.drop_index("ux_sync_runs_account_in_flight", "sync_runs", schema=S)
    op.drop_constraint("ck_sync_runs_subject", "sync_runs", schema=S)
    op.execute("DELETE FROM vendor_sync.sync_runs WHERE domain_id IS NULL")
    for column in ("changes", "plan", "force", "dry_run", "vendor_account_id"):
        op.drop_column("sync_runs", column, schema=S)
    op.alter_column("sync_runs", "domain_id", nullable=False, schema=S)

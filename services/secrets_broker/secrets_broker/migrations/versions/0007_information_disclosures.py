"""Provisioning: information disclosures in the ledger, task-bound service releases and credentials.

The ledger holds information disclosures and credential releases in one shape. A row's `kind` says
which: `credential` (a release to an approval's third party, as before: `release_id` and
`credential_id` set) or `information` (client information vendor_sync sent to a vendor, recorded
through `POST /internal/disclosures`: no release or credential, the recipient `vendor_id` and the
approval always set). `idempotency_key` is unique per caller (`disclosed_by`), so a retried call
finds its first row instead of writing a second.

A credential stored by vendor_sync during provisioning names the task it was created for
(`credentials.task_id`), which intake checks before adding it to that task's scope. A service
release may name its task too: the `releases.task_id` column already allows it (migration 0005).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

S = "secrets_broker"


def upgrade() -> None:
    # Every existing row is a third party's credential release.
    op.add_column(
        "disclosures", sa.Column("kind", sa.Text, nullable=False, server_default=sa.text("'credential'")), schema=S
    )
    op.add_column("disclosures", sa.Column("vendor_id", sa.Uuid, nullable=True), schema=S)
    op.add_column("disclosures", sa.Column("idempotency_key", sa.Text, nullable=True), schema=S)
    op.alter_column("disclosures", "release_id", existing_type=sa.Uuid, nullable=True, schema=S)
    op.alter_column("disclosures", "credential_id", existing_type=sa.Uuid, nullable=True, schema=S)
    op.create_check_constraint("ck_disclosures_kind", "disclosures", "kind IN ('credential', 'information')", schema=S)
    op.create_check_constraint(
        "ck_disclosures_what",
        "disclosures",
        "(kind = 'credential' AND release_id IS NOT NULL AND credential_id IS NOT NULL) OR "
        "(kind = 'information' AND release_id IS NULL AND credential_id IS NULL "
        "AND vendor_id IS NOT NULL AND approval_id IS NOT NULL)",
        schema=S,
    )
    op.create_index(
        "ux_disclosures_idempotency",
        "disclosures",
        ["disclosed_by", "idempotency_key"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )

    op.add_column("credentials", sa.Column("task_id", sa.Uuid, nullable=True), schema=S)
    op.create_index(
        "ix_credentials_task", "credentials", ["task_id"], schema=S, postgresql_where=sa.text("task_id IS NOT NULL")
    )


def downgrade() -> None:
    # Information disclosures cannot be represented before this revision, and ledger rows are kept
    # (the privacy policy's "every record is kept"): refuse rather than delete them.
    bind = op.get_bind()
    count = bind.execute(sa.text(f"SELECT count(*) FROM {S}.disclosures WHERE kind = 'information'")).scalar_one()  # noqa: S608 - only the schema name
    if count:
        raise RuntimeError(f"{count} information disclosures exist; revision 0006 cannot hold them")
    op.drop_index("ix_credentials_task", "credentials", schema=S)
    op.drop_column("credentials", "task_id", schema=S)
    op.drop_index("ux_disclosures_idempotency", "disclosures", schema=S)
    op.drop_constraint("ck_disclosures_what", "disclosures", schema=S)
    op.drop_constraint("ck_disclosures_kind", "disclosures", schema=S)
    op.alter_column("disclosures", "credential_id", existing_type=sa.Uuid, nullable=False, schema=S)
    op.alter_column("disclosures", "release_id", existing_type=sa.Uuid, nullable=False, schema=S)
    for column in ("idempotency_key", "vendor_id", "kind"):
        op.drop_column("disclosures", column, schema=S)

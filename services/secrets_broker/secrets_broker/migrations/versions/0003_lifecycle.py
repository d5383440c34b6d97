"""Lifecycle columns: what a release was decided on, when tombstones took effect, revocation backoff.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "secrets_broker"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # The authorization a release was decided on (intake's `updated_at`) and when the broker sent
    # its last live read (the re-check after minting): tombstones and the race test compare them.
    op.add_column("releases", sa.Column("auth_updated_at", TS, nullable=True), schema=S)
    op.add_column("releases", sa.Column("rechecked_at", TS, nullable=True), schema=S)
    # Why a release left `issued` other than by its recipient: revoked_task, intercepted, ...
    op.add_column("releases", sa.Column("closed_reason", sa.Text, nullable=True), schema=S)
    op.create_index(
        "ix_releases_issued_task", "releases", ["task_id"], schema=S, postgresql_where=sa.text("status = 'issued'")
    )
    op.create_index(
        "ix_releases_issued_client", "releases", ["client_id"], schema=S, postgresql_where=sa.text("status = 'issued'")
    )

    # effective_at: the intake event's occurred_at; a tombstone covers authorization views with an
    # `updated_at` at or before it (NULL: covers every view). assignee: for a reassignment, the
    # technician whose authority ended. lifted_at: a client that became active again.
    op.add_column("tombstones", sa.Column("effective_at", TS, nullable=True), schema=S)
    op.add_column("tombstones", sa.Column("assignee", sa.Text, nullable=True), schema=S)
    op.add_column("tombstones", sa.Column("event_id", sa.Uuid, nullable=True), schema=S)
    op.add_column("tombstones", sa.Column("lifted_at", TS, nullable=True), schema=S)

    op.add_column(
        "pending_revocations",
        sa.Column("next_attempt_at", TS, nullable=False, server_default=sa.text("now()")),
        schema=S,
    )


def downgrade() -> None:
    op.drop_column("pending_revocations", "next_attempt_at", schema=S)
    for column in ("lifted_at", "event_id", "assignee", "effective_at"):
        op.drop_column("tombstones", column, schema=S)
    op.drop_index("ix_releases_issued_client", "releases", schema=S)
    op.drop_index("ix_releases_issued_task", "releases", schema=S)
    for column in ("closed_reason", "rechecked_at", "auth_updated_at"):
        op.drop_column("releases", column, schema=S)

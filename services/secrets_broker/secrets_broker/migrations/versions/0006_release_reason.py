"""Releases keep their reason; indexes for the newest-first release list.

`GET /v1/releases/{id}` and `GET /v1/releases` show why a release was made. Until now the reason
lived only in the release's audit entry (`release.granted`, or `service_release.granted` with its
`job_id`); it is now a column, and existing rows are filled from those entries, so the list never
parses the audit chain. A release without such an entry (none is expected) keeps NULL.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

S = "secrets_broker"


# Each release's reason from its granting entry: the technician's `reason`, or a service's `job_id`
# (as the service writes new rows). Only rows without one are touched, so it can run again.
BACKFILL = f"""
    UPDATE {S}.releases AS r
    SET reason = CASE a.action
        WHEN 'service_release.granted' THEN 'job ' || (a.canonical::jsonb -> 'details' ->> 'job_id')
        ELSE a.canonical::jsonb -> 'details' ->> 'reason'
    END
    FROM {S}.audit_entries AS a
    WHERE a.release_id = r.id AND r.reason IS NULL
      AND a.action IN ('release.granted', 'service_release.granted')
"""  # noqa: S608 - only the schema name is interpolated


def upgrade() -> None:
    op.add_column("releases", sa.Column("reason", sa.Text, nullable=True), schema=S)
    op.execute(BACKFILL)
    # The list reads newest first, all clients (admin) or one client (filter, or a client_admin's own).
    op.create_index("ix_releases_created", "releases", ["created_at", "id"], schema=S)
    op.create_index("ix_releases_client_created", "releases", ["client_id", "created_at", "id"], schema=S)


def downgrade() -> None:
    op.drop_index("ix_releases_client_created", "releases", schema=S)
    op.drop_index("ix_releases_created", "releases", schema=S)
    # The reason stays in the audit chain, where it was before this revision.
    op.drop_column("releases", "reason", schema=S)

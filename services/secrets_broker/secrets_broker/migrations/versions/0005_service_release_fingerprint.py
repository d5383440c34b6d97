"""Service releases are release rows: their fingerprint and accessor are recorded, so they are revocable.

A release to vendor_sync (`POST /internal/service-releases`) is a `releases` row with
`recipient_type = 'service'`, the service's `sub` in `technician`, and no task unless the job names
one. The worker's revocation (a client leaving `active`) closes it and revokes its accessor like
any other release. Every other recipient keeps its task.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

S = "secrets_broker"


def upgrade() -> None:
    op.drop_constraint("ck_releases_recipient_type", "releases", schema=S)
    op.create_check_constraint(
        "ck_releases_recipient_type", "releases", "recipient_type IN ('technician', 'third_party', 'service')", schema=S
    )
    op.alter_column("releases", "task_id", existing_type=sa.Uuid, nullable=True, schema=S)
    op.create_check_constraint(
        "ck_releases_task", "releases", "recipient_type = 'service' OR task_id IS NOT NULL", schema=S
    )


def downgrade() -> None:
    # Service releases cannot be represented before this revision, and release records are kept
    # (the privacy policy's "every record is kept"): refuse rather than delete them.
    bind = op.get_bind()
    count = bind.execute(sa.text(f"SELECT count(*) FROM {S}.releases WHERE recipient_type = 'service'")).scalar_one()  # noqa: S608 - only the schema name
    if count:
        raise RuntimeError(f"{count} service releases exist; revision 0004 cannot hold them")
    op.drop_constraint("ck_releases_task", "releases", schema=S)
    op.alter_column("releases", "task_id", existing_type=sa.Uuid, nullable=False, schema=S)
    op.drop_constraint("ck_releases_recipient_type", "releases", schema=S)
    op.create_check_constraint(
        "ck_releases_recipient_type", "releases", "recipient_type IN ('technician', 'third_party')", schema=S
    )

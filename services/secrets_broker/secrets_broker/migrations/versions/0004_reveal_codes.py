"""Reveal codes: a third party's release holds the HMAC of its mailed code and no Vault token.

A release with `approval_id` mints nothing when it is granted: the broker mails the recipient a
single-use reveal code of its own (stored, like a wrapping token, only as an HMAC in
`token_fingerprint`) and wraps and unwraps the secret inside itself when the code is revealed. Such
a release has no accessor to revoke, so `wrap_accessor` becomes nullable for third parties only.

Third-party releases still `issued` from before this revision mailed a live wrapping token: their
accessors are queued for the worker to revoke (its sweep picks them up). Their links keep working
once through `POST /v1/reveal`, which treats the old token as the code it now is.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "secrets_broker"


def upgrade() -> None:
    op.alter_column("releases", "wrap_accessor", existing_type=sa.Text, nullable=True, schema=S)
    op.create_check_constraint(
        "ck_releases_accessor", "releases", "recipient_type = 'third_party' OR wrap_accessor IS NOT NULL", schema=S
    )
    op.execute(
        f"""
        INSERT INTO {S}.pending_revocations (id, accessor, release_id, reason, created_at)
        SELECT gen_random_uuid(), wrap_accessor, id, 'mailed_wrap_token', now()
        FROM {S}.releases
        WHERE recipient_type = 'third_party' AND status = 'issued' AND wrap_accessor IS NOT NULL
          AND expires_at > now()
        """  # noqa: S608 - only the schema name is interpolated
    )


def downgrade() -> None:
    # The code-only releases cannot be opened by the older code: close them before the column
    # becomes NOT NULL again (the empty accessor is never queued: only `issued` rows are revoked).
    op.execute(
        f"UPDATE {S}.releases SET wrap_accessor = '', "  # noqa: S608 - only the schema name
        "status = CASE WHEN status = 'issued' THEN 'expired' ELSE status END WHERE wrap_accessor IS NULL"
    )
    op.drop_constraint("ck_releases_accessor", "releases", schema=S)
    op.alter_column("releases", "wrap_accessor", existing_type=sa.Text, nullable=False, schema=S)

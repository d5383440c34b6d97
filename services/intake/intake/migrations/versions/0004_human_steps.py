"""Steps a person decides: `human` steps start `pending`; worker reports carry an idempotency key.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "intake"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Every step so far was a worker's report of something it had already done: none is human.
    op.add_column("task_steps", sa.Column("human", sa.Boolean, nullable=False, server_default=sa.false()), schema=S)
    # NULL only for the steps reported before the key was required.
    op.add_column("task_steps", sa.Column("idempotency_key", sa.Text, nullable=True), schema=S)
    op.add_column("task_steps", sa.Column("decided_by", sa.Text, nullable=True), schema=S)
    op.add_column("task_steps", sa.Column("updated_at", TS, nullable=True), schema=S)
    # A reported step has not changed since it was reported.
    op.execute("UPDATE intake.task_steps SET updated_at = created_at")
    op.alter_column("task_steps", "updated_at", nullable=False, schema=S)
    op.drop_constraint("ck_task_steps_status", "task_steps", schema=S, type_="check")
    op.create_check_constraint(
        "ck_task_steps_status", "task_steps", "status IN ('pending', 'succeeded', 'failed')", schema=S
    )
    op.create_index(
        "ux_task_steps_idempotency_key",
        "task_steps",
        ["task_id", "idempotency_key"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    # A step still `pending` has no place in the old table: the old check constraint then refuses
    # to come back, and the downgrade stops instead of inventing an outcome for it.
    op.drop_index("ux_task_steps_idempotency_key", "task_steps", schema=S)
    op.drop_constraint("ck_task_steps_status", "task_steps", schema=S, type_="check")
    op.create_check_constraint("ck_task_steps_status", "task_steps", "status IN ('succeeded', 'failed')", schema=S)
    for column in ("updated_at", "decided_by", "idempotency_key", "human"):
        op.drop_column("task_steps", column, schema=S)

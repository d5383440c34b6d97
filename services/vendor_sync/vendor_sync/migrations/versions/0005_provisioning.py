"""Provisioning: runs of a task's provisioning (one in flight per task) and the task's steps.

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

S = "vendor_sync"


def _ts(name: str, *, nullable: bool = True) -> sa.Column:
    if nullable:
        return sa.Column(name, sa.DateTime(timezone=True))
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "provisioning_runs",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("task_id", sa.Uuid, nullable=False),
        sa.Column("client_id", sa.Uuid, nullable=False),
        sa.Column("request_id", sa.Uuid),
        sa.Column("type", sa.Text),
        _ts("ready_at"),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="queued"),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        _ts("claimed_at"),
        sa.Column("task_view", JSONB),
        _ts("not_before"),
        _ts("enqueued_at"),
        _ts("started_at"),
        _ts("finished_at"),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.CheckConstraint(
            "status IN ('waiting', 'queued', 'running', 'succeeded', 'failed', 'skipped')",
            name="ck_provisioning_runs_status",
        ),
        schema=S,
    )
    # At most one run in flight per task: a redelivered or repeated event finds it instead of adding one.
    op.create_index(
        "ux_provisioning_runs_in_flight",
        "provisioning_runs",
        ["task_id"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    # One waiting row per task: its events, in whatever order they come, fill in the same row.
    op.create_index(
        "ux_provisioning_runs_waiting",
        "provisioning_runs",
        ["task_id"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("status = 'waiting'"),
    )
    op.create_index("ix_provisioning_runs_task", "provisioning_runs", ["task_id", "created_at"], schema=S)
    # The sweep republishes in-flight runs whose message is missing or stale.
    op.create_index(
        "ix_provisioning_runs_unsent",
        "provisioning_runs",
        ["enqueued_at"],
        schema=S,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )

    op.create_table(
        "provisioning_steps",
        sa.Column("task_id", sa.Uuid, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("run_id", sa.Uuid, sa.ForeignKey(f"{S}.provisioning_runs.id", ondelete="SET NULL")),
        sa.Column("human", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("vendor", sa.Text),
        sa.Column("detail", JSONB),
        sa.Column("summary", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("outcomes", sa.Integer, nullable=False, server_default="1"),
        _ts("reported_at"),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("task_id", "name", name="pk_provisioning_steps"),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="ck_provisioning_steps_status"),
        schema=S,
    )
    op.create_index("ix_provisioning_steps_run", "provisioning_steps", ["run_id"], schema=S)


def downgrade() -> None:
    op.drop_index("ix_provisioning_steps_run", "provisioning_steps", schema=S)
    op.drop_table("provisioning_steps", schema=S)
    op.drop_index("ix_provisioning_runs_unsent", "provisioning_runs", schema=S)
    op.drop_index("ix_provisioning_runs_task", "provisioning_runs", schema=S)
    op.drop_index("ux_provisioning_runs_waiting", "provisioning_runs", schema=S)
    op.drop_index("ux_provisioning_runs_in_flight", "provisioning_runs", schema=S)
    op.drop_table("provisioning_runs", schema=S)

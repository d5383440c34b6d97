"""Approvals record their origin: made by the request's expansion (they gate the task) or asked on the task.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "intake"


def upgrade() -> None:
    op.add_column("approvals", sa.Column("origin", sa.Text, nullable=True), schema=S)
    # Until now expansion wrote each approval in the transaction that created its task, with the task's
    # own `created_at`; an approval asked on the task (POST /v1/tasks/{id}/approvals) came in a later
    # transaction, with a later time. A task without a request (a system task) had no expansion.
    op.execute(
        """
        UPDATE intake.approvals AS a
        SET origin = CASE
            WHEN t.request_id IS NOT NULL AND a.created_at = t.created_at THEN 'request'
            ELSE 'task'
        END
        FROM intake.tasks AS t
        WHERE t.id = a.task_id
        """
    )
    op.alter_column("approvals", "origin", nullable=False, schema=S)
    op.create_check_constraint("ck_approvals_origin", "approvals", "origin IN ('request', 'task')", schema=S)


def downgrade() -> None:
    op.drop_constraint("ck_approvals_origin", "approvals", schema=S, type_="check")
    op.drop_column("approvals", "origin", schema=S)

"""`GET /v1/credentials?task_id=`: exactly the credentials a task's scope reaches, metadata only.

The scope is read live from intake's authorization view (`IntakeClient.authorization`, as a release
reads it) and each credential is judged by `policy.in_scope`, the function behind the release
decision's `out_of_scope` rule, together with the decision's `client_mismatch` rule (the task's
client only). SQL only narrows the candidates to what the scope names (ids and vendor accounts),
a superset; the rule itself is never restated here.

Who may ask: an admin, and the task's assignee if they may see its client (need-to-know). Anyone
else, a client role included, gets the 404 of a missing task. The assignee sees the list only
while the task is live (in progress, client active), as every technician's credential read is
limited to in-progress tasks; before or after that the page is empty.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session, col

from mspkit.auth import Principal
from mspkit.errors import NotFound
from mspkit.pagination import keyset, page_of
from mspkit.tenancy import sees_client, visible
from secrets_broker.credentials.models import Credential
from secrets_broker.intake_client import IntakeClient
from secrets_broker.release import gate
from secrets_broker.release.policy import in_scope
from secrets_broker.task_auth import TaskAuth


def _missing_task() -> NotFound:
    # The same words intake's 404 becomes in `IntakeClient.authorization`: a refusal and an unknown
    # task must not be told apart.
    return NotFound("task not found")


def readable_task(*, user: Principal, intake: IntakeClient, task_id: uuid.UUID) -> TaskAuth:
    """The task's live authorization view if the caller may list its credentials, else the 404 of a missing task."""
    if user.role == "technician":
        if visible(user).client_ids == frozenset():
            raise _missing_task()  # no active staff row: reads nothing, and intake is not asked
    elif user.role != "admin":
        raise _missing_task()
    task = intake.authorization(task_id)
    if user.role == "admin":
        return task
    # Credentials are read by client (need-to-know), so being the assignee alone is not enough.
    if task.assignee != user.sub or not sees_client(user, task.client_id):
        raise _missing_task()
    return task


def _live(task: TaskAuth) -> bool:
    # As the technician's other credential reads (`service._live_tasks`): work in progress, client active.
    return task.status == "in_progress" and task.client_status == "active"


def list_for_task(
    session: Session,
    *,
    user: Principal,
    intake: IntakeClient,
    task_id: uuid.UUID,
    client_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Credential], str | None]:
    """A page (oldest first) of the active credentials in the task's scope, for an admin or the task's assignee."""
    if client_id is not None:
        visible(user, client_id)  # a client the caller may not see: the 404 of a missing client
    task = readable_task(user=user, intake=intake, task_id=task_id)
    if client_id not in (None, task.client_id):
        return [], None
    if user.role == "technician" and not _live(task):
        return [], None
    named: list[Any] = []
    if task.scope.credential_ids:
        named.append(col(Credential.id).in_(sorted(task.scope.credential_ids)))
    if task.scope.vendor_account_ids:
        named.append(col(Credential.vendor_account_id).in_(sorted(task.scope.vendor_account_ids)))
    if not named:
        return [], None
    stmt = select(Credential).where(
        col(Credential.status) == "active", col(Credential.client_id) == task.client_id, or_(*named)
    )
    # The page is cut after `in_scope` has judged the rows, so the query keeps no limit. The
    # candidates are what one task's scope names, a handful of accounts and ids.
    stmt = keyset(stmt, at=col(Credential.created_at), id_=col(Credential.id), limit=limit, cursor=cursor).limit(None)
    rows = [c for c in session.execute(stmt).scalars() if in_scope(task.scope, gate.credential_meta(c))]
    return page_of(rows[: limit + 1], limit=limit, key=lambda c: (c.created_at, c.id))

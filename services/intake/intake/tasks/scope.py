"""Changing a task's scope by hand (`POST /v1/tasks/{id}/scope`): admin only, every id the task's client's.

Order of one change:

1. The task, as the caller may see it (404 otherwise); anyone but an admin: 403 (nobody widens their
   own access, the assignee least of all); a closed task: 409 `conflict` (a scope change is not a
   move in the workflow, so not `invalid_transition`; `assign` answers a closed task the same way).
2. With no transaction open, the ids to add that the scope does not hold yet are checked at their
   owners: vendor accounts at vendor_sync, credentials at the broker. An id that is not the task's
   client's (or is nobody's): 422 naming the field; a peer that does not answer: 503. Nothing is
   written before both answered.
3. The task row locked, the change applied to the scope it holds now, then one internal note and one
   `task.scope_changed` event carrying the new scope and the task's new `updated_at`, on which the
   broker revokes live releases that fell out of scope. Removing what the scope does not hold is
   nothing to do (a retried removal answers as the first did; narrowing never fails on a peer), and
   a change that changes nothing writes nothing. A value both added and removed is 422.

vendor_sync adds the credentials it stored at the broker while provisioning a task through
`POST /internal/tasks/{id}/scope` (`add_provisioned_credentials`): only adds, only credential ids,
each checked at the broker as the task's client's, stored by `svc:vendor_sync`, and (when the broker
records it) stored for this task; then written as an admin's change is, note and event alike.
"""

from __future__ import annotations

import uuid
from typing import Final

from sqlmodel import Session

from intake.credentials_client import BrokerCredentials, CredentialInfo, get_credentials
from intake.events import emit
from intake.tasks import workflow
from intake.tasks.models import Task
from intake.tasks.provisioning import VENDOR_SYNC
from intake.tasks.schemas import ProvisionedCredentials, ScopeChange, ScopeItems
from intake.tasks.service import add_note, get_task, next_updated_at
from intake.vendors import VendorRegistry, get_registry
from mspkit.auth import Principal
from mspkit.errors import Conflict, Forbidden, NotFound, ValidationFailed

# The scope's parts, in the order the note and the event list them; each is a column of `Task`.
PARTS: Final = ("credential_ids", "vendor_account_ids", "credential_categories")
WORDS: Final = {
    "credential_ids": "credentials",
    "vendor_account_ids": "vendor accounts",
    "credential_categories": "categories",
}

Scope = dict[str, list[str]]


def _held(task: Task) -> Scope:
    return {part: list(getattr(task, part)) for part in PARTS}


def _wanted(items: ScopeItems) -> Scope:
    # Deduplicated, in the order given; ids as the table stores them (canonical lowercase strings).
    return {part: list(dict.fromkeys(str(v) for v in getattr(items, part))) for part in PARTS}


def _refuse(problems: list[tuple[str, str]]) -> None:
    """422 listing every problem found (the first one on top), when there is any."""
    if problems:
        raise ValidationFailed.listing(problems)


def _open_task(session: Session, *, user: Principal, task_id: uuid.UUID, for_update: bool = False) -> Task:
    task = get_task(session, user=user, task_id=task_id, for_update=for_update)
    if user.role != "admin":
        raise Forbidden("only an admin may change a task's scope")
    if not workflow.is_open(task.status):
        raise Conflict("a closed task's scope cannot change", current_status=task.status)
    return task


def _foreign_accounts(client_id: uuid.UUID, ids: list[str], registry: VendorRegistry) -> list[tuple[str, str]]:
    """The vendor accounts to add that are not the client's, asked at vendor_sync."""
    problems: list[tuple[str, str]] = []
    for account_id in ids:
        try:
            registry.account_for_client(uuid.UUID(account_id), client_id, with_vendor=False)
        except NotFound:
            problems.append(("add.vendor_account_ids", f"{account_id} is not a vendor account of the task's client"))
    return problems


def _foreign_credentials(client_id: uuid.UUID, ids: list[str], credentials: BrokerCredentials) -> list[tuple[str, str]]:
    """The credentials to add that are not the client's, asked at the broker."""
    return [
        ("add.credential_ids", f"{credential_id} is not a credential of the task's client")
        for credential_id in ids
        if credentials.client_of(uuid.UUID(credential_id)) != client_id
    ]


def _apply(held: Scope, add: Scope, remove: Scope) -> tuple[Scope, Scope, Scope]:
    """The new scope, and what was really added and removed (removing what it lacks is nothing to do)."""
    added = {part: [v for v in add[part] if v not in held[part]] for part in PARTS}
    removed = {part: [v for v in held[part] if v in remove[part]] for part in PARTS}
    new = {part: [v for v in held[part] if v not in remove[part]] + added[part] for part in PARTS}
    return new, added, removed


def _note(author: str, added: Scope, removed: Scope) -> str:
    said = [
        f"{verb} {WORDS[part]} {', '.join(values)}"
        for verb, change in (("added", added), ("removed", removed))
        for part, values in change.items()
        if values
    ]
    return f"Scope changed by {author}: " + "; ".join(said) + "."


def change_scope(
    session: Session,
    *,
    user: Principal,
    task_id: uuid.UUID,
    change: ScopeChange,
    registry: VendorRegistry | None = None,
    credentials: BrokerCredentials | None = None,
) -> Task:
    """Add to and remove from a task's scope (admin only); see the module docstring for the order."""
    task = _open_task(session, user=user, task_id=task_id)
    add, remove = _wanted(change.add), _wanted(change.remove)
    _refuse(
        [
            (f"remove.{part}", f"{value} is also being added")
            for part in PARTS
            for value in remove[part]
            if value in add[part]
        ]
    )
    held = _held(task)
    # What the scope holds already was checked when it came in: only new ids go to their owners.
    fresh = {part: [v for v in add[part] if v not in held[part]] for part in PARTS}
    client_id = task.client_id
    session.rollback()  # no connection, no lock held while vendor_sync and the broker answer
    problems: list[tuple[str, str]] = []
    # Each peer is asked only about its own objects, and only when there is something to ask.
    if fresh["vendor_account_ids"]:
        problems += _foreign_accounts(client_id, fresh["vendor_account_ids"], registry or get_registry())
    if fresh["credential_ids"]:
        problems += _foreign_credentials(client_id, fresh["credential_ids"], credentials or get_credentials())
    _refuse(problems)

    task = _open_task(session, user=user, task_id=task_id, for_update=True)
    new, added, removed = _apply(_held(task), add, remove)
    _write(session, task=task, author=user.sub, new=new, added=added, removed=removed)
    return task


def _write(session: Session, *, task: Task, author: str, new: Scope, added: Scope, removed: Scope) -> None:
    """Set the task's new scope with one internal note and one `task.scope_changed` event, and commit.

    A change that changes nothing writes nothing (and only releases the row lock).
    """
    if not any(added[part] or removed[part] for part in PARTS):
        session.commit()
        return
    for part in PARTS:
        setattr(task, part, new[part])
    # The task's own `updated_at` travels with the event: the broker revokes releases decided on
    # views at or before it whose credential the new scope no longer holds.
    task.updated_at = next_updated_at(task.updated_at)
    session.add(task)
    add_note(session, task=task, kind="scope", author=author, body=_note(author, added, removed))
    data = {
        "task_id": str(task.id),
        "added": added,
        "removed": removed,
        "scope": new,
        "updated_at": task.updated_at.isoformat(),
    }
    emit(session, "task.scope_changed", client_id=task.client_id, aggregate_id=task.id, data=data)
    session.commit()


# ---- POST /internal/tasks/{id}/scope: the credentials provisioning stored --------------------------

FIELD: Final = "add.credential_ids"


def _not_provisioned_for(
    client_id: uuid.UUID, task_id: uuid.UUID, credential_id: str, info: CredentialInfo | None
) -> str | None:
    """Why vendor_sync may not add this credential to this task's scope, or None when it may.

    The broker's own record decides: the task's client's, stored by vendor_sync, and, when the broker
    records the task a credential was stored for, this task. A credential without that record (the
    broker records it only for what vendor_sync stores while provisioning, and did not always) is
    taken on the first two checks alone: vendor_sync stores credentials for nothing else, and each
    is of the client's own vendor account.
    """
    if info is None or info.client_id != client_id:
        return f"{credential_id} is not a credential of the task's client"
    if info.created_by != VENDOR_SYNC:
        return f"{credential_id} was not stored by vendor_sync"
    if info.task_id is not None and info.task_id != task_id:
        return f"{credential_id} was stored for another task"
    return None


def _open_for_service(session: Session, *, service: Principal, task_id: uuid.UUID, for_update: bool = False) -> Task:
    task = get_task(session, user=service, task_id=task_id, for_update=for_update)
    if not workflow.is_open(task.status):
        raise Conflict("a closed task's scope cannot change", current_status=task.status)
    return task


def add_provisioned_credentials(
    session: Session,
    *,
    service: Principal,
    task_id: uuid.UUID,
    change: ProvisionedCredentials,
    credentials: BrokerCredentials | None = None,
) -> Task:
    """vendor_sync adds the credentials it stored for this task to its scope (only those; only adds).

    As an admin's change: the task (404), open (409); each id not held yet checked at the broker with
    no transaction open (422 `add.credential_ids` listing every refusal, nothing written; 503 when
    the broker does not answer); then the task locked, one note and one `task.scope_changed`.
    """
    task = _open_for_service(session, service=service, task_id=task_id)
    wanted = list(dict.fromkeys(str(c) for c in change.add.credential_ids))
    fresh = [c for c in wanted if c not in task.credential_ids]
    client_id = task.client_id
    session.rollback()  # no connection, no lock held while the broker answers
    if fresh:
        broker = credentials or get_credentials()
        problems: list[tuple[str, str]] = []
        for credential_id in fresh:
            why = _not_provisioned_for(client_id, task_id, credential_id, broker.info(uuid.UUID(credential_id)))
            if why is not None:
                problems.append((FIELD, why))
        _refuse(problems)
    task = _open_for_service(session, service=service, task_id=task_id, for_update=True)
    nothing: Scope = {part: [] for part in PARTS}
    add = {**nothing, "credential_ids": wanted}
    new, added, removed = _apply(_held(task), add, nothing)
    _write(session, task=task, author=service.sub, new=new, added=added, removed=removed)
    return task

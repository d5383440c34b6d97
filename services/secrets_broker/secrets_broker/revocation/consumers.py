"""The worker's consumers of intake's events: which change ends which releases.

Each handler runs inside `mspkit.inbox.apply_once`, so its effect and the inbox row commit together
and a redelivered event changes nothing. A handler returns the ids of the revocations it queued,
which the caller carries out at Vault after the commit.

- `task.status_changed` from `in_progress` to anything else: the task is tombstoned.
- `task.assigned` with a previous assignee other than the new one: the previous assignee's hold
  on the task is tombstoned (the new assignee's releases are untouched).
- `task.scope_changed`: the task's live releases whose credential the new scope (in the event's
  `data.scope`) no longer holds are revoked; no tombstone (see `service.revoke_out_of_scope`).
- `client.status_changed` from `active`: the client is tombstoned; back to `active`: its client
  tombstones are lifted (for service releases; person releases compare views, see `Tombstone`).

A task's tombstone takes effect at the task's own `updated_at` after the change, which intake puts
in the event's `data`: the releases it covers were decided on views carrying that same clock's
`updated_at`, so the two compare exactly. The event's `occurred_at` (when intake wrote the event,
by another reading of its clock) is only the fallback for events written before `data` carried it.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from secrets_broker.revocation.service import (
    TASK_LEFT_IN_PROGRESS,
    TASK_REASSIGNED,
    lift_client,
    revoke_out_of_scope,
    tombstone_client,
    tombstone_task,
)
from secrets_broker.task_auth import Scope

CONSUMER = "secrets_broker.revocation"


class MalformedEvent(ValueError):
    """The envelope lacks what the contract promises; retrying cannot help (dead letter)."""


def _data(envelope: dict[str, Any]) -> dict[str, Any]:
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise MalformedEvent("envelope without data")
    return data


def _uuid(value: Any, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        raise MalformedEvent(f"{name} is not a UUID") from None


def _optional_uuid(value: Any, name: str) -> uuid.UUID | None:
    return None if value is None else _uuid(value, name)


def _timestamp(value: Any, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise MalformedEvent(f"{name} is not RFC 3339") from None
    if parsed.tzinfo is None:
        raise MalformedEvent(f"{name} has no offset")
    return parsed.astimezone(UTC)


def occurred_at(envelope: dict[str, Any]) -> datetime:
    """The event's `occurred_at` as an aware UTC datetime."""
    if envelope.get("occurred_at") is None:
        raise MalformedEvent("occurred_at missing")
    return _timestamp(envelope["occurred_at"], "occurred_at")


def task_changed_at(envelope: dict[str, Any]) -> datetime:
    """The task's `updated_at` after the change (`data.updated_at`); `occurred_at` for older events without it."""
    value = _data(envelope).get("updated_at")
    if value is None:
        return occurred_at(envelope)
    return _timestamp(value, "data.updated_at")


def _end_hold(
    session: Session, envelope: dict[str, Any], task_id: uuid.UUID, *, reason: str, assignee: str | None = None
) -> list[uuid.UUID]:
    return tombstone_task(
        session,
        task_id=task_id,
        client_id=_optional_uuid(envelope.get("client_id"), "client_id"),
        reason=reason,
        effective_at=task_changed_at(envelope),
        event_id=_uuid(envelope.get("event_id"), "event_id"),
        assignee=assignee,
    )


def on_task_status_changed(session: Session, envelope: dict[str, Any]) -> list[uuid.UUID]:
    """A task that left `in_progress` loses every release decided before that change."""
    data = _data(envelope)
    task_id = _uuid(data.get("task_id"), "task_id")
    if data.get("from") != "in_progress" or data.get("to") == "in_progress":
        return []
    return _end_hold(session, envelope, task_id, reason=TASK_LEFT_IN_PROGRESS)


def on_task_assigned(session: Session, envelope: dict[str, Any]) -> list[uuid.UUID]:
    """A reassignment ends the previous assignee's releases of the task."""
    data = _data(envelope)
    task_id = _uuid(data.get("task_id"), "task_id")
    previous, current = data.get("previous_assignee"), data.get("assignee")
    if not previous or previous == current:
        return []
    return _end_hold(session, envelope, task_id, reason=TASK_REASSIGNED, assignee=str(previous))


def _scope(value: Any) -> Scope:
    try:
        # Strict, from JSON text: ids only as UUID strings, categories only from the vocabulary.
        return Scope.model_validate_json(json.dumps(value), strict=True)
    except (ValidationError, TypeError, ValueError):
        raise MalformedEvent("data.scope is not a task scope") from None


def on_task_scope_changed(session: Session, envelope: dict[str, Any]) -> list[uuid.UUID]:
    """A narrowed scope ends the task's releases of credentials it no longer holds."""
    data = _data(envelope)
    if data.get("scope") is None:
        raise MalformedEvent("data.scope missing")
    return revoke_out_of_scope(
        session,
        task_id=_uuid(data.get("task_id"), "task_id"),
        scope=_scope(data["scope"]),
        effective_at=task_changed_at(envelope),
        event_id=_uuid(envelope.get("event_id"), "event_id"),
    )


def on_client_status_changed(session: Session, envelope: dict[str, Any]) -> list[uuid.UUID]:
    """A client leaving `active` loses all its releases; one coming back is lifted for service releases."""
    data = _data(envelope)
    client_id = _uuid(data.get("client_id") or envelope.get("client_id"), "client_id")
    before, after = data.get("from"), data.get("to")
    if before == "active" and after != "active":
        return tombstone_client(
            session,
            client_id=client_id,
            effective_at=occurred_at(envelope),
            event_id=_uuid(envelope.get("event_id"), "event_id"),
        )
    if after == "active" and before != "active":
        lift_client(session, client_id=client_id, effective_at=occurred_at(envelope))
    return []

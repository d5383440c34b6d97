"""The worker's consumers of intake's events: which change ends which releases.

Each handler runs inside `mspkit.inbox.apply_once`, so its effect and the inbox row commit together
and a redelivered event changes nothing. A handler returns the ids of the revocations it queued,
which the caller carries out at Vault after the commit.

- `task.status_changed` from `in_progress` to anything else: the task is tombstoned.
- `task.assigned` with a previous assignee other than the new one: the previous assignee's hold
  on the task is tombstoned (the new assignee's releases are untouched).
- `client.status_changed` from `active`: the client is tombstoned; back to `active`: its client
  tombstones are lifted (for service releases; person releases compare views, see `Tombstone`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from secrets_broker.revocation.service import (
    TASK_LEFT_IN_PROGRESS,
    TASK_REASSIGNED,
    lift_client,
    tombstone_client,
    tombstone_task,
)

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


def occurred_at(envelope: dict[str, Any]) -> datetime:
    """The event's `occurred_at` as an aware UTC datetime (intake writes it after `updated_at`)."""
    try:
        value = datetime.fromisoformat(str(envelope["occurred_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        raise MalformedEvent("occurred_at missing or not RFC 3339") from None
    if value.tzinfo is None:
        raise MalformedEvent("occurred_at has no offset")
    return value.astimezone(UTC)


def _end_hold(
    session: Session, envelope: dict[str, Any], task_id: uuid.UUID, *, reason: str, assignee: str | None = None
) -> list[uuid.UUID]:
    return tombstone_task(
        session,
        task_id=task_id,
        client_id=_optional_uuid(envelope.get("client_id"), "client_id"),
        reason=reason,
        effective_at=occurred_at(envelope),
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

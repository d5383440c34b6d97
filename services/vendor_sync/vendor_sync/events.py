"""Events vendor_sync consumes and emits (none yet).

`approval.decided` is only recorded in the inbox, so that the event is acknowledged exactly once:
provisioning starts from the task instead (`provisioning.trigger`: `task.created` in `ready`, or
`task.status_changed` to `ready`), because a task becomes `ready` only once all its approvals are
given, and one approval alone says nothing about the others.

`staff.changed` drops the technician's cached staff view. It has no inbox row: dropping a cache
entry twice does no harm, and the effect lives in Redis, not in a transaction an inbox could join.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session

from mspkit.inbox import apply_once
from mspkit.logging import get_logger
from mspkit.staff import STAFF_CHANGED
from vendor_sync.db import KIT, get_engine
from vendor_sync.intake_client import get_staff_directory

# vendor_sync publishes no events yet; a relay would route its outbox by this table.
ROUTES: dict[str, list[tuple[str, str]]] = {}
APPROVAL_DECIDED_CONSUMER = "vendor_sync.approval_decided"
log = get_logger("vendor_sync.events")


def _record_only(session: Session, envelope: dict[str, Any]) -> None:
    # Provisioning starts from the task's move to `ready`, not here: the inbox row is the whole effect.
    log.info(
        "approval_decided_recorded",
        event_id=str(envelope.get("event_id")),
        aggregate_id=str(envelope.get("aggregate_id")),
        status=str((envelope.get("data") or {}).get("status")),
    )


def approval_decided(envelope: dict[str, Any]) -> bool:
    """Consume `approval.decided` once (record only); returns False for a duplicate or a malformed envelope."""
    if not isinstance(envelope, dict) or envelope.get("type", "approval.decided") != "approval.decided":
        log.warning("approval_decided_malformed", reason="not an approval.decided envelope")
        return False
    try:
        uuid.UUID(str(envelope.get("event_id")))
    except ValueError:
        log.warning("approval_decided_malformed", reason="event_id is not a UUID")
        return False
    return apply_once(get_engine(), KIT, APPROVAL_DECIDED_CONSUMER, envelope, _record_only)


def staff_changed(envelope: dict[str, Any]) -> bool:
    """Drop the cached staff view `staff.changed` names; False (logged, dropped) for a malformed envelope.

    A Redis error propagates, so the task retries it: until the view is dropped it may be served stale.
    """
    if not isinstance(envelope, dict) or envelope.get("type", STAFF_CHANGED) != STAFF_CHANGED:
        log.warning("staff_changed_malformed", reason="not a staff.changed envelope")
        return False
    data = envelope.get("data")
    sub = data.get("sub") if isinstance(data, dict) else None
    if not isinstance(sub, str) or not sub:
        log.warning("staff_changed_malformed", reason="data.sub is not a non-empty string")
        return False
    get_staff_directory().forget(sub)
    log.info("staff_view_dropped", event_id=str(envelope.get("event_id")))
    return True

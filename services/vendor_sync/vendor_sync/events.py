"""Events vendor_sync consumes (through its inbox) and emits (none yet).

`approval.decided` will drive provisioning at vendors in a later issue. Until then the consumer only
records the event in the inbox, so that the event is acknowledged exactly once and nothing is lost:
provisioning can later be replayed from intake's approvals, not from this table.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session

from mspkit.inbox import apply_once
from mspkit.logging import get_logger
from vendor_sync.db import KIT, get_engine

# vendor_sync publishes no events yet; a relay would route its outbox by this table.
ROUTES: dict[str, list[tuple[str, str]]] = {}
APPROVAL_DECIDED_CONSUMER = "vendor_sync.approval_decided"
log = get_logger("vendor_sync.events")


def _record_only(session: Session, envelope: dict[str, Any]) -> None:
    # Provisioning is a later issue: the inbox row written by apply_once is the whole effect for now.
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

"""Event envelopes written to the outbox inside the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from mspkit.ids import new_id
from mspkit.requestid import ENVELOPE_KEY, current_request_id
from mspkit.tables import KitTables


def make_envelope(
    *, type: str, client_id: uuid.UUID | None, aggregate_id: uuid.UUID | None, data: dict[str, Any]
) -> dict[str, Any]:
    """The contract's envelope: ids and statuses only, never secrets or personal data.

    One key beyond the contract's six: the id of the HTTP request that caused the event (None
    outside one), so the consumer's log lines carry it (`mspkit.requestid`).
    """
    return {
        "event_id": str(new_id()),
        "type": type,
        "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "client_id": str(client_id) if client_id else None,
        "aggregate_id": str(aggregate_id) if aggregate_id else None,
        "data": data,
        ENVELOPE_KEY: current_request_id(),
    }


def write_event(
    session: Session,
    tables: KitTables,
    *,
    type: str,
    client_id: uuid.UUID | None,
    aggregate_id: uuid.UUID | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    """Add an event to the outbox in the session's transaction; the relay publishes it after commit."""
    envelope = make_envelope(type=type, client_id=client_id, aggregate_id=aggregate_id, data=data)
    session.execute(
        tables.outbox.insert().values(event_id=uuid.UUID(envelope["event_id"]), type=type, envelope=envelope)
    )
    return envelope

"""Expiry warnings: one `expiry_warning` drift event per domain and expiry date, once it is within the window.

Shared by the RDAP refresh and the registrar account syncs, so a date both of them read is warned once.
The caller holds the domain row locked (`FOR UPDATE`), as every writer of a domain's state does: that
serialises the look-then-insert below between concurrent writers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert

from vendor_sync.domains.models import DriftEvent
from vendor_sync.settings import Settings

DRIFT = DriftEvent.__table__


def expiry_stamp(expires_at: datetime) -> str:
    """The RFC 3339 UTC form an expiry is stored in (the event's `new`); its first 10 characters are the date."""
    return expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def record_expiry_warning(
    conn: Connection,
    *,
    domain: Mapping[str, Any],
    expires_at: datetime | None,
    run_id: uuid.UUID | None,
    now: datetime,
    settings: Settings,
    vendor_account_id: uuid.UUID | None = None,
) -> bool:
    """Insert the domain's `expiry_warning` for this expiry date if it is due and not yet recorded; True if inserted.

    `domain` is the locked domain row (`id`, `client_id`). Dates are compared in UTC, so two sources
    that give the same day at different times of day (a registry and a registrar) make one warning.
    """
    if expires_at is None or expires_at > now + timedelta(days=settings.expiry_warning_days):
        return False
    stamp = expiry_stamp(expires_at)
    warned = conn.execute(
        select(DRIFT.c.new).where(DRIFT.c.domain_id == domain["id"], DRIFT.c.kind == "expiry_warning")
    ).scalars()
    if any(isinstance(seen, str) and seen[:10] == stamp[:10] for seen in warned):
        return False
    conn.execute(
        insert(DRIFT).values(
            id=uuid.uuid4(),
            client_id=domain["client_id"],
            domain_id=domain["id"],
            vendor_account_id=vendor_account_id,
            sync_run_id=run_id,
            kind="expiry_warning",
            field="expires_at",
            old=None,
            new=stamp,
            detected_at=now,
        )
    )
    return True

"""Shared response field types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Times are rendered in UTC with a `Z`, whatever the database session's time zone.
UtcDatetime = Annotated[datetime, PlainSerializer(_rfc3339, return_type=str, when_used="json")]

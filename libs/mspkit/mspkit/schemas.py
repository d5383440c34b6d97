"""Base models and field types every service's API shares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Times are always rendered in UTC with a `Z`, whatever the database session's time zone.
UtcDatetime = Annotated[datetime, PlainSerializer(_rfc3339, return_type=str, when_used="json")]


class Input(BaseModel):
    """Base of every request body: unknown fields (status, assignee, client_id, ...) are refused."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    """Base of every response body."""

    model_config = ConfigDict(from_attributes=True)


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)

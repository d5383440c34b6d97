"""Base models and field types every service's API shares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer, StringConstraints

from mspkit.patterns import described


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Times are always rendered in UTC with a `Z`, whatever the database session's time zone.
UtcDatetime = Annotated[datetime, PlainSerializer(_rfc3339, return_type=str, when_used="json")]

# A practical address shape (no quoted local parts, no IP literals), checked by the schema alone, so
# every service and every client generated from the OpenAPI agree on what an address is.
Email = Annotated[
    str,
    StringConstraints(
        min_length=3,
        max_length=254,
        pattern=described(
            r"^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
            r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)+$",
            "must be an e-mail address such as name@example.com",
        ),
    ),
]
PHONE = described(
    r"^\+?[0-9][0-9 ()./\-]{1,38}$", "must be a phone number: digits, an optional leading '+', spaces and ( ) . / -"
)
Phone = Annotated[str, StringConstraints(min_length=3, max_length=40, pattern=PHONE)]


class Input(BaseModel):
    """Base of every request body: unknown fields (status, assignee, client_id, ...) are refused."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    """Base of every response body."""

    model_config = ConfigDict(from_attributes=True)


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)

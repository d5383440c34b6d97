"""Shared field types: every string refuses NUL, every number is strict, every list is bounded.

The constraints live in the types (and so in the OpenAPI schema), never in hidden validators, so a
client generated from the schema and the server agree on what is valid.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, Strict, StringConstraints

from mspkit import patterns
from mspkit.ids import new_id  # noqa: F401 - re-exported: intake's row ids are the kit's time-ordered ids
from mspkit.patterns import described
from mspkit.schemas import Email, Input, Output, Phone, UtcDatetime, utcnow  # noqa: F401 - re-exported for the service

# PostgreSQL text cannot hold NUL, and no field has a use for it: refused in every string.
NO_NUL = patterns.NO_NUL

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NO_NUL)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=4000, pattern=NO_NUL)]
Hostname = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=253,
        pattern=described(
            r"^(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$",
            "must be a host name such as example.com (letters, digits and '-', labels separated by '.')",
        ),
    ),
]
SLUG = described(
    r"^[a-z0-9][a-z0-9_\-]{0,62}$",
    "may contain only lowercase letters, digits, '_' and '-', and starts with a letter or digit",
)
Slug = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=SLUG)]


def _integral(value: Any) -> Any:
    # JSON has one number type: 3.0 is an integer to JSON Schema, while "3" and true are not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Integers as JSON Schema means them (3 and 3.0, never "3", 3.5 or true): `Annotated[int, Strict(),
# Field(bounds), JSON_INTEGER]`. The bounds sit on the int, inside the validator, so the schema shows them.
JSON_INTEGER = BeforeValidator(_integral)
Cents = Annotated[int, Strict(), Field(ge=0, le=10**13), JSON_INTEGER]


def dump(model: BaseModel) -> dict[str, Any]:
    """A model as JSON-ready data."""
    return model.model_dump(mode="json")

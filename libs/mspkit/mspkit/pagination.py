"""Keyset cursors and the `{items, next_cursor}` page shape."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from mspkit.errors import ValidationFailed

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=200, description="Page size, 1..200")]
Cursor = Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_\-=]*$", description="Opaque cursor")]


class Page(BaseModel, Generic[T]):
    """A page of a list."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    """Opaque cursor for keyset pagination on (created_at, id)."""
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Parse a cursor, or 422 naming `cursor`."""
    try:
        created, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(created), uuid.UUID(row_id)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise ValidationFailed("cursor: malformed", field="cursor") from exc

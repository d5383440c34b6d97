"""Keyset pagination on (created_at, id) for any table with those columns.

The cursor is `<microseconds since the epoch>-<id as 32 hex digits>`: every string its pattern
admits decodes, so a cursor that passes the schema never fails later.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Query
from sqlalchemy import Select, tuple_

T = TypeVar("T")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR_PATTERN = r"^[0-9]{1,16}-[0-9a-f]{32}$"

Cursor = Annotated[
    str | None, Query(max_length=49, pattern=CURSOR_PATTERN, description="Opaque cursor: a page's next_cursor")
]


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    """The cursor just after this row."""
    delta = created_at - EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{micros}-{row_id.hex}"


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) a cursor points after (the pattern has already been checked)."""
    micros, hex_id = cursor.split("-", 1)
    return EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=hex_id)


def page_query(query: Select[Any], model: Any, *, limit: int, cursor: str | None) -> Select[Any]:
    """Order by (created_at, id), start after the cursor, and fetch one extra row to detect a next page."""
    if cursor:
        created_at, row_id = decode_cursor(cursor)
        query = query.where(tuple_(model.created_at, model.id) > tuple_(created_at, row_id))
    return query.order_by(model.created_at, model.id).limit(limit + 1)


def split_page(rows: Sequence[T], limit: int) -> tuple[list[T], str | None]:
    """The page's rows and the cursor of the next page (None on the last page)."""
    items = list(rows[:limit])
    if len(rows) > limit:
        last: Any = items[-1]
        return items, encode_cursor(last.created_at, last.id)
    return items, None

"""The kit's keyset pages against real PostgreSQL: every row once, in order, ties on the time included."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Column, DateTime, MetaData, Table, Uuid, select

from mspkit.pagination import keyset, page_of

metadata = MetaData()
rows_table = Table(
    "kit_pages",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    prefixes=["TEMPORARY"],
)


def _walk(connection: Any, *, descending: bool, limit: int) -> list[uuid.UUID]:
    seen: list[uuid.UUID] = []
    cursor: str | None = None
    for _ in range(100):
        stmt = keyset(
            select(rows_table),
            at=rows_table.c.created_at,
            id_=rows_table.c.id,
            limit=limit,
            cursor=cursor,
            descending=descending,
        )
        items, cursor = page_of(connection.execute(stmt).all(), limit=limit, key=lambda r: (r.created_at, r.id))
        seen.extend(r.id for r in items)
        if cursor is None:
            return seen
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("limit", [1, 3, 7])
def test_pages_cover_every_row_once_in_order(admin_engine: Any, descending: bool, limit: int) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    # Four rows share each time, so the id is what orders them and the cursor must carry it.
    rows = [{"id": uuid.uuid4(), "created_at": base + timedelta(seconds=i // 4)} for i in range(22)]
    with admin_engine.connect() as connection:
        metadata.create_all(connection)
        connection.execute(rows_table.insert(), rows)
        expected = [r["id"] for r in sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=descending)]
        assert _walk(connection, descending=descending, limit=limit) == expected
        connection.rollback()

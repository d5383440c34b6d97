"""vendor_sync's engine, session dependency and kit tables (schema `vendor_sync`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated

from fastapi import Depends
from sqlalchemy import Column, DateTime, Engine, func
from sqlmodel import Session, SQLModel

from mspkit.db import make_engine
from mspkit.tables import kit_tables
from vendor_sync.settings import get_settings

SCHEMA = "vendor_sync"
KIT = kit_tables(SQLModel.metadata, SCHEMA)


@lru_cache
def get_engine() -> Engine:
    """The process's engine (one pool per process; reset after a Celery fork)."""
    settings = get_settings()
    return make_engine(settings.database_url, pool_size=settings.db_pool_size, application_name="vendor_sync")


def get_session() -> Iterator[Session]:
    """Request-scoped session; the use case in `service.py` commits, anything unhandled rolls back."""
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def utcnow() -> datetime:
    """Aware UTC now."""
    return datetime.now(UTC)


def timestamp_column(*, nullable: bool = False) -> Column[datetime]:
    """A timestamptz column; NOT NULL ones default to now() in the database too."""
    return Column(DateTime(timezone=True), nullable=nullable, server_default=None if nullable else func.now())

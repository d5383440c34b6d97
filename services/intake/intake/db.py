"""intake's engine, session dependency and kit tables (schema `intake`)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Annotated

from fastapi import Depends
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel

from intake.settings import get_settings
from mspkit.db import make_engine
from mspkit.tables import kit_tables

SCHEMA = "intake"
KIT = kit_tables(SQLModel.metadata, SCHEMA)


@lru_cache
def get_engine() -> Engine:
    """The process's engine (one pool per process)."""
    settings = get_settings()
    return make_engine(settings.database_url, pool_size=settings.db_pool_size, application_name="intake")


def get_session() -> Iterator[Session]:
    """Request-scoped session; the route commits, anything unhandled rolls back."""
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

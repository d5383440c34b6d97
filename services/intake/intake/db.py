"""intake's engine and kit tables (schema `intake`); the request-scoped session is in `intake.deps`."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine
from sqlmodel import SQLModel

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

"""secrets_broker's engine and kit tables (schema `secrets_broker`); the request session is in `deps.py`."""

from __future__ import annotations

from functools import lru_cache
from typing import cast

from sqlalchemy import Engine
from sqlmodel import Session, SQLModel

from mspkit.db import make_engine
from mspkit.tables import kit_tables
from secrets_broker.settings import get_settings

SCHEMA = "secrets_broker"
KIT = kit_tables(SQLModel.metadata, SCHEMA)


@lru_cache
def get_engine() -> Engine:
    """The process's engine (one pool per process)."""
    settings = get_settings()
    return make_engine(settings.database_url, pool_size=settings.db_pool_size, application_name="secrets_broker")


def engine_of(session: Session) -> Engine:
    """The engine behind a session, for work that needs its own transaction after the session's."""
    bind = session.get_bind()
    return cast(Engine, getattr(bind, "engine", bind))

"""secrets_broker's engine, session dependency and kit tables (schema `secrets_broker`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Annotated

from fastapi import Depends
from fastapi.concurrency import run_in_threadpool
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


async def get_session() -> AsyncIterator[Session]:
    """Request-scoped session; the service commits, anything unhandled rolls back.

    `async` so FastAPI does not hand its entry and exit to the threadpool on every request: making a
    `Session` does no I/O (it connects on first use, in the route's thread), and after the route
    committed the connection is already back in the pool. Only a session still holding a connection
    (an error before COMMIT) is closed in the threadpool, since its rollback is a round trip.
    """
    session = Session(get_engine(), expire_on_commit=False)
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]

"""portal's engine (schema `portal`: sessions and sign-ins in progress; no domain data)."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine

from mspkit.db import make_engine
from portal.settings import get_settings

SCHEMA = "portal"


@lru_cache
def get_engine() -> Engine:
    """The process's engine (one pool per process)."""
    settings = get_settings()
    return make_engine(settings.database_url, pool_size=settings.db_pool_size, application_name="portal")

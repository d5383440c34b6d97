"""Every service engine carries statement and lock timeouts, so nothing waits on the database forever."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from mspkit.db import LOCK_TIMEOUT_MS, STATEMENT_TIMEOUT_MS, make_engine


def test_default_timeouts_are_set_on_every_connection(stack_env):
    engine = make_engine(stack_env["INTAKE_DATABASE_URL"], pool_size=1)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == f"{STATEMENT_TIMEOUT_MS // 1000}s"
            assert conn.execute(text("SHOW lock_timeout")).scalar() == f"{LOCK_TIMEOUT_MS // 1000}s"
    finally:
        engine.dispose()


def test_a_statement_past_its_timeout_is_cancelled(stack_env):
    engine = make_engine(stack_env["INTAKE_DATABASE_URL"], pool_size=1, statement_timeout_ms=50)
    try:
        with engine.connect() as conn, pytest.raises(OperationalError, match="statement timeout"):
            conn.execute(text("SELECT pg_sleep(5)"))
    finally:
        engine.dispose()


def test_a_lock_wait_past_its_timeout_is_cancelled(stack_env):
    url = stack_env["INTAKE_DATABASE_URL"]
    holder, waiter = make_engine(url, pool_size=1), make_engine(url, pool_size=1, lock_timeout_ms=50)
    try:
        with holder.connect() as held:
            held.execute(text("SELECT pg_advisory_lock(4242)"))
            with waiter.connect() as conn, pytest.raises(OperationalError, match="lock timeout"):
                conn.execute(text("SELECT pg_advisory_lock(4242)"))
            held.execute(text("SELECT pg_advisory_unlock(4242)"))
    finally:
        holder.dispose()
        waiter.dispose()

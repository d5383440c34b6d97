"""intake test fixtures: an in-process app on the real PostgreSQL, one rolled-back transaction per test.

`api` runs each test inside an outer transaction on one connection (the app's commits become
savepoints), so nothing a test writes survives it. `live_api` commits for real, for tests that need
several connections at once (concurrency); those isolate themselves with fresh client ids.
Factories are plain functions in `intake_factories.py`. Nothing here imports intake at module level:
this conftest loads before the root one's `pytest_configure` has put the stack's settings in the env.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text
from sqlmodel import Session

# --import-mode=importlib puts no test dir on sys.path; the test modules import intake_factories.
sys.path.insert(0, str(Path(__file__).parent))

Headers = dict[str, str]


@pytest.fixture
def conn() -> Iterator[Connection]:
    """One connection in an outer transaction, rolled back after the test."""
    from intake.db import get_engine

    connection = get_engine().connect()
    outer = connection.begin()
    try:
        yield connection
    finally:
        outer.rollback()
        connection.close()


@pytest.fixture(scope="session")
def usual_staff(seed_staff: Callable[[str], None]) -> None:
    """The suite's usual technicians (tech-1, tech-2) have staff rows, whichever test minted their token first."""
    for sub in ("tech-1", "tech-2"):
        seed_staff(sub)


@pytest.fixture
def api(conn: Connection, usual_staff: None) -> Iterator[TestClient]:
    """The app with every request's session joined to the test's transaction (its commits become savepoints)."""
    from intake.deps import get_session
    from intake.main import app

    def _session() -> Iterator[Session]:
        with Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False) as session:
            yield session

    app.dependency_overrides[get_session] = _session
    try:
        with TestClient(app) as client:
            yield client
    finally:
        app.dependency_overrides.pop(get_session, None)


@pytest.fixture
def live_api(usual_staff: None) -> Iterator[TestClient]:
    """The app exactly as deployed: each request commits on its own connection."""
    from intake.main import app

    with TestClient(app) as client:
        yield client


@pytest.fixture
def sql(conn: Connection) -> Callable[..., list[Any]]:
    """Run SQL inside the test's transaction (sees what the app wrote)."""

    def _sql(statement: str, **params: Any) -> list[Any]:
        result = conn.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []

    return _sql


@pytest.fixture(scope="session")
def auth(auth_for: Callable[[str | None], Callable[..., Headers]]) -> Callable[..., Headers]:
    """As the root `auth`, with service tokens meant for intake (one token per target service)."""
    return auth_for("intake")


@pytest.fixture(scope="session")
def admin_h(auth: Callable[..., Headers]) -> Headers:
    """An MSP admin."""
    return auth("admin", "admin-1")


@pytest.fixture(scope="session")
def tech_h(auth: Callable[..., Headers]) -> Headers:
    """A technician."""
    return auth("technician", "tech-1")


@pytest.fixture(scope="session")
def tech2_h(auth: Callable[..., Headers]) -> Headers:
    """Another technician."""
    return auth("technician", "tech-2")


@pytest.fixture(scope="session")
def broker_h(auth: Callable[..., Headers]) -> Headers:
    """The secrets_broker service."""
    return auth("service", "svc:secrets_broker")


@pytest.fixture(scope="session")
def vs_h(auth: Callable[..., Headers]) -> Headers:
    """The vendor_sync service."""
    return auth("service", "svc:vendor_sync")


@pytest.fixture
def scratch_url(admin_engine: Any) -> Iterator[str]:
    """A fresh, empty database on the test server for a migration test, dropped afterwards."""
    import uuid

    name = f"mig_{uuid.uuid4().hex[:12]}"
    with admin_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_engine.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
def scratch_alembic(scratch_url: str) -> Any:
    """intake's alembic config pointed at `scratch_url` (upgrade and downgrade it revision by revision)."""
    import intake.migrate
    from mspkit.migrations import alembic_config

    return alembic_config(Path(intake.migrate.__file__).parent / "migrations", scratch_url, "intake")

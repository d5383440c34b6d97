"""Database engine and session helpers (sync SQLAlchemy/SQLModel over psycopg 3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session

STATEMENT_TIMEOUT_MS = 10_000
LOCK_TIMEOUT_MS = 5_000


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    application_name: str = "msp",
    statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
    lock_timeout_ms: int = LOCK_TIMEOUT_MS,
) -> Engine:
    """An engine with pre-ping and connect, statement and lock timeouts, so a dead or stuck database fails fast.

    The timeouts are session settings sent at connect time (libpq `options`): a request never waits
    on a lock or a runaway statement longer than them, whatever the code path.
    """
    options = f"-c statement_timeout={statement_timeout_ms} -c lock_timeout={lock_timeout_ms}"
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=5,
        connect_args={"connect_timeout": 3, "application_name": application_name, "options": options},
    )


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def ping(engine: Engine) -> None:
    """Raise unless the database answers a trivial query."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def advisory_xact_lock(session: Session, namespace: str, key: str) -> None:
    """Take a transaction-scoped advisory lock on (namespace, key); released at commit/rollback."""
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
        {"k": f"{namespace}:{key}"},
    )

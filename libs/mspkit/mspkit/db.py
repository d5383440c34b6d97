"""Database engine and session helpers (sync SQLAlchemy/SQLModel over psycopg 3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session


def make_engine(url: str, *, pool_size: int = 10, application_name: str = "msp") -> Engine:
    """An engine with pre-ping and short connect/statement timeouts, so a dead database fails fast."""
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=5,
        connect_args={"connect_timeout": 3, "application_name": application_name},
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

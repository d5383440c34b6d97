"""Attempt counting in the database and dead letters: Redis has no delivery counter."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session

from mspkit.tables import KitTables


def count_attempt(engine: Engine, tables: KitTables, job_key: str) -> int:
    """Record one more attempt of `job_key` (committed at once) and return the total."""
    table = tables.job_attempts
    with Session(engine) as session, session.begin():
        row = session.execute(
            insert(table)
            .values(job_key=job_key, attempts=1)
            .on_conflict_do_update(
                index_elements=[table.c.job_key],
                set_={"attempts": table.c.attempts + 1, "updated_at": func.now()},
            )
            .returning(table.c.attempts)
        ).one()
    return int(row[0])


def record_failure(engine: Engine, tables: KitTables, job_key: str, error: str) -> None:
    """Keep the last error of a job (a class name or code, never a message that may hold data)."""
    with Session(engine) as session, session.begin():
        session.execute(
            tables.job_attempts.update().where(tables.job_attempts.c.job_key == job_key).values(last_error=error[:500])
        )


def dead_letter(
    engine: Engine, tables: KitTables, *, job_key: str, task_name: str, args: Any, attempts: int, error: str
) -> None:
    """Park a poison job: it is not retried again, and an operator can see why."""
    with Session(engine) as session, session.begin():
        session.execute(
            tables.dead_letters.insert().values(
                job_key=job_key, task_name=task_name, args=args, attempts=attempts, error=error[:500]
            )
        )

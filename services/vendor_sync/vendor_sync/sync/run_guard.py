"""What makes a job run exactly once with at-least-once delivery: a session lock per run, attempts
counted in the database, and one dead letter when a job has used them all.

Shared by every vendor_sync job that works on a run row (domain refreshes, account syncs, provisioning).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError

from vendor_sync.db import KIT


def _lock_key(run_id: uuid.UUID) -> Any:
    return func.hashtextextended(f"vendor_sync:sync_run:{run_id}", 0)


def try_lock(conn: Connection, run_id: uuid.UUID) -> bool:
    """Take the run's session-level advisory lock; False when another delivery holds it.

    PostgreSQL drops it with the session if the worker dies, so a redelivered message can take over.
    """
    return bool(conn.execute(select(func.pg_try_advisory_lock(_lock_key(run_id)))).scalar())


def unlock(conn: Connection, run_id: uuid.UUID) -> None:
    """Release the run's lock after the final commit (earlier, a duplicate could read an unfinished run)."""
    try:
        if conn.in_transaction():
            conn.rollback()
        conn.execute(select(func.pg_advisory_unlock(_lock_key(run_id))))
        conn.commit()
    except SQLAlchemyError:
        # A connection whose lock state is unknown must not go back to the pool.
        conn.invalidate()


def count_attempt(conn: Connection, job_key: str) -> int:
    """Count one more attempt of the job in the kit's attempts table (in the claiming transaction)."""
    table = KIT.job_attempts
    return int(
        conn.execute(
            insert(table)
            .values(job_key=job_key, attempts=1)
            .on_conflict_do_update(
                index_elements=[table.c.job_key], set_={"attempts": table.c.attempts + 1, "updated_at": func.now()}
            )
            .returning(table.c.attempts)
        ).scalar_one()
    )


def give_back_attempt(conn: Connection, job_key: str) -> None:
    """Uncount an attempt that never reached the vendor (open circuit, our own rate limit)."""
    table = KIT.job_attempts
    conn.execute(table.update().where(table.c.job_key == job_key).values(attempts=table.c.attempts - 1))


def dead_letter(conn: Connection, *, job_key: str, task: str, run_id: uuid.UUID, attempts: int, error: str) -> None:
    """Record the job's dead letter in the run's own transaction (the kit's helper commits on its own)."""
    conn.execute(
        KIT.dead_letters.insert().values(
            job_key=job_key, task_name=task, args=[str(run_id)], attempts=attempts, error=error[:500]
        )
    )

"""A provisioning run's row: queued by the consumer, claimed by a delivery, finished, retried or dead-lettered.

As the sync jobs do (sync/account_sync.py): the run row is the durable record of a message (published
only after the transaction that made it commits), attempts are counted in the claiming transaction, and
a run that used them all is dead-lettered once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
from kombu.exceptions import KombuError
from sqlalchemy import Connection, Engine, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError

from mspkit.logging import get_logger
from mspkit.queue import MAX_COUNTDOWN_S
from vendor_sync.celery_app import app as celery_app
from vendor_sync.db import utcnow
from vendor_sync.provisioning.models import (
    IN_FLIGHT,
    IN_FLIGHT_PREDICATE,
    TERMINAL,
    WAITING_PREDICATE,
    ProvisioningRun,
)
from vendor_sync.settings import Settings
from vendor_sync.sync import run_guard
from vendor_sync.sync.refresh import Outcome, retry_delay

TASK = "vendor_sync.provisioning.run"
QUEUE = "vendor_sync"
RUNS = ProvisioningRun.__table__
EARLY_SLACK = timedelta(seconds=0.5)
log = get_logger("vendor_sync.provisioning")


@dataclass(frozen=True)
class Claim:
    """A delivery's hold on a run: what the job needs to know of it."""

    run_id: uuid.UUID
    task_id: uuid.UUID
    client_id: uuid.UUID
    request_id: uuid.UUID | None
    attempts: int
    claimed: bool
    task_view: dict[str, Any]
    # Delivered again after its last attempt (the worker died each time): report and stop, do nothing.
    give_up: bool = False


def job_key(run_id: uuid.UUID) -> str:
    """The attempts-table key of a provisioning run."""
    return f"{TASK}:{run_id}"


def queue(
    conn: Connection,
    *,
    task_id: uuid.UUID,
    client_id: uuid.UUID,
    request_id: uuid.UUID | None,
    trigger: str,
) -> uuid.UUID | None:
    """Queue a run for the task (its waiting row, or a new one); None when one is in flight already."""
    now = utcnow()
    values = {"status": "queued", "trigger": trigger, "enqueued_at": now, "updated_at": now}
    waiting = conn.execute(
        update(RUNS)
        .where(RUNS.c.task_id == task_id, RUNS.c.status == "waiting")
        .values(**values, **({"request_id": request_id} if request_id else {}))
        .returning(RUNS.c.id)
    ).scalar()
    if waiting is not None:
        return uuid.UUID(str(waiting))
    created = conn.execute(
        insert(RUNS)
        .values(id=uuid.uuid4(), task_id=task_id, client_id=client_id, request_id=request_id, created_at=now, **values)
        .on_conflict_do_nothing(index_elements=[RUNS.c.task_id], index_where=IN_FLIGHT_PREDICATE)
        .returning(RUNS.c.id)
    ).scalar()
    return uuid.UUID(str(created)) if created is not None else None


def _wait(conn: Connection, *, task_id: uuid.UUID, client_id: uuid.UUID, trigger: str, **known: Any) -> Any:
    """Upsert the task's `waiting` row with what this event knows (its request id, or that it is ready)."""
    now = utcnow()
    statement = insert(RUNS).values(
        id=uuid.uuid4(),
        task_id=task_id,
        client_id=client_id,
        trigger=trigger,
        status="waiting",
        created_at=now,
        updated_at=now,
        **known,
    )
    return conn.execute(
        statement.on_conflict_do_update(
            index_elements=[RUNS.c.task_id],
            index_where=WAITING_PREDICATE,
            set_={k: func.coalesce(getattr(RUNS.c, k), getattr(statement.excluded, k)) for k in known}
            | {"updated_at": now},
        ).returning(RUNS.c.id, RUNS.c.request_id, RUNS.c.ready_at)
    ).first()


def _start(conn: Connection, run_id: uuid.UUID, trigger: str) -> uuid.UUID | None:
    """Queue a waiting run that now has both its request id and a ready task."""
    now = utcnow()
    started = conn.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id, RUNS.c.status == "waiting", RUNS.c.request_id.is_not(None))
        .values(status="queued", trigger=trigger, enqueued_at=now, updated_at=now)
        .returning(RUNS.c.id)
    ).scalar()
    return uuid.UUID(str(started)) if started is not None else None


def remember(
    conn: Connection, *, task_id: uuid.UUID, client_id: uuid.UUID, request_id: uuid.UUID, trigger: str
) -> uuid.UUID | None:
    """A task that is not ready yet: keep its request id, which its later `task.status_changed` does not carry.

    When that event came first (two workers, events out of order), the task is ready already: queue it now.
    """
    row = _wait(conn, task_id=task_id, client_id=client_id, trigger=trigger, request_id=request_id)
    return _start(conn, row.id, trigger) if row.ready_at is not None else None


def ready_without_request(
    conn: Connection, *, task_id: uuid.UUID, client_id: uuid.UUID, trigger: str
) -> uuid.UUID | None:
    """A ready task whose `task.created` (its request id) has not been seen: wait for it, or go if it just came."""
    row = _wait(conn, task_id=task_id, client_id=client_id, trigger=trigger, ready_at=utcnow())
    return _start(conn, row.id, trigger) if row.request_id is not None else None


def request_of(conn: Connection, task_id: uuid.UUID) -> uuid.UUID | None:
    """The request a task came from, as an earlier run of it recorded."""
    found = conn.execute(
        select(RUNS.c.request_id)
        .where(RUNS.c.task_id == task_id, RUNS.c.request_id.is_not(None))
        .order_by(RUNS.c.created_at.desc())
        .limit(1)
    ).scalar()
    return uuid.UUID(str(found)) if found is not None else None


def unsent(conn: Connection, task_id: uuid.UUID) -> list[uuid.UUID]:
    """The task's queued run, due, with no message out there (its publish failed): marked sent, for publishing."""
    now = utcnow()
    rows = conn.execute(
        update(RUNS)
        .where(
            RUNS.c.task_id == task_id,
            RUNS.c.status == "queued",
            RUNS.c.enqueued_at.is_(None),
            or_(RUNS.c.not_before.is_(None), RUNS.c.not_before <= now),
        )
        .values(enqueued_at=now)
        .returning(RUNS.c.id)
    ).scalars()
    return [uuid.UUID(str(r)) for r in rows]


def publish(engine: Engine, run_ids: Sequence[uuid.UUID], *, countdown: float | None = None) -> int:
    """Publish one message per run, after its transaction committed; a failed publish is left to the sweep."""
    sent = 0
    try:
        with celery_app.producer_or_acquire() as producer:
            for run_id in run_ids:
                celery_app.send_task(
                    TASK, args=[str(run_id)], queue=QUEUE, countdown=countdown, producer=producer, retry=False
                )
                sent += 1
    except (KombuError, redis.RedisError, OSError) as exc:
        log.warning("provisioning_publish_failed", error=type(exc).__name__, unsent=len(run_ids) - sent)
        try:
            with engine.begin() as conn:
                conn.execute(
                    update(RUNS)
                    .where(RUNS.c.id.in_(list(run_ids[sent:])), RUNS.c.status == "queued")
                    .values(enqueued_at=None)
                )
        except SQLAlchemyError as db_exc:
            log.warning("provisioning_unpublished_mark_failed", error=type(db_exc).__name__)
    return sent


def stale(engine: Engine, settings: Settings, *, limit: int = 500) -> list[uuid.UUID]:
    """Mark for publishing the in-flight runs whose message is missing, due again, or long gone; their ids."""
    now = utcnow()
    old = now - timedelta(seconds=settings.requeue_after_s)
    with engine.begin() as conn:
        ids = conn.execute(
            select(RUNS.c.id)
            .where(
                RUNS.c.status.in_(IN_FLIGHT),
                or_(RUNS.c.not_before.is_(None), RUNS.c.not_before <= now),
                or_(RUNS.c.enqueued_at.is_(None), RUNS.c.enqueued_at <= old),
                # A running run is stale only once its worker holds no lock (checked by the delivery itself).
                or_(RUNS.c.status == "queued", and_(RUNS.c.status == "running", RUNS.c.updated_at <= old)),
            )
            .order_by(RUNS.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
        found = [uuid.UUID(str(i)) for i in ids]
        if found:
            conn.execute(update(RUNS).where(RUNS.c.id.in_(found)).values(enqueued_at=now))
    return found


def claim(conn: Connection, run_id: uuid.UUID, settings: Settings) -> Claim | Outcome:
    """Take the run for this delivery (in the caller's transaction, under the run's lock), counting the attempt."""
    run = conn.execute(select(RUNS).where(RUNS.c.id == run_id).with_for_update()).mappings().first()
    if run is None or run["status"] == "waiting":
        return Outcome("skipped", error="unknown_run")
    if run["status"] in TERMINAL:
        return Outcome("skipped", error=f"already_{run['status']}")
    now = utcnow()
    if run["not_before"] is not None and run["not_before"] > now + EARLY_SLACK:
        return Outcome("retry", error="not_before", countdown=(run["not_before"] - now).total_seconds())
    attempts = run_guard.count_attempt(conn, job_key(run_id))
    conn.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id)
        .values(status="running", attempts=attempts, started_at=now, not_before=None, updated_at=now)
    )
    return Claim(
        run_id=run_id,
        task_id=run["task_id"],
        client_id=run["client_id"],
        request_id=run["request_id"],
        attempts=attempts,
        claimed=run["claimed_at"] is not None,
        task_view=dict(run["task_view"] or {}),
        give_up=attempts > settings.provisioning_max_attempts,
    )


def still_running(conn: Connection, run_id: uuid.UUID) -> bool:
    """Lock the run row; True while this delivery's claim stands."""
    return conn.execute(select(RUNS.c.status).where(RUNS.c.id == run_id).with_for_update()).scalar() == "running"


def note(conn: Connection, run_id: uuid.UUID, **values: Any) -> None:
    """Record what the run learnt (its type, the claim and intake's task ids)."""
    conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(**values, updated_at=utcnow()))


def finish(conn: Connection, claim: Claim, status: str, error: str | None = None) -> Outcome:
    """End the run (succeeded, failed, skipped); a run that is no longer running is left as it is."""
    if not still_running(conn, claim.run_id):
        return Outcome("skipped", error="lost_claim")
    now = utcnow()
    conn.execute(
        update(RUNS)
        .where(RUNS.c.id == claim.run_id)
        .values(status=status, error=error, not_before=None, finished_at=now, updated_at=now)
    )
    return Outcome(status, error=error)


def dead_letter(conn: Connection, claim: Claim, error: str) -> None:
    """The run's one dead letter, in the transaction that fails it."""
    attempts = claim.attempts - 1 if claim.give_up else claim.attempts
    run_guard.dead_letter(
        conn, job_key=job_key(claim.run_id), task=TASK, run_id=claim.run_id, attempts=attempts, error=error
    )
    log.warning("provisioning_dead_lettered", run_id=str(claim.run_id), attempts=attempts, error=error)


def retry_later(
    conn: Connection, claim: Claim, code: str, retry_after: float | None, settings: Settings, *, no_call: bool
) -> Outcome:
    """Put the run back in the queue after a backoff (a countdown, or the sweep when longer than one may be)."""
    if not still_running(conn, claim.run_id):
        return Outcome("skipped", error="lost_claim")
    attempts = claim.attempts
    if no_call:
        # Nothing reached the vendor (intake or the broker down, an open circuit): the attempt is given back.
        attempts -= 1
        run_guard.give_back_attempt(conn, job_key(claim.run_id))
    now = utcnow()
    delay = retry_delay(max(attempts, 1), retry_after, settings)
    countdown = delay if delay <= MAX_COUNTDOWN_S else None
    conn.execute(
        update(RUNS)
        .where(RUNS.c.id == claim.run_id)
        .values(
            status="queued",
            attempts=attempts,
            error=code,
            not_before=now + timedelta(seconds=delay),
            enqueued_at=now if countdown is not None else None,
            updated_at=now,
        )
    )
    return Outcome("retry", error=code, countdown=countdown) if countdown else Outcome("deferred", error=code)

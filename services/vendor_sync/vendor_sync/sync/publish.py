"""Publishing refresh messages, only after the transaction that made the run has committed.

The run row is the durable record (like an outbox row): it is written with `enqueued_at` set, the
transaction commits, then the message is published. If publishing fails, `enqueued_at` is cleared
so the scheduler tick publishes it; if the process dies in between, the tick's stale sweep does.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import redis
from kombu.exceptions import KombuError
from sqlalchemy import Engine, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from mspkit.logging import get_logger
from vendor_sync.celery_app import app as celery_app
from vendor_sync.domains.models import SyncRun

REFRESH_TASK = "vendor_sync.domain.refresh"
ACCOUNT_SYNC_TASK = "vendor_sync.account.sync"
QUEUE = "vendor_sync"
log = get_logger("vendor_sync.publish")


def publish_refreshes(
    engine: Engine, run_ids: Sequence[uuid.UUID], *, countdown: float | None = None, task: str = REFRESH_TASK
) -> int:
    """Publish one message per run (a refresh, or `task`); returns how many went out (the rest are left to the tick)."""
    if not run_ids:
        return 0
    sent = 0
    try:
        with celery_app.producer_or_acquire() as producer:
            for run_id in run_ids:
                celery_app.send_task(
                    task,
                    args=[str(run_id)],
                    queue=QUEUE,
                    countdown=countdown,
                    producer=producer,
                    retry=False,
                )
                sent += 1
    except (KombuError, redis.RedisError, OSError) as exc:
        log.warning("refresh_publish_failed", error=type(exc).__name__, unsent=len(run_ids) - sent)
        _forget_enqueue(engine, run_ids[sent:])
    return sent


def _forget_enqueue(engine: Engine, run_ids: Sequence[uuid.UUID]) -> None:
    # Best effort: if this fails too, the tick's stale sweep still republishes after requeue_after_s.
    try:
        with Session(engine) as session, session.begin():
            session.execute(
                update(SyncRun)
                .where(col(SyncRun.id).in_(list(run_ids)), col(SyncRun.status) == "queued")
                .values(enqueued_at=None)
            )
    except SQLAlchemyError as exc:
        log.warning("refresh_unpublished_mark_failed", error=type(exc).__name__)

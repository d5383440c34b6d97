"""intake's Celery tasks (dotted names, ids only): the scheduled purge of expired Idempotency-Keys."""

from __future__ import annotations

from sqlmodel import Session

from intake.celery_app import PURGE_TASK, app
from intake.common.types import utcnow
from intake.db import get_engine
from intake.idempotency.service import purge_expired
from intake.settings import get_settings
from mspkit.logging import get_logger

log = get_logger("intake.jobs")


@app.task(name=PURGE_TASK, max_retries=0)
def purge_idempotency_keys() -> int:
    """Delete Idempotency-Keys past their TTL in bounded batches (intake-beat schedules it)."""
    settings = get_settings()
    with Session(get_engine(), expire_on_commit=False) as session:
        purged = purge_expired(
            session,
            now=utcnow(),
            ttl_s=settings.idempotency_ttl_s,
            batch_size=settings.idempotency_purge_batch_size,
            max_batches=settings.idempotency_purge_max_batches,
        )
    log.info("idempotency_keys_purged", purged=purged)
    return purged

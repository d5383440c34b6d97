"""Celery tasks of the broker worker (queue `secrets_broker`): intake's events and queued revocations.

The event task names are fixed by intake's routing table. The four task and client events are
consumed through the inbox, then the tokens they queued are revoked; `staff.changed` drops the
technician's cached staff view. A database, Vault or Redis outage while consuming is retried with
capped, jittered backoff, attempts counted in `job_attempts` (Redis has no delivery counter), and
dead-lettered after `MAX_ATTEMPTS`; a malformed envelope is dead-lettered at once.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any, Final

import redis
from celery import Task
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from mspkit.attempts import count_attempt, dead_letter, record_failure
from mspkit.errors import AppError
from mspkit.inbox import apply_once
from mspkit.logging import get_logger
from mspkit.queue import MAX_COUNTDOWN_S
from secrets_broker.celery_app import app
from secrets_broker.db import KIT, get_engine
from secrets_broker.revocation import consumers
from secrets_broker.revocation.service import carry_out, revoke_one
from secrets_broker.settings import get_settings
from secrets_broker.staff_views import get_staff_directory
from secrets_broker.vault.gateway import get_gateway

log = get_logger("secrets_broker.worker")
MAX_ATTEMPTS: Final = 10
Handler = Callable[[Session, dict[str, Any]], list[uuid.UUID]]


def _give_up_or_retry(task: Task, envelope: dict[str, Any], exc: Exception) -> None:
    engine = get_engine()
    job_key = f"{task.name}:{envelope.get('event_id')}"
    error = type(exc).__name__
    try:
        attempts = count_attempt(engine, KIT, job_key)
        record_failure(engine, KIT, job_key, error)
    except SQLAlchemyError:
        attempts = int(task.request.retries or 0) + 1
    if attempts >= MAX_ATTEMPTS:
        log.error("event_dead_lettered", task=task.name, attempts=attempts, error=error)
        try:
            dead_letter(
                engine, KIT, job_key=job_key, task_name=str(task.name), args=[envelope], attempts=attempts, error=error
            )
        except SQLAlchemyError:
            log.error("dead_letter_not_recorded", task=task.name)
        return
    countdown = min(MAX_COUNTDOWN_S, 2**attempts) * random.uniform(0.5, 1.0)
    log.warning("event_retry", task=task.name, attempts=attempts, error=error, countdown_s=round(countdown, 1))
    raise task.retry(countdown=countdown, max_retries=None) from None


def _dead_letter_malformed(task: Task, envelope: Any, exc: Exception) -> None:
    """Park an envelope that retrying cannot fix (the contract's shape is missing)."""
    log.error("event_malformed", task=task.name, error=type(exc).__name__)
    try:
        job_key = f"{task.name}:malformed"
        error = type(exc).__name__
        dead_letter(
            get_engine(), KIT, job_key=job_key, task_name=str(task.name), args=[envelope], attempts=1, error=error
        )
    except SQLAlchemyError:
        log.error("dead_letter_not_recorded", task=task.name)


def consume(task: Task, envelope: dict[str, Any], handler: Handler) -> bool:
    """Apply `handler` to the event once (inbox), then revoke what it queued; True if it applied."""
    engine = get_engine()
    queued: list[uuid.UUID] = []

    def apply(session: Session, event: dict[str, Any]) -> None:
        queued.extend(handler(session, event))

    try:
        applied = apply_once(engine, KIT, consumers.CONSUMER, envelope, apply)
    except (consumers.MalformedEvent, KeyError, TypeError, ValueError) as exc:
        _dead_letter_malformed(task, envelope, exc)
        return False
    except (SQLAlchemyError, AppError) as exc:
        _give_up_or_retry(task, envelope, exc)
        return False
    if queued:
        # The worker's gateway is logged in as `msp-broker-revoker` (revocation/sweeper.py).
        settings = get_settings()
        carry_out(engine, gateway=get_gateway(), pending_ids=queued, backoff_max_s=settings.revocation_backoff_max_s)
    log.info("event_consumed", task=task.name, applied=applied, revocations=len(queued))
    return applied


@app.task(name="secrets_broker.events.task_status_changed", bind=True)
def task_status_changed(self: Task, envelope: dict[str, Any]) -> bool:
    """`task.status_changed`: leaving `in_progress` revokes the task's releases."""
    return consume(self, envelope, consumers.on_task_status_changed)


@app.task(name="secrets_broker.events.task_assigned", bind=True)
def task_assigned(self: Task, envelope: dict[str, Any]) -> bool:
    """`task.assigned`: a reassignment revokes the previous assignee's releases of the task."""
    return consume(self, envelope, consumers.on_task_assigned)


@app.task(name="secrets_broker.events.task_scope_changed", bind=True)
def task_scope_changed(self: Task, envelope: dict[str, Any]) -> bool:
    """`task.scope_changed`: releases of credentials the new scope no longer holds are revoked."""
    return consume(self, envelope, consumers.on_task_scope_changed)


@app.task(name="secrets_broker.events.client_status_changed", bind=True)
def client_status_changed(self: Task, envelope: dict[str, Any]) -> bool:
    """`client.status_changed`: leaving `active` revokes every release of the client."""
    return consume(self, envelope, consumers.on_client_status_changed)


@app.task(name="secrets_broker.events.staff_changed", bind=True)
def staff_changed(self: Task, envelope: dict[str, Any]) -> bool:
    """`staff.changed`: drop the technician's cached staff view, so their next request reads intake's."""
    # No inbox: dropping a cache entry twice does no harm, and the effect lives in Redis, outside
    # any transaction an inbox row could join. Their releases end through the `task.*` events.
    data = envelope.get("data") if isinstance(envelope, dict) else None
    sub = data.get("sub") if isinstance(data, dict) else None
    if not isinstance(sub, str) or not sub:
        _dead_letter_malformed(self, envelope, consumers.MalformedEvent("data.sub is not a non-empty string"))
        return False
    try:
        get_staff_directory().forget(sub)
    except redis.RedisError as exc:
        # Until it is dropped the view may be served stale (at most 30 s): retry, counted.
        _give_up_or_retry(self, envelope, exc)
        return False
    log.info("staff_view_dropped", task=self.name, event_id=str(envelope.get("event_id")))
    return True


@app.task(name="secrets_broker.revocation.revoke_requested", bind=True)
def revoke_requested(self: Task, envelope: dict[str, Any]) -> bool:
    """`release.revoke_requested` (the API's outbox): revoke that queued accessor now."""
    data = envelope.get("data") if isinstance(envelope, dict) else None
    try:
        pending_id = uuid.UUID(str((data or {})["pending_revocation_id"]))
    except (KeyError, ValueError):
        log.error("event_malformed", task=self.name)
        return False
    settings = get_settings()
    try:
        # Idempotent by the row's done_at; a failure stays queued for the sweep.
        return revoke_one(
            get_engine(), gateway=get_gateway(), pending_id=pending_id, backoff_max_s=settings.revocation_backoff_max_s
        )
    except SQLAlchemyError as exc:
        _give_up_or_retry(self, envelope, exc)
        return False

"""intake's Celery tasks (dotted names, ids only): the scheduled purge of expired Idempotency-Keys, and the
notifications, which consume events (intake's own and the broker's `release.*`) and send mail.

A notification job reads what its mail needs, then delivers it at most once per (event, recipient)
(`notifications.service.deliver`). A transient failure (SMTP down or answering 4xx, the broker or
the database unreachable) is retried with capped, jittered backoff, attempts counted in
`job_attempts` (Redis has no delivery counter) and dead-lettered after `notify_max_attempts`; a
malformed envelope is dead-lettered at once; a message the mail guard refuses is never retried.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from celery import Task
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from intake import events
from intake.celery_app import PURGE_TASK, app
from intake.common.types import utcnow
from intake.db import KIT, get_engine
from intake.idempotency.service import purge_expired
from intake.notifications import metrics
from intake.notifications import service as notify
from intake.notifications.releases import get_releases
from intake.notifications.sender import TransientMailError, get_mailer
from intake.settings import get_settings
from mspkit.attempts import count_attempt, dead_letter, record_failure
from mspkit.errors import AppError
from mspkit.logging import get_logger
from mspkit.queue import MAX_COUNTDOWN_S

log = get_logger("intake.jobs")
Builder = Callable[[Session, dict[str, Any]], list[notify.Outgoing]]


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


def dead_letter_envelope(task: Task, envelope: Any, job_key: str, attempts: int, error: str) -> None:
    """Park the envelope in `dead_letters` (logged, never raised, when the database cannot take it)."""
    try:
        dead_letter(
            get_engine(),
            KIT,
            job_key=job_key,
            task_name=str(task.name),
            args=[envelope],
            attempts=attempts,
            error=error,
        )
    except SQLAlchemyError:
        log.error("dead_letter_not_recorded", task=task.name)


def give_up_or_retry(
    task: Task, envelope: dict[str, Any], exc: Exception, template: str | None, *, what: str = "notification"
) -> None:
    """Count the attempt in the database, then retry with capped backoff or dead-letter (the PSA jobs too)."""
    settings = get_settings()
    engine = get_engine()
    job_key = f"{task.name}:{envelope.get('event_id')}"
    error = type(exc).__name__
    try:
        attempts = count_attempt(engine, KIT, job_key)
        record_failure(engine, KIT, job_key, error)
    except SQLAlchemyError:
        attempts = int(task.request.retries or 0) + 1
    if attempts >= settings.notify_max_attempts:
        log.error(f"{what}_dead_lettered", task=task.name, attempts=attempts, error=error)
        dead_letter_envelope(task, envelope, job_key, attempts, error)
        return
    cap = min(MAX_COUNTDOWN_S, settings.notify_retry_max_s)
    countdown = min(cap, 2.0**attempts) * random.uniform(0.5, 1.0)
    if template is not None:
        metrics.RETRIED.labels(template).inc()
    log.warning(f"{what}_retry", task=task.name, attempts=attempts, error=error, countdown_s=round(countdown, 1))
    # The tasks are declared with max_retries=None (Celery's default of 3 would cut the outage short):
    # the attempts counted in the database decide when to give up.
    raise task.retry(countdown=countdown) from None


def notify_once(task: Task, envelope: dict[str, Any], build: Builder, template: str) -> int:
    """Build the event's mails and deliver them (at most once per recipient); the number sent now."""
    try:
        event_id = notify.event_id_of(envelope)
        with Session(get_engine(), expire_on_commit=False) as session:
            outgoing = build(session, envelope)
        done = notify.deliver(get_engine(), event_id=event_id, outgoing=outgoing, mailer=get_mailer())
    except (notify.MalformedEvent, AttributeError) as exc:
        log.error("event_malformed", task=task.name, error=type(exc).__name__)
        dead_letter_envelope(task, envelope, f"{task.name}:malformed", 1, type(exc).__name__)
        return 0
    except (TransientMailError, SQLAlchemyError, AppError) as exc:
        give_up_or_retry(task, envelope, exc, template)
        return 0
    log.info(
        "notification_event_done",
        task=task.name,
        event_id=str(event_id),
        sent=done.sent,
        duplicates=done.duplicates,
        refused=done.refused,
        failed=done.failed,
    )
    return done.sent


@app.task(name=events.NOTIFY_APPROVAL_CREATED, bind=True, max_retries=None)
def approval_created(self: Task, envelope: dict[str, Any]) -> int:
    """`approval.created`: ask the client's approvers, with a link to the approval's page."""
    portal = get_settings().portal_url
    return notify_once(
        self, envelope, lambda s, e: notify.approval_request_mails(s, envelope=e, portal_url=portal), "approval_request"
    )


@app.task(name=events.NOTIFY_RELEASE_GRANTED, bind=True, max_retries=None)
def release_granted(self: Task, envelope: dict[str, Any]) -> int:
    """The broker's `release.granted`: an access alert when a person got one of the client's credentials."""
    portal = get_settings().portal_url

    def build(session: Session, event: dict[str, Any]) -> list[notify.Outgoing]:
        return notify.access_alert_mails(session, envelope=event, portal_url=portal, releases=get_releases())

    return notify_once(self, envelope, build, "access_alert")


@app.task(name=events.NOTIFY_RELEASE_DENIED, bind=True, max_retries=None)
def release_denied(self: Task, envelope: dict[str, Any]) -> int:
    """The broker's `release.denied`: mailed to nobody (the contract has no such mail); recorded in the log."""
    data = envelope.get("data") if isinstance(envelope, dict) else None
    rule = data.get("rule") if isinstance(data, dict) else None
    log.info("release_denied_not_mailed", event_id=str(envelope.get("event_id")), rule=str(rule))
    return 0


@app.task(name=events.NOTIFY_TASK_STATUS_CHANGED, bind=True, max_retries=None)
def task_status_changed(self: Task, envelope: dict[str, Any]) -> int:
    """`task.status_changed`: tell the requester (verified address, status mail on) the new status."""
    portal = get_settings().portal_url
    return notify_once(
        self, envelope, lambda s, e: notify.task_status_mails(s, envelope=e, portal_url=portal), "task_status"
    )


@app.task(name=events.NOTIFY_TASK_CREATED, bind=True, max_retries=None)
def task_created(self: Task, envelope: dict[str, Any]) -> int:
    """`task.created`: a `drift_review` or `renewal` task is mailed to MSP_OPS_EMAIL."""
    settings = get_settings()

    def build(session: Session, event: dict[str, Any]) -> list[notify.Outgoing]:
        return notify.ops_task_mails(
            session, envelope=event, portal_url=settings.portal_url, ops_email=settings.ops_email
        )

    return notify_once(self, envelope, build, "ops_task")

"""Celery tasks (dotted names, ids only): refresh, scheduler tick, approval.decided and staff.changed consumers."""

from __future__ import annotations

import random
import uuid
from typing import Any

import redis
from celery import Task
from kombu.exceptions import KombuError
from sqlalchemy.exc import InterfaceError, OperationalError

from mspkit.logging import get_logger
from vendor_sync import events
from vendor_sync.celery_app import app
from vendor_sync.db import get_engine
from vendor_sync.settings import get_settings
from vendor_sync.sync import account_sync as account_job
from vendor_sync.sync import refresh as refresh_job
from vendor_sync.sync.adapter import get_rdap_client
from vendor_sync.sync.drift_tasks import publish_raise_tasks
from vendor_sync.sync.publish import ACCOUNT_SYNC_TASK, publish_refreshes
from vendor_sync.sync.schedule import tick
from vendor_sync.sync.vendors import open_reader

log = get_logger("vendor_sync.jobs")
# Infrastructure outages (PostgreSQL, Redis) are retried by Celery itself, quietly and with backoff.
_INFRA_ERRORS = (OperationalError, InterfaceError, redis.RedisError, KombuError)


def _infra_backoff(retries: int) -> float:
    return min(60.0, 2.0 * 2**retries) * random.uniform(0.5, 1.0)


@app.task(name="vendor_sync.domain.refresh", bind=True, max_retries=None)
def refresh_domain(self: Task, sync_run_id: str) -> str:
    """Refresh one domain's registration data for a sync run (idempotent; see sync/refresh.py)."""
    try:
        run_id = uuid.UUID(str(sync_run_id))
    except ValueError:
        log.warning("refresh_bad_argument")
        return "skipped"
    engine = get_engine()
    try:
        outcome = refresh_job.refresh(
            run_id, engine=engine, lookup=get_rdap_client().lookup_domain, settings=get_settings()
        )
    except _INFRA_ERRORS as exc:
        log.warning("refresh_infra_error", sync_run_id=str(run_id), error=type(exc).__name__)
        raise self.retry(countdown=_infra_backoff(self.request.retries), exc=None) from None
    if outcome.countdown is not None:
        # Published only now, after the claim's lock is released, so the next delivery can take it.
        publish_refreshes(engine, [run_id], countdown=outcome.countdown)
    if outcome.drift:
        # After the refresh committed its drift events: a worker turns them into intake tasks.
        publish_raise_tasks()
    log.info("refresh_done", sync_run_id=str(run_id), outcome=outcome.status, error=outcome.error)
    return outcome.status


@app.task(name="vendor_sync.account.sync", bind=True, max_retries=None)
def sync_account(self: Task, sync_run_id: str) -> str:
    """Sync one vendor account's zones and records, or domains, into the registry (see sync/account_sync.py)."""
    try:
        run_id = uuid.UUID(str(sync_run_id))
    except ValueError:
        log.warning("account_sync_bad_argument")
        return "skipped"
    engine = get_engine()
    try:
        outcome = account_job.sync_account(run_id, engine=engine, reader=open_reader, settings=get_settings())
    except _INFRA_ERRORS as exc:
        log.warning("account_sync_infra_error", sync_run_id=str(run_id), error=type(exc).__name__)
        raise self.retry(countdown=_infra_backoff(self.request.retries), exc=None) from None
    if outcome.countdown is not None:
        publish_refreshes(engine, [run_id], countdown=outcome.countdown, task=ACCOUNT_SYNC_TASK)
    if outcome.drift:
        # After the sync committed its drift events and expiry warnings: a worker raises them as tasks.
        publish_raise_tasks()
    log.info("account_sync_done", sync_run_id=str(run_id), outcome=outcome.status, error=outcome.error)
    return outcome.status


@app.task(name="vendor_sync.schedule.tick", bind=True, max_retries=0)
def schedule_tick(self: Task) -> dict[str, int]:
    """Queue the refreshes and account syncs that are due, republish lost runs, and raise pending drift (beat)."""
    try:
        result = tick(engine=get_engine(), settings=get_settings())
    except _INFRA_ERRORS as exc:
        # The next beat tick does the same work; nothing to retry.
        log.warning("tick_infra_error", error=type(exc).__name__)
        return {}
    # Drift whose task intake did not take last time (down, refused) is tried again every tick, and
    # provisioning runs whose message was lost (or whose long backoff ended) are published again.
    publish_raise_tasks()
    try:
        app.send_task("vendor_sync.provisioning.sweep", queue="vendor_sync", retry=False)
    except (KombuError, redis.RedisError, OSError) as exc:
        log.warning("provisioning_sweep_publish_failed", error=type(exc).__name__)
    counts = result.as_dict()
    if any(counts.values()):
        log.info("tick_done", **counts)
    return counts


@app.task(name="vendor_sync.events.approval_decided", bind=True, max_retries=None)
def approval_decided(self: Task, envelope: dict[str, Any]) -> bool:
    """Consume `approval.decided` through the inbox (record only until provisioning lands)."""
    try:
        return events.approval_decided(envelope)
    except _INFRA_ERRORS as exc:
        log.warning("approval_decided_infra_error", error=type(exc).__name__)
        raise self.retry(countdown=_infra_backoff(self.request.retries), exc=None) from None


@app.task(name="vendor_sync.events.staff_changed", bind=True, max_retries=None)
def staff_changed(self: Task, envelope: dict[str, Any]) -> bool:
    """Consume `staff.changed`: drop the technician's cached staff view (a malformed envelope is dropped)."""
    try:
        return events.staff_changed(envelope)
    except _INFRA_ERRORS as exc:
        log.warning("staff_changed_infra_error", error=type(exc).__name__)
        raise self.retry(countdown=_infra_backoff(self.request.retries), exc=None) from None


@app.task(name="vendor_sync.drift.raise_tasks", bind=True, max_retries=0)
def raise_drift_tasks(self: Task) -> dict[str, int]:
    """Raise pending drift events as intake tasks (idempotent and cheap: any worker, any number of times)."""
    from vendor_sync.intake_client import get_intake_tasks
    from vendor_sync.sync.drift_tasks import raise_tasks

    try:
        counts = raise_tasks(get_engine(), get_intake_tasks(), get_settings()).as_dict()
    except _INFRA_ERRORS as exc:
        # Events stay pending; the next publish (a drift, the scheduler) does the same work.
        log.warning("raise_tasks_infra_error", error=type(exc).__name__)
        return {}
    if any(counts.values()):
        log.info("raise_tasks_done", **counts)
    return counts


# ---- provisioning: task events in, one run per ready task, the run's steps at the vendors ---------------


@app.task(name="vendor_sync.events.task_ready", bind=True, max_retries=None)
def task_ready(self: Task, envelope: dict[str, Any]) -> int:
    """Consume `task.created`/`task.status_changed` (inbox): a provisionable task now `ready` gets a run."""
    from vendor_sync.provisioning import runs, trigger

    engine = get_engine()
    try:
        queued = trigger.task_ready(envelope, engine=engine)
    except _INFRA_ERRORS as exc:
        log.warning("task_ready_infra_error", error=type(exc).__name__)
        raise self.retry(countdown=_infra_backoff(self.request.retries), exc=None) from None
    # After the inbox transaction committed: a failed publish leaves the run to the sweep.
    runs.publish(engine, queued)
    return len(queued)


@app.task(name="vendor_sync.provisioning.run", bind=True, max_retries=None)
def provisioning_run(self: Task, run_id: str) -> str:
    """Carry out one provisioning run's steps (idempotent; see provisioning/job.py)."""
    from vendor_sync.intake_client import get_intake_provisioning
    from vendor_sync.provisioning import job, runs

    try:
        parsed = uuid.UUID(str(run_id))
    except ValueError:
        log.warning("provisioning_bad_argument")
        return "skipped"
    engine = get_engine()
    try:
        outcome = job.run(
            parsed, engine=engine, settings=get_settings(), deps=job.Deps(intake=get_intake_provisioning())
        )
    except _INFRA_ERRORS as exc:
        log.warning("provisioning_infra_error", run_id=str(parsed), error=type(exc).__name__)
        raise self.retry(countdown=_infra_backoff(self.request.retries), exc=None) from None
    if outcome.countdown is not None:
        # Published only now, after the run's lock is released, so the next delivery can take it.
        runs.publish(engine, [parsed], countdown=outcome.countdown)
    return outcome.status


@app.task(name="vendor_sync.provisioning.sweep", bind=True, max_retries=0)
def provisioning_sweep(self: Task) -> int:
    """Publish again the in-flight provisioning runs whose message was lost, or whose backoff has passed."""
    from vendor_sync.provisioning import runs

    engine = get_engine()
    try:
        stale = runs.stale(engine, get_settings())
    except _INFRA_ERRORS as exc:
        log.warning("provisioning_sweep_infra_error", error=type(exc).__name__)
        return 0
    return runs.publish(engine, stale)

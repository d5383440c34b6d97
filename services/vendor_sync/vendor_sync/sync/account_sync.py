"""The sync of one vendor account: claim the run, read the vendor, plan, refuse oversized deletes, apply.

Exactly once with at-least-once delivery, as a domain refresh (sync/refresh.py): a session-level
advisory lock on the run for the whole job, attempts counted in the claiming transaction, and every
effect committed in one transaction guarded by `status = 'running'`. The vendor's key is released
for this job only and dropped with the adapter when the job ends.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from mspkit.logging import get_logger
from vendor_sync.db import utcnow
from vendor_sync.domains.models import TERMINAL, SyncRun
from vendor_sync.registry.models import SYNCED_KINDS, Vendor, VendorAccount
from vendor_sync.settings import Settings
from vendor_sync.sync import account_apply, account_state, run_guard
from vendor_sync.sync.plan import Plan, build_plan
from vendor_sync.sync.refresh import Outcome, classify, retry_delay
from vendor_sync.sync.vendor_keys import KeyRefused, KeyUnavailable
from vendor_sync.sync.vendors import VendorReader

TASK = "vendor_sync.account.sync"
RUNS = SyncRun.__table__
ACCOUNTS = VendorAccount.__table__
VENDORS = Vendor.__table__
log = get_logger("vendor_sync.account_sync")

# Opens the vendor for an account: (account, adapter name, api key credential id, job id) -> reader.
Reader = Callable[[account_apply.Account, str, uuid.UUID | None, str], VendorReader]


@dataclass(frozen=True)
class _Claim:
    account: account_apply.Account
    adapter: str
    credential_id: uuid.UUID | None
    dry_run: bool
    force: bool
    attempts: int


def job_key(run_id: uuid.UUID) -> str:
    """The attempts-table key of an account sync job."""
    return f"{TASK}:{run_id}"


def sync_account(run_id: uuid.UUID, *, engine: Engine, reader: Reader, settings: Settings) -> Outcome:
    """Run one delivery of `vendor_sync.account.sync` for a sync run."""
    with engine.connect() as conn:
        held = False
        try:
            with conn.begin():
                held = run_guard.try_lock(conn, run_id)
                if not held:
                    return Outcome("skipped", error="in_progress_elsewhere")
                claim = _claim(conn, run_id, settings)
            if isinstance(claim, Outcome):
                return claim
            try:
                with reader(claim.account, claim.adapter, claim.credential_id, job_key(run_id)) as vendor:
                    current = _registry(conn, claim.account)
                    snapshot = vendor.snapshot(current)
            except KeyRefused as exc:
                with conn.begin():
                    return _finish_failed(conn, run_id, claim, exc.code[:64], settings)
            except Exception as exc:  # noqa: BLE001 - classified below; unknown errors are retried
                code, transient, retry_after = _classify(exc)
                with conn.begin():
                    if not transient:
                        return _finish_failed(conn, run_id, claim, code, settings)
                    return _retry_later(conn, run_id, claim, code, retry_after, settings)
            with conn.begin():
                return _apply(conn, run_id, claim, snapshot.objects, settings)
        finally:
            if held:
                run_guard.unlock(conn, run_id)


def _classify(exc: BaseException) -> tuple[str, bool, float | None]:
    if isinstance(exc, KeyUnavailable):
        return "key_unavailable", True, None
    failure = classify(exc)
    return failure.code, failure.transient, failure.retry_after


def _registry(conn: Connection, account: account_apply.Account) -> dict[Any, Any]:
    with conn.begin():
        if account.kind == "dns_host":
            return account_state.dns_registry_state(conn, account.id)
        return account_state.registrar_registry_state(conn, account.id)


def _claim(conn: Connection, run_id: uuid.UUID, settings: Settings) -> _Claim | Outcome:
    run = conn.execute(
        select(RUNS.c.status, RUNS.c.vendor_account_id, RUNS.c.dry_run, RUNS.c.force, RUNS.c.error, RUNS.c.not_before)
        .where(RUNS.c.id == run_id)
        .with_for_update()
    ).first()
    if run is None or run.vendor_account_id is None:
        return Outcome("skipped", error="unknown_run")
    if run.status in TERMINAL:
        return Outcome("skipped", error=f"already_{run.status}")
    now = utcnow()
    if run.not_before is not None and run.not_before > now + timedelta(seconds=0.5):
        return Outcome("retry", error="not_before", countdown=(run.not_before - now).total_seconds())
    row = conn.execute(
        select(
            ACCOUNTS.c.id,
            ACCOUNTS.c.client_id,
            ACCOUNTS.c.archived_at,
            ACCOUNTS.c.api_key_credential_id,
            VENDORS.c.kind,
            VENDORS.c.adapter,
        )
        .join(VENDORS, VENDORS.c.id == ACCOUNTS.c.vendor_id)
        .where(ACCOUNTS.c.id == run.vendor_account_id)
    ).first()
    account = account_apply.Account(id=row.id, client_id=row.client_id, kind=row.kind) if row else None
    attempts = run_guard.count_attempt(conn, job_key(run_id))
    claim = None
    if account is not None and row is not None:
        claim = _Claim(account, str(row.adapter or ""), row.api_key_credential_id, run.dry_run, run.force, attempts)
    reason = None
    if claim is None:
        reason = "unknown_account"
    elif row is not None and row.archived_at is not None:
        reason = "archived"
    elif row is not None and row.kind not in SYNCED_KINDS:
        reason = "not_synced_kind"
    elif attempts > settings.refresh_max_attempts:
        reason = "max_attempts"
    if reason is not None or claim is None:
        conn.execute(_failed_values(run_id, reason or "unknown_account"))
        if reason == "max_attempts":
            run_guard.dead_letter(
                conn,
                job_key=job_key(run_id),
                task=TASK,
                run_id=run_id,
                attempts=attempts - 1,
                error=run.error or "worker_lost",
            )
        return Outcome("failed", error=reason)
    conn.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id)
        .values(status="running", attempts=attempts, started_at=now, updated_at=now)
    )
    return claim


def _failed_values(run_id: uuid.UUID, code: str, plan: Plan | None = None) -> Any:
    now = utcnow()
    values: dict[str, Any] = {
        "status": "failed",
        "error": code,
        "failed": 1,
        "not_before": None,
        "finished_at": now,
        "updated_at": now,
    }
    if plan is not None:
        values["plan"] = plan.summary()
    return update(RUNS).where(RUNS.c.id == run_id).values(**values)


def _still_running(conn: Connection, run_id: uuid.UUID) -> bool:
    return conn.execute(select(RUNS.c.status).where(RUNS.c.id == run_id).with_for_update()).scalar() == "running"


def _finish_failed(conn: Connection, run_id: uuid.UUID, claim: _Claim, code: str, settings: Settings) -> Outcome:
    if not _still_running(conn, run_id):
        return Outcome("skipped", error="lost_claim")
    conn.execute(_failed_values(run_id, code))
    _schedule_next(conn, claim, settings)
    return Outcome("failed", error=code)


def _retry_later(
    conn: Connection, run_id: uuid.UUID, claim: _Claim, code: str, retry_after: float | None, settings: Settings
) -> Outcome:
    if not _still_running(conn, run_id):
        return Outcome("skipped", error="lost_claim")
    if claim.attempts >= settings.refresh_max_attempts:
        conn.execute(_failed_values(run_id, "max_attempts"))
        run_guard.dead_letter(
            conn, job_key=job_key(run_id), task=TASK, run_id=run_id, attempts=claim.attempts, error=code
        )
        return Outcome("failed", error="max_attempts")
    now = utcnow()
    delay = retry_delay(claim.attempts, retry_after, settings)
    conn.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id)
        .values(status="queued", error=code, not_before=now + timedelta(seconds=delay), enqueued_at=now, updated_at=now)
    )
    return Outcome("retry", error=code, countdown=delay)


def next_sync_at(kind: str, settings: Settings) -> datetime:
    """When an account of this kind is next synced: one interval on, plus up to a tenth more.

    The jitter spreads accounts created or synced together over the period, so the scheduler never
    sends a burst of syncs at one vendor (the shared rate limit would only make them wait).
    """
    interval = settings.dns_host_sync_interval_s if kind == "dns_host" else settings.registrar_sync_interval_s
    return utcnow() + timedelta(seconds=interval * (1 + random.uniform(0, 0.1)))


def _schedule_next(conn: Connection, claim: _Claim, settings: Settings) -> None:
    # The next scheduled sync of this account comes one interval after this one ended, whatever its outcome.
    when = next_sync_at(claim.account.kind, settings)
    conn.execute(update(ACCOUNTS).where(ACCOUNTS.c.id == claim.account.id).values(next_sync_at=when))


def _apply(conn: Connection, run_id: uuid.UUID, claim: _Claim, desired: dict[Any, Any], settings: Settings) -> Outcome:
    if not _still_running(conn, run_id):
        return Outcome("skipped", error="lost_claim")
    account = claim.account
    # Read again under the run's lock: the plan is made against the registry as it is now.
    current = (
        account_state.dns_registry_state(conn, account.id)
        if account.kind == "dns_host"
        else account_state.registrar_registry_state(conn, account.id)
    )
    plan = build_plan(current, desired)
    if plan.exceeds_delete_threshold() and not claim.force:
        conn.execute(_failed_values(run_id, "delete_threshold", plan))
        conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(changes=account_apply.preview(conn, account, plan)))
        _schedule_next(conn, claim, settings)
        log.warning("account_sync_delete_threshold", sync_run_id=str(run_id), deletes=plan.count("delete"))
        return Outcome("failed", error="delete_threshold")
    now = utcnow()
    if claim.dry_run:
        changes = account_apply.preview(conn, account, plan)
        drift = 0
    else:
        apply = account_apply.apply_dns if account.kind == "dns_host" else account_apply.apply_registrar
        applied = apply(conn, account, plan, run_id, now, settings)
        changes, drift = applied.changes, applied.drift
        _schedule_next(conn, claim, settings)
    conn.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id)
        .values(
            status="succeeded",
            created=0 if claim.dry_run else plan.count("create"),
            updated=0 if claim.dry_run else plan.count("update"),
            deleted=0 if claim.dry_run else plan.count("delete"),
            failed=0,
            error=None,
            plan=plan.summary(),
            changes=changes,
            not_before=None,
            finished_at=now,
            updated_at=now,
        )
    )
    log.info("account_sync_applied", sync_run_id=str(run_id), drift=drift, **plan.summary())
    return Outcome("succeeded", drift=drift)

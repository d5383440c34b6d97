"""The refresh of one domain: claim the run, look the domain up, record what changed, exactly once.

Exactly once, with at-least-once delivery:
- A session-level advisory lock on the run is held for the whole job. A second message for the same
  run (a redelivery, a tick's re-enqueue) finds it taken and does nothing. If the worker dies, its
  PostgreSQL session ends and the lock goes with it, so the redelivered message can take over.
- Every effect (domain fields, drift events, the run's final status, a dead letter) commits in one
  transaction guarded by `status = 'running'`; a run already finished is a no-op.
- Attempts are counted in the database in the transaction that marks the run running, so a job that
  kills its worker every time is still dead-lettered after `refresh_max_attempts` deliveries.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects.postgresql import insert

from mspkit.http import (
    CircuitOpen,
    DeadlineExceeded,
    HostNotAllowed,
    RateLimited,
    VendorAuthError,
    VendorNotFound,
    VendorPermanentError,
    VendorResponseError,
    VendorTransientError,
)
from mspkit.logging import get_logger
from mspkit.queue import MAX_COUNTDOWN_S
from vendor_sync.adapters.base import DomainRecord
from vendor_sync.adapters.rdap import InvalidDomainName, RdapBootstrapError, RdapNoService
from vendor_sync.db import utcnow
from vendor_sync.domains.models import TERMINAL, Domain, DriftEvent, SyncRun
from vendor_sync.settings import Settings
from vendor_sync.sync import run_guard
from vendor_sync.sync.expiry import record_expiry_warning

TASK = "vendor_sync.domain.refresh"
DRIFT_FIELDS = ("registrar", "expires_at", "nameservers", "statuses", "transfer_lock")
# RDAP statuses (RFC 9083 § 10.2.2, RFC 8056 § 2) that prohibit a transfer; the EPP spellings some servers
# send (clientTransferProhibited) arrive lower-cased from the parser.
TRANSFER_PROHIBITED = frozenset(
    {
        "client transfer prohibited",
        "server transfer prohibited",
        "transfer prohibited",
        "clienttransferprohibited",
        "servertransferprohibited",
    }
)
# A message may arrive a little before its run's not_before (clock granularity); more than this is early.
EARLY_SLACK = timedelta(seconds=0.5)
MIN_RETRY_DELAY_S = 0.5
# Celery's ETA is computed after the response arrived, so Retry-After is honoured already; this is margin.
RETRY_AFTER_MARGIN_S = 0.25
log = get_logger("vendor_sync.refresh")
# Core tables: the job runs ~12 statements per refresh, and the ORM unit of work doubled its CPU cost.
RUNS = SyncRun.__table__
DOMAINS = Domain.__table__
DRIFT = DriftEvent.__table__

Lookup = Callable[[str], DomainRecord]


@dataclass(frozen=True)
class Outcome:
    """What a delivery did; `countdown` asks the caller to publish the run again after releasing the lock."""

    status: str  # succeeded | failed | retry | deferred | skipped
    error: str | None = None
    countdown: float | None = None
    # Drift events (changes and expiry warnings) this delivery recorded: the caller asks for their tasks.
    drift: int = 0


@dataclass(frozen=True)
class _Claim:
    domain_id: uuid.UUID
    name: str
    attempts: int


@dataclass(frozen=True)
class _Failure:
    code: str
    transient: bool
    retry_after: float | None = None
    # No request reached the vendor (open circuit, our own rate limit): the attempt is given back.
    no_call: bool = False


def job_key(run_id: uuid.UUID) -> str:
    """The attempts-table key of a run's refresh job."""
    return f"{TASK}:{run_id}"


def refresh(run_id: uuid.UUID, *, engine: Engine, lookup: Lookup, settings: Settings) -> Outcome:
    """Run one delivery of `vendor_sync.domain.refresh` for a sync run.

    One connection serves the whole job: it holds the run's session-level advisory lock from the claim
    to after the final commit (PostgreSQL drops it with the session if this worker dies).
    """
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
                record = lookup(claim.name)
            except Exception as exc:  # noqa: BLE001 - every failure is classified; unknown ones are retried
                failure = classify(exc)
                with conn.begin():
                    return _after_failure(conn, run_id, claim, failure, settings)
            with conn.begin():
                return _succeed(conn, run_id, claim, record, settings)
        finally:
            if held:
                run_guard.unlock(conn, run_id)


def classify(exc: BaseException) -> _Failure:
    """Map an adapter error to the run's error code and whether a later attempt can succeed."""
    permanent: list[tuple[type[BaseException], str]] = [
        (VendorNotFound, "not_found"),
        (RdapNoService, "no_rdap_service"),
        (RdapBootstrapError, "bootstrap_unusable"),
        (VendorAuthError, "vendor_auth"),
        (HostNotAllowed, "host_not_allowed"),
        (VendorResponseError, "bad_response"),
        (InvalidDomainName, "invalid_name"),
        (VendorPermanentError, "vendor_refused"),
    ]
    for kind, code in permanent:
        if isinstance(exc, kind):
            return _Failure(code, transient=False)
    if isinstance(exc, CircuitOpen):
        return _Failure("circuit_open", transient=True, retry_after=exc.retry_after, no_call=True)
    if isinstance(exc, RateLimited):
        if exc.local:
            return _Failure("rate_limited_local", transient=True, retry_after=exc.retry_after, no_call=True)
        return _Failure("rate_limited", transient=True, retry_after=exc.retry_after)
    if isinstance(exc, DeadlineExceeded):
        return _Failure("deadline_exceeded", transient=True, retry_after=exc.retry_after)
    if isinstance(exc, VendorTransientError):
        code = f"http_{exc.status}" if exc.status else "transient"
        return _Failure(code, transient=True, retry_after=exc.retry_after)
    if isinstance(exc, redis.RedisError):
        return _Failure("redis_unavailable", transient=True)
    # A bug or an unforeseen library error: logged by type only (messages may carry vendor data).
    log.error("refresh_unexpected_error", error=type(exc).__name__)
    return _Failure("unexpected", transient=True)


def retry_delay(attempts: int, retry_after: float | None, settings: Settings) -> float:
    """Capped full-jitter backoff, never shorter than the vendor's Retry-After."""
    ceiling = min(settings.retry_cap_s, settings.retry_base_s * 2 ** max(attempts - 1, 0))
    delay = max(random.uniform(0.0, ceiling), MIN_RETRY_DELAY_S)
    if retry_after is not None:
        delay = max(delay, retry_after + RETRY_AFTER_MARGIN_S)
    return round(delay, 3)


def _claim(conn: Connection, run_id: uuid.UUID, settings: Settings) -> _Claim | Outcome:
    run = conn.execute(
        select(RUNS.c.status, RUNS.c.not_before, RUNS.c.domain_id, RUNS.c.error)
        .where(RUNS.c.id == run_id)
        .with_for_update()
    ).first()
    if run is None:
        return Outcome("skipped", error="unknown_run")
    if run.status in TERMINAL:
        return Outcome("skipped", error=f"already_{run.status}")
    now = utcnow()
    if run.not_before is not None and run.not_before > now + EARLY_SLACK:
        # Too early (a duplicate message): never call before not_before, whatever the message says.
        wait = (run.not_before - now).total_seconds()
        if wait <= MAX_COUNTDOWN_S:
            conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(enqueued_at=now))
            return Outcome("retry", error="not_before", countdown=wait)
        conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(enqueued_at=None))
        return Outcome("deferred", error="not_before")
    name = conn.execute(select(DOMAINS.c.name).where(DOMAINS.c.id == run.domain_id)).scalar()
    if name is None:
        return Outcome("skipped", error="unknown_domain")
    attempts = run_guard.count_attempt(conn, job_key(run_id))
    if attempts > settings.refresh_max_attempts:
        # Delivered again after the last allowed attempt: the worker died each time (a poison job).
        _fail(conn, run_id, run.domain_id, code="max_attempts", now=now, settings=settings)
        run_guard.dead_letter(
            conn,
            job_key=job_key(run_id),
            task=TASK,
            run_id=run_id,
            attempts=attempts - 1,
            error=run.error or "worker_lost",
        )
        log.warning("refresh_dead_lettered", sync_run_id=str(run_id), attempts=attempts - 1)
        return Outcome("failed", error="max_attempts")
    conn.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id)
        .values(status="running", attempts=attempts, started_at=now, updated_at=now)
    )
    return _Claim(domain_id=run.domain_id, name=str(name), attempts=attempts)


def _lock_pair(conn: Connection, run_id: uuid.UUID, domain_id: uuid.UUID) -> dict[str, Any] | None:
    """Lock the domain, then the run (the order every writer uses); the domain row if the run is running."""
    domain = conn.execute(select(DOMAINS).where(DOMAINS.c.id == domain_id).with_for_update()).mappings().first()
    status = conn.execute(select(RUNS.c.status).where(RUNS.c.id == run_id).with_for_update()).scalar()
    if domain is None or status != "running":
        return None
    return dict(domain)


def _fail(
    conn: Connection, run_id: uuid.UUID, domain_id: uuid.UUID, *, code: str, now: datetime, settings: Settings
) -> None:
    conn.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id)
        .values(status="failed", error=code, failed=1, not_before=None, finished_at=now, updated_at=now)
    )
    # A failed refresh is a finished one: it is checked again at the normal interval, not in a loop.
    conn.execute(
        update(DOMAINS)
        .where(DOMAINS.c.id == domain_id)
        .values(last_checked_at=now, next_check_at=now + timedelta(seconds=settings.check_interval_s))
    )


def _after_failure(
    conn: Connection, run_id: uuid.UUID, claim: _Claim, failure: _Failure, settings: Settings
) -> Outcome:
    if _lock_pair(conn, run_id, claim.domain_id) is None:
        return Outcome("skipped", error="lost_claim")
    now = utcnow()
    if not failure.transient:
        _fail(conn, run_id, claim.domain_id, code=failure.code, now=now, settings=settings)
        return Outcome("failed", error=failure.code)
    attempts = claim.attempts
    if failure.no_call:
        attempts -= 1
        run_guard.give_back_attempt(conn, job_key(run_id))
    elif attempts >= settings.refresh_max_attempts:
        _fail(conn, run_id, claim.domain_id, code="max_attempts", now=now, settings=settings)
        run_guard.dead_letter(
            conn, job_key=job_key(run_id), task=TASK, run_id=run_id, attempts=attempts, error=failure.code
        )
        log.warning("refresh_dead_lettered", sync_run_id=str(run_id), attempts=attempts, error=failure.code)
        return Outcome("failed", error="max_attempts")
    delay = retry_delay(max(attempts, 1), failure.retry_after, settings)
    # Longer than a countdown may safely be (visibility timeout): no message, the tick publishes it when due.
    outcome = (
        Outcome("retry", error=failure.code, countdown=delay)
        if delay <= MAX_COUNTDOWN_S
        else Outcome("deferred", error=failure.code)
    )
    conn.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id)
        .values(
            status="queued",
            attempts=attempts,
            error=failure.code,
            not_before=now + timedelta(seconds=delay),
            enqueued_at=now if outcome.countdown is not None else None,
            updated_at=now,
        )
    )
    return outcome


def transfer_lock(statuses: tuple[str, ...] | list[str]) -> bool | None:
    """Whether RDAP statuses prohibit a transfer; None when the answer has no statuses (unknown, e.g. redacted)."""
    if not statuses:
        return None
    return any(status.strip().lower() in TRANSFER_PROHIBITED for status in statuses)


def _normalised(record: DomainRecord, domain: dict[str, Any]) -> dict[str, Any]:
    abuse = None
    if record.abuse_contact is not None and (record.abuse_contact.email or record.abuse_contact.phone):
        abuse = {"email": record.abuse_contact.email, "phone": record.abuse_contact.phone}
    extra: dict[str, Any] = {}
    lock = transfer_lock(record.statuses)
    # An unknown lock keeps the last known one. A domain linked to a registrar account gets its lock from
    # that account's sync (the registrar's own flag): two sources that disagree (a registry's server lock
    # with the registrar's lock off) would otherwise flip it, and raise a task, at every refresh.
    if lock is not None and domain.get("registrar_account_id") is None:
        extra["transfer_lock"] = lock
    return {
        "registrar": record.registrar,
        "registrar_iana_id": record.registrar_iana_id,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "last_changed_at": record.last_changed_at,
        "statuses": sorted(set(record.statuses)),
        "nameservers": sorted({ns.lower().rstrip(".") for ns in record.nameservers}),
        "dnssec": record.dnssec,
        "abuse_contact": abuse,
        **extra,
    }


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def to_json(value: Any) -> Any:
    """A JSON-ready copy of a field value (RFC 3339 UTC times)."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def _succeed(conn: Connection, run_id: uuid.UUID, claim: _Claim, record: DomainRecord, settings: Settings) -> Outcome:
    domain = _lock_pair(conn, run_id, claim.domain_id)
    if domain is None:
        return Outcome("skipped", error="lost_claim")
    now = utcnow()
    created = updated = deleted = 0
    changes: dict[str, Any] = {}
    drift: list[dict[str, Any]] = []
    for field, new in _normalised(record, domain).items():
        old = domain[field]
        if old == new or (_empty(old) and _empty(new)):
            continue
        if _empty(old):
            created += 1
        elif _empty(new):
            deleted += 1
        else:
            updated += 1
        if field in DRIFT_FIELDS and not _empty(old):
            drift.append(_drift_row(domain, run_id, "change", field, to_json(old), to_json(new), now))
        changes[field] = new
    if drift:
        conn.execute(insert(DRIFT), drift)
    # One expiry_warning per expiry date, once it is within the warning window (the domain row is locked).
    warned = record_expiry_warning(
        conn,
        domain=domain,
        expires_at=changes.get("expires_at", domain["expires_at"]),
        run_id=run_id,
        now=now,
        settings=settings,
    )
    conn.execute(
        update(DOMAINS)
        .where(DOMAINS.c.id == claim.domain_id)
        .values(**changes, last_checked_at=now, next_check_at=now + timedelta(seconds=settings.check_interval_s))
    )
    conn.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id)
        .values(
            status="succeeded",
            created=created,
            updated=updated,
            deleted=deleted,
            failed=0,
            error=None,
            not_before=None,
            finished_at=now,
            updated_at=now,
        )
    )
    return Outcome("succeeded", drift=len(drift) + int(warned))


def _drift_row(
    domain: dict[str, Any], run_id: uuid.UUID, kind: str, field: str, old: Any, new: Any, now: datetime
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "client_id": domain["client_id"],
        "domain_id": domain["id"],
        "vendor_account_id": None,
        "sync_run_id": run_id,
        "kind": kind,
        "field": field,
        "old": old,
        "new": new,
        "detected_at": now,
    }

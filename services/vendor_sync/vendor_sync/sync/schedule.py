"""The scheduler tick: queue due refreshes and account syncs in bounded batches; publish lost runs again."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, and_, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col

from vendor_sync.db import utcnow
from vendor_sync.domains.models import ACCOUNT_IN_FLIGHT_PREDICATE, IN_FLIGHT, IN_FLIGHT_PREDICATE, Domain, SyncRun
from vendor_sync.registry.models import SYNCED_KINDS, Vendor, VendorAccount
from vendor_sync.settings import Settings
from vendor_sync.sync.account_sync import next_sync_at
from vendor_sync.sync.publish import ACCOUNT_SYNC_TASK, REFRESH_TASK, publish_refreshes


@dataclass(frozen=True)
class TickResult:
    """What one tick did."""

    created: int
    accounts: int
    requeued: int
    stale: int
    published: int

    def as_dict(self) -> dict[str, int]:
        """JSON-ready counts (the Celery task's result, and a log line)."""
        return {
            "created": self.created,
            "accounts": self.accounts,
            "requeued": self.requeued,
            "stale": self.stale,
            "published": self.published,
        }


def _queue_due_batch(engine: Engine, settings: Settings) -> tuple[list[uuid.UUID], int]:
    """One transaction: lock up to a batch of due domains with no run in flight, and queue a run for each."""
    with Session(engine) as session, session.begin():
        now = utcnow()
        in_flight = exists().where(col(SyncRun.domain_id) == col(Domain.id), col(SyncRun.status).in_(IN_FLIGHT))
        due = session.execute(
            select(col(Domain.id), col(Domain.client_id))
            .where(col(Domain.next_check_at) <= now, ~in_flight)
            .order_by(col(Domain.next_check_at), col(Domain.id))
            .limit(settings.tick_batch_size)
            # SKIP LOCKED: two ticks (or a tick and a finishing job) never wait on each other.
            .with_for_update(of=Domain, skip_locked=True)
        ).all()
        if not due:
            return [], 0
        rows = [
            {
                "id": uuid.uuid4(),
                "domain_id": domain_id,
                "client_id": client_id,
                "status": "queued",
                "trigger": "schedule",
                "enqueued_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for domain_id, client_id in due
        ]
        created = session.execute(
            insert(SyncRun)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[col(SyncRun.domain_id)], index_where=IN_FLIGHT_PREDICATE)
            .returning(col(SyncRun.id))
        ).scalars()
        return list(created), len(due)


def _queue_due_accounts(engine: Engine, settings: Settings) -> tuple[list[uuid.UUID], int]:
    """One transaction: queue a sync for up to a batch of due, live DNS-host and registrar accounts."""
    with Session(engine) as session, session.begin():
        now = utcnow()
        in_flight = exists().where(
            col(SyncRun.vendor_account_id) == col(VendorAccount.id), col(SyncRun.status).in_(IN_FLIGHT)
        )
        due = session.execute(
            select(col(VendorAccount.id), col(VendorAccount.client_id), col(Vendor.kind))
            .join(Vendor, col(Vendor.id) == col(VendorAccount.vendor_id))
            .where(
                col(VendorAccount.next_sync_at) <= now,
                col(VendorAccount.archived_at).is_(None),
                col(VendorAccount.api_key_credential_id).is_not(None),
                col(Vendor.kind).in_(SYNCED_KINDS),
                col(Vendor.adapter).is_not(None),
                ~in_flight,
            )
            .order_by(col(VendorAccount.next_sync_at), col(VendorAccount.id))
            .limit(settings.tick_batch_size)
            .with_for_update(of=VendorAccount, skip_locked=True)
        ).all()
        if not due:
            return [], 0
        rows = [
            {
                "id": uuid.uuid4(),
                "vendor_account_id": account_id,
                "client_id": client_id,
                "status": "queued",
                "trigger": "schedule",
                "enqueued_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for account_id, client_id, _kind in due
        ]
        created = session.execute(
            insert(SyncRun)
            .values(rows)
            .on_conflict_do_nothing(
                index_elements=[col(SyncRun.vendor_account_id)], index_where=ACCOUNT_IN_FLIGHT_PREDICATE
            )
            .returning(col(SyncRun.id))
        ).scalars()
        # Moved on now, so a sync that fails before it ends still leaves the account due only next period.
        for account_id, _client_id, kind in due:
            session.execute(
                update(VendorAccount)
                .where(col(VendorAccount.id) == account_id)
                .values(next_sync_at=next_sync_at(kind, settings))
            )
        return list(created), len(due)


def _claim_for_publish(engine: Engine, settings: Settings, *, stale: bool) -> list[tuple[uuid.UUID, bool]]:
    """Mark a batch of runs whose message is missing or lost as enqueued now, and return them."""
    with Session(engine) as session, session.begin():
        now = utcnow()
        if stale:
            # Running for too long with no message out recently: its worker probably died.
            cutoff = now - timedelta(seconds=settings.running_stale_s)
            where = and_(
                col(SyncRun.status) == "running",
                col(SyncRun.started_at) < cutoff,
                or_(col(SyncRun.enqueued_at).is_(None), col(SyncRun.enqueued_at) < cutoff),
            )
        else:
            # Queued and due, and either never published (NULL) or published so long ago it was lost.
            where = and_(
                col(SyncRun.status) == "queued",
                or_(col(SyncRun.not_before).is_(None), col(SyncRun.not_before) <= now),
                or_(
                    col(SyncRun.enqueued_at).is_(None),
                    col(SyncRun.enqueued_at) < now - timedelta(seconds=settings.requeue_after_s),
                ),
            )
        found = session.execute(
            select(col(SyncRun.id), col(SyncRun.vendor_account_id).is_not(None))
            .where(where)
            .order_by(col(SyncRun.created_at))
            .limit(settings.tick_batch_size)
            .with_for_update(skip_locked=True)
        ).all()
        if found:
            ids = [run_id for run_id, _ in found]
            session.execute(update(SyncRun).where(col(SyncRun.id).in_(ids)).values(enqueued_at=now))
        return [(run_id, bool(is_account)) for run_id, is_account in found]


def _publish_mixed(engine: Engine, runs: list[tuple[uuid.UUID, bool]]) -> int:
    """Publish each run to its own task: an account sync or a domain refresh."""
    accounts = [run_id for run_id, is_account in runs if is_account]
    domains = [run_id for run_id, is_account in runs if not is_account]
    return publish_refreshes(engine, domains, task=REFRESH_TASK) + publish_refreshes(
        engine, accounts, task=ACCOUNT_SYNC_TASK
    )


def tick(*, engine: Engine, settings: Settings) -> TickResult:
    """Queue due refreshes (bounded) and republish runs whose message went missing; publish after commit."""
    created = accounts = requeued = stale = published = 0
    for _ in range(settings.tick_max_batches):
        ids, scanned = _queue_due_batch(engine, settings)
        created += len(ids)
        published += publish_refreshes(engine, ids)
        if scanned < settings.tick_batch_size:
            break
    for _ in range(settings.tick_max_batches):
        ids, scanned = _queue_due_accounts(engine, settings)
        accounts += len(ids)
        published += publish_refreshes(engine, ids, task=ACCOUNT_SYNC_TASK)
        if scanned < settings.tick_batch_size:
            break
    runs = _claim_for_publish(engine, settings, stale=False)
    requeued = len(runs)
    published += _publish_mixed(engine, runs)
    runs = _claim_for_publish(engine, settings, stale=True)
    stale = len(runs)
    published += _publish_mixed(engine, runs)
    return TickResult(created=created, accounts=accounts, requeued=requeued, stale=stale, published=published)
